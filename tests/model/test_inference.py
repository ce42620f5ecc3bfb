import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from model import load_model
from model.checkpoint import CheckpointError, export_inference
from model.networks import SRbVAE
from tests.model.conftest import tiny_config


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    net = SRbVAE(tiny_config())
    with torch.no_grad():
        net.e_ref.normal_()
    path = tmp_path_factory.mktemp("ckpt")
    export_inference(net, path, name="tiny")
    return load_model(path)


def _picture(seed: int, size=(40, 56), mode="RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr, "RGB").convert(mode)


def _array(im: Image.Image) -> np.ndarray:
    return np.asarray(im, dtype=np.int16)


def test_properties(model):
    assert (model.name, model.resolution, model.z_dim, model.e_dim) == ("tiny", 32, 8, 4)


def test_encode_takes_pictures_of_any_size_and_mode(model):
    pics = [_picture(0), _picture(1, (100, 20), "L"), _picture(2, (32, 32), "RGBA")]
    z, e = model.encode(pics)
    assert z.shape == (3, 8) and e.shape == (3, 4)
    z2, _ = model.encode(pics)
    assert torch.equal(z, z2)  # posterior means: deterministic


def test_encoding_with_q_e_on_a_side_thread_gives_the_same_latents(model):
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with ThreadPoolExecutor(1) as side:
        z_side, e_side = model.encode_tensor(x, side=side)
        on_side = side.submit(threading.get_ident).result()
    z, e = model.encode_tensor(x)
    assert on_side != threading.get_ident()
    torch.testing.assert_close(z_side, z)
    torch.testing.assert_close(e_side, e)
    assert e_side.is_inference() and e.is_inference()  # inference mode on either thread


@pytest.mark.parametrize("rows", [1, 2, 5])
def test_generating_half_the_rows_on_a_side_thread_gives_the_same_images(model, rows):
    z, e = torch.randn(rows, 8), torch.randn(rows, 4)
    with ThreadPoolExecutor(1) as side:
        images = model.generate_tensor(z, e, side=side)
    torch.testing.assert_close(images, model.generate_tensor(z, e), atol=1e-5, rtol=0)
    assert images.shape == (rows, 3, 32, 32) and images.is_inference()


def test_generate_with_no_e_uses_the_reference_e(model):
    z = torch.randn(2, 8)
    neutral = model.generate(z)
    explicit = model.generate(z, model.net.e_ref.detach().expand(2, -1))
    assert [im.size for im in neutral] == [(32, 32)] * 2
    assert all(np.array_equal(_array(a), _array(b)) for a, b in zip(neutral, explicit, strict=True))


def test_generate_validates_latent_shapes(model):
    with pytest.raises(ValueError, match=r"z must have shape \(B, 8\)"):
        model.generate([[0.0] * 7])
    with pytest.raises(ValueError, match="rows"):
        model.generate(np.zeros((2, 8)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        model.generate([[float("nan")] * 8])


def test_sample_is_repeatable_for_a_seed_and_varies_across_seeds(model):
    pic = _picture(3)
    a = model.sample(pic, n=5, seed=42)
    b = model.sample(pic, n=5, seed=42)
    c = model.sample(pic, n=5, seed=43)
    assert len(a) == 5
    assert all(np.array_equal(_array(x), _array(y)) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(_array(x), _array(y)) for x, y in zip(a, c, strict=True))
    # Different e within one call give different images.
    assert not np.array_equal(_array(a[0]), _array(a[1]))


def test_sample_temperature_scales_the_spread(model):
    pic = _picture(4)
    cold = np.stack([_array(im) for im in model.sample(pic, n=8, seed=0, temperature=0.01)])
    warm = np.stack([_array(im) for im in model.sample(pic, n=8, seed=0, temperature=3.0)])
    assert cold.std(axis=0).mean() < warm.std(axis=0).mean()
    with pytest.raises(ValueError, match="temperature"):
        model.sample(pic, temperature=0)


def test_transfer_strength_zero_keeps_the_image_and_one_takes_the_attributes(model):
    a, b = _picture(5), _picture(6)
    z, e = model.encode([a, b])
    own = model.generate(z[:1], e[:1])[0]
    taken = model.generate(z[:1], e[1:])[0]
    assert np.array_equal(_array(model.transfer(a, b, strength=0.0)), _array(own))
    assert np.array_equal(_array(model.transfer(a, b)), _array(taken))
    with pytest.raises(ValueError, match="strength"):
        model.transfer(a, b, strength=1.5)


def test_neutralize_and_interpolate(model):
    a, b = _picture(7), _picture(8)
    z, e = model.encode([a, b])
    assert np.array_equal(_array(model.neutralize(a)), _array(model.generate(z[:1])[0]))
    path = model.interpolate(a, b, steps=4)
    assert len(path) == 4
    # A batch of 4 and a batch of 1 may round differently by one grey level.
    start, end = model.generate(z[:1], e[:1])[0], model.generate(z[:1], e[1:])[0]
    assert np.abs(_array(path[0]) - _array(start)).max() <= 1
    assert np.abs(_array(path[-1]) - _array(end)).max() <= 1


@pytest.fixture(scope="module")
def rendered_onto_input(tmp_path_factory):
    """The same tiny network, its edits rendered onto the input by default."""
    torch.manual_seed(0)
    net = SRbVAE(tiny_config())
    path = tmp_path_factory.mktemp("ckpt-input")
    export_inference(net, path, name="tiny")
    manifest = json.loads((path / "model.json").read_text())
    manifest["rendering"] = {"mode": "input", "tolerance": 0.08}
    (path / "model.json").write_text(json.dumps(manifest))
    return load_model(path)


def test_rendering_onto_the_input_keeps_an_unchanged_picture(model):
    image = _picture(0, (32, 32))
    # Strength 0 changes nothing: the input itself, where the generator redraws it.
    kept = model.transfer(image, _picture(1), strength=0.0, render="input")
    assert np.array_equal(_array(kept), _array(image))
    drawn = model.transfer(image, _picture(1), strength=0.0, render="generator")
    assert np.abs(_array(drawn) - _array(image)).mean() > 10


def test_the_checkpoints_rendering_is_the_default(model, rendered_onto_input):
    image, other = _picture(3, (32, 32)), _picture(4, (32, 32))
    assert model.rendering.mode == "generator" and rendered_onto_input.rendering.mode == "input"
    default = rendered_onto_input.transfer(image, other)
    asked = rendered_onto_input.transfer(image, other, render="input")
    assert np.array_equal(_array(default), _array(asked))
    generated = rendered_onto_input.transfer(image, other, render="generator")
    assert not np.array_equal(_array(default), _array(generated))


@pytest.mark.parametrize(
    "edit",
    [
        lambda m, a, b, r: m.sample(a, n=3, seed=1, render=r),
        lambda m, a, b, r: [m.neutralize(a, render=r)],
        lambda m, a, b, r: m.interpolate(a, b, 3, render=r),
    ],
    ids=["sample", "neutralize", "interpolate"],
)
def test_every_edit_renders_onto_its_input(model, edit):
    a, b = _picture(5, (32, 32)), _picture(6, (32, 32))
    onto = [_array(im) for im in edit(model, a, b, "input")]
    drawn = [_array(im) for im in edit(model, a, b, "generator")]
    # Each answer is nearer the input than the generator's picture is.
    for o, d in zip(onto, drawn, strict=True):
        assert np.abs(o - _array(a)).mean() < np.abs(d - _array(a)).mean()


def test_edits_of_one_input_share_its_reconstruction_and_match_edits_made_one_by_one(model):
    torch.manual_seed(3)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z, e = model.encode_tensor(x)
    base = torch.tensor([1, 0, 1, 1])
    latents = (z[base], torch.randn(4, model.e_dim))
    together = model.render_edit(x, z, e, latents, base, "input")
    for row, i in enumerate(base.tolist()):
        alone = model.render_edit(
            x[i : i + 1], z[i : i + 1], e[i : i + 1],
            (latents[0][row : row + 1], latents[1][row : row + 1]),
            torch.tensor([0]), "input",
        )  # fmt: skip
        torch.testing.assert_close(together[row : row + 1], alone, atol=1e-5, rtol=0)


def test_an_unknown_rendering_is_refused(model):
    with pytest.raises(ValueError, match="render"):
        model.transfer(_picture(0), _picture(1), render="pixels")  # type: ignore[arg-type]


def test_a_checkpoint_with_a_bad_rendering_is_refused(tmp_path):
    net = SRbVAE(tiny_config())
    export_inference(net, tmp_path, name="tiny")
    manifest = json.loads((tmp_path / "model.json").read_text())
    manifest["rendering"] = {"mode": "pixels"}
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="rendering"):
        load_model(tmp_path)
