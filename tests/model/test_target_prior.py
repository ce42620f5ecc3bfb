import numpy as np
import pytest
import torch
from PIL import Image

from model import load_model
from model.checkpoint import (
    INFERENCE_MANIFEST,
    CheckpointError,
    attach_target_prior,
    export_inference,
    read_checkpoint,
    write_checkpoint,
)
from model.networks import SRbVAE
from model.target_prior import MEAN_KEY, SCALE_TRIL_KEY, TargetPrior
from tests.model.conftest import tiny_config


def _gaussian(n: int, mean: torch.Tensor, tril: torch.Tensor, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return mean + torch.randn(n, len(mean), generator=gen) @ tril.T


def _known() -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor([2.0, -1.0, 0.5, 0.0])
    tril = torch.tensor(
        [[0.5, 0, 0, 0], [0.3, 0.2, 0, 0], [0.0, -0.1, 1.0, 0], [0.1, 0.0, 0.2, 0.05]]
    )
    return mean, tril


def test_fit_recovers_a_known_gaussian():
    mean, tril = _known()
    prior = TargetPrior.fit(_gaussian(50_000, mean, tril))
    assert prior.fitted_on == 50_000
    torch.testing.assert_close(prior.mean, mean, atol=0.02, rtol=0)
    cov = prior.scale_tril @ prior.scale_tril.T
    torch.testing.assert_close(cov, tril @ tril.T, atol=0.01, rtol=0)


def test_draws_follow_the_fitted_distribution():
    mean, tril = _known()
    prior = TargetPrior(mean, tril, fitted_on=1)
    e = prior.draw(40_000, torch.Generator().manual_seed(1))
    torch.testing.assert_close(e.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(e.T), tril @ tril.T, atol=0.01, rtol=0)
    # Temperature scales the spread around the mean, not the mean.
    hot = prior.draw(40_000, torch.Generator().manual_seed(1), temperature=2.0)
    torch.testing.assert_close(hot - mean, 2 * (e - mean))


def test_standard_prior_draws_what_randn_draws():
    e = TargetPrior.standard(4).draw(3, torch.Generator().manual_seed(5), temperature=0.5)
    torch.testing.assert_close(
        e, 0.5 * torch.randn(3, 4, generator=torch.Generator().manual_seed(5))
    )


def test_fit_survives_a_direction_the_encoder_never_uses():
    e = _gaussian(1000, torch.zeros(3), torch.eye(3))
    e = torch.cat([e, torch.zeros(1000, 1)], 1)  # a collapsed latent: singular covariance
    prior = TargetPrior.fit(e)
    assert torch.isfinite(prior.scale_tril).all() and (prior.scale_tril.diagonal() > 0).all()


@pytest.mark.parametrize(("rows", "message"), [(4, "more than 4 rows"), (10, "NaN")])
def test_fit_refuses_too_few_or_non_finite_rows(rows, message):
    e = torch.randn(rows, 4)
    if rows == 10:
        e[3, 1] = float("nan")
    with pytest.raises(ValueError, match=message):
        TargetPrior.fit(e)


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ({MEAN_KEY: torch.zeros(4)}, "incomplete"),
        ({MEAN_KEY: torch.zeros(5), SCALE_TRIL_KEY: torch.eye(5)}, "shapes"),
        ({MEAN_KEY: torch.zeros(4), SCALE_TRIL_KEY: torch.ones(4, 4)}, "lower triangular"),
        ({MEAN_KEY: torch.zeros(4), SCALE_TRIL_KEY: -torch.eye(4)}, "positive diagonal"),
        ({MEAN_KEY: torch.full((4,), float("inf")), SCALE_TRIL_KEY: torch.eye(4)}, "infinite"),
    ],
)
def test_invalid_stored_tensors_are_refused(tensors, message):
    with pytest.raises(ValueError, match=message):
        TargetPrior.from_tensors(tensors, e_dim=4)


def test_a_checkpoint_without_a_fit_samples_from_the_standard_normal():
    prior = TargetPrior.from_tensors({}, e_dim=4)
    assert prior.fitted_on == 0
    torch.testing.assert_close(prior.scale_tril, torch.eye(4))


# --- in a checkpoint ----------------------------------------------------------------------------


@pytest.fixture
def export(tmp_path):
    net = SRbVAE(tiny_config())
    path = tmp_path / "ckpt"
    export_inference(net, path, name="tiny", dtype=torch.float16, metrics={"probe": 0.5})
    return path


def test_attach_stores_the_fit_and_keeps_weights_and_record(export):
    before, before_tensors = read_checkpoint(export)
    mean, tril = _known()
    attach_target_prior(export, TargetPrior(mean, tril, fitted_on=123))
    after, after_tensors = read_checkpoint(export)
    assert after["sampling"]["images"] == 123
    assert after["metrics"] == {"probe": 0.5} and after["dtype"] == "float16"
    assert after["weights"]["sha256"] != before["weights"]["sha256"]
    for key, value in before_tensors.items():  # float16 weights unchanged, bit for bit
        assert torch.equal(after_tensors[key], value), key
    assert after_tensors[SCALE_TRIL_KEY].dtype == torch.float32  # kept exact, not float16
    model = load_model(export)
    torch.testing.assert_close(model.prior.mean, mean)
    torch.testing.assert_close(model.prior.scale_tril, tril)
    assert model.prior.fitted_on == 123


def test_a_corrupt_fit_is_refused_at_load_naming_the_file(export):
    # A valid checksum over an invalid fit: written through the normal path, then edited.
    attach_target_prior(export, TargetPrior(torch.zeros(4), torch.eye(4), fitted_on=9))
    manifest, tensors = read_checkpoint(export)
    tensors[SCALE_TRIL_KEY] = torch.ones(4, 4)
    record = {k: v for k, v in manifest.items() if k not in ("format", "format_version", "weights")}
    write_checkpoint(export, INFERENCE_MANIFEST, tensors, record)
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*lower triangular"):
        load_model(export)


def test_sample_draws_e_from_the_checkpoints_fit(export):
    mean, tril = _known()
    attach_target_prior(export, TargetPrior(mean * 3, tril, fitted_on=50))
    model = load_model(export)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8))
    got = model.sample(image, n=3, seed=11, temperature=0.7)
    z, _ = model.encode([image])
    e = model.prior.draw(3, torch.Generator().manual_seed(11), 0.7)
    want = model.generate(z.expand(3, -1), e)
    assert [np.asarray(a).tolist() for a in got] == [np.asarray(b).tolist() for b in want]
    standard = load_model(export)
    standard.prior = TargetPrior.standard(4)
    other = standard.sample(image, n=3, seed=11, temperature=0.7)
    assert any(
        not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(got, other, strict=True)
    )


def test_export_refuses_a_fit_of_another_dimension(tmp_path):
    net = SRbVAE(tiny_config())
    with pytest.raises(ValueError, match="e_dim 3"):
        export_inference(
            net, tmp_path, name="x", prior=TargetPrior(torch.zeros(3), torch.eye(3), fitted_on=9)
        )
    assert not (tmp_path / "model.json").exists()
