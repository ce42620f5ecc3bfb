import json
import pickle

import pytest
import torch

from model.checkpoint import (
    CheckpointError,
    export_inference,
    load_inference,
    load_training_state,
    save_training_state,
)
from model.networks import SRbVAE
from model.objectives import make_objective
from model.training_step import TrainStep
from tests.model.conftest import images, tiny_config


def _outputs(net: SRbVAE, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    net.eval()
    with torch.no_grad():
        z, _ = net.encoder_z(x)
        e, _ = net.encoder_e(x)
        return z, e, net.generator(z, e), net.generator(z, net.expand_e_ref(len(z)))


def test_inference_export_round_trip_gives_identical_outputs(tmp_path):
    net = SRbVAE(tiny_config())
    with torch.no_grad():
        net.e_ref.normal_()
    export_inference(net, tmp_path, name="digits", data={"source": "test"}, metrics={"mae": 0.1})
    loaded, _, manifest = load_inference(tmp_path)
    original = net.inference_state_dict()
    restored = loaded.inference_state_dict()
    assert original.keys() == restored.keys()
    for key, value in original.items():
        assert torch.equal(value, restored[key]), key  # the round trip itself is exact
    # The outputs agree to float rounding only: in the full suite (after other tests used
    # torch's CPU kernels) two forward passes of equal weights once differed by ~1e-4.
    x = images(4, 32)
    for a, b in zip(_outputs(net, x), _outputs(loaded, x), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
    assert manifest["name"] == "digits"
    assert manifest["metrics"] == {"mae": 0.1}
    assert loaded.disc_xze is None  # the export carries no discriminators


def test_float16_export_is_half_the_size_and_close(tmp_path):
    net = SRbVAE(tiny_config())
    export_inference(net, tmp_path / "f32", name="m")
    export_inference(net, tmp_path / "f16", name="m", dtype=torch.float16)
    size32 = (tmp_path / "f32" / "model.safetensors").stat().st_size
    size16 = (tmp_path / "f16" / "model.safetensors").stat().st_size
    assert size16 < 0.55 * size32
    loaded, _, _ = load_inference(tmp_path / "f16")
    x = images(2, 32)
    for a, b in zip(_outputs(net, x), _outputs(loaded, x), strict=True):
        assert torch.allclose(a, b, atol=2e-2)


def test_truncated_weights_give_an_error_naming_the_file(tmp_path):
    export_inference(SRbVAE(tiny_config()), tmp_path, name="m")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=str(weights)):
        load_inference(tmp_path)


def test_weights_that_do_not_match_the_config_give_an_error_naming_the_file(tmp_path):
    export_inference(SRbVAE(tiny_config()), tmp_path, name="m")
    manifest_path = tmp_path / "model.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model_config"]["z_dim"] = 16
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="model.safetensors.*do not match.*shape") as err:
        load_inference(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_a_pickle_in_place_of_the_weights_is_refused_and_never_run(tmp_path):
    export_inference(SRbVAE(tiny_config()), tmp_path, name="m")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (marker.touch, ())

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_inference(tmp_path)
    # Even with a manifest vouching for it, the loader only parses safetensors.
    manifest = json.loads((tmp_path / "model.json").read_text())
    from model.checkpoint import sha256_of

    manifest["weights"]["sha256"] = sha256_of(weights)
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_inference(tmp_path)
    assert not marker.exists()


def test_missing_or_corrupt_manifest_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="manifest not found"):
        load_inference(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="model.json: not a valid JSON"):
        load_inference(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not an sRb-VAE checkpoint"):
        load_inference(tmp_path)


def test_weights_file_outside_the_checkpoint_directory_is_refused(tmp_path):
    export_inference(SRbVAE(tiny_config()), tmp_path, name="m")
    manifest = json.loads((tmp_path / "model.json").read_text())
    manifest["weights"]["file"] = "../elsewhere.safetensors"
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="invalid weights file name"):
        load_inference(tmp_path)


def test_training_state_resumes_exactly(tmp_path):
    cfg = tiny_config()
    x_u, x_r = images(4, 32), images(4, 32)
    net = SRbVAE(cfg)
    step = TrainStep(make_objective(net))
    step(x_u, x_r)
    save_training_state(
        tmp_path, net, step.optimizers(), step=1, extra_tensors={"rng": torch.get_rng_state()}
    )
    torch.manual_seed(123)
    expected = step(x_u, x_r)
    expected_params = {k: v.clone() for k, v in net.state_dict().items()}

    resumed_net = SRbVAE(cfg)
    resumed = TrainStep(make_objective(resumed_net))
    manifest, extra = load_training_state(tmp_path, resumed_net, resumed.optimizers())
    assert manifest["step"] == 1
    assert torch.equal(extra["rng"], extra["rng"].to(torch.uint8))
    torch.manual_seed(123)
    assert resumed(x_u, x_r) == expected
    for k, v in resumed_net.state_dict().items():
        assert torch.equal(v, expected_params[k]), k


def test_resuming_into_a_different_architecture_is_refused(tmp_path):
    net = SRbVAE(tiny_config())
    step = TrainStep(make_objective(net))
    save_training_state(tmp_path, net, step.optimizers(), step=0)
    other = SRbVAE(tiny_config(z_dim=16))
    with pytest.raises(CheckpointError, match="state.json: model config differs"):
        load_training_state(tmp_path, other, TrainStep(make_objective(other)).optimizers())


def test_the_method_is_named_from_the_variant_and_the_terms_not_in_the_paper():
    from model.checkpoint import manifest_method
    from model.config import ModelConfig, ObjectiveConfig, method_name

    assert method_name(ModelConfig(variant="srbvae"), ObjectiveConfig()) == "sRb-VAE"
    neutral = ObjectiveConfig(neutral_swap_weight=1)
    assert method_name(ModelConfig(), neutral) == "sRb-VAE + neutral swap term"
    served = method_name(ModelConfig(variant="rbvae"), ObjectiveConfig(domain_weight=3000))
    assert served == "Rb-VAE + latent domain adversary"
    # A manifest names its method, or its training config implies it.
    assert manifest_method({"method": "VAE"}) == "VAE"
    implied = {
        "model_config": ModelConfig(variant="rbvae").to_dict(),
        "training": {"config": {"objective": {"domain_weight": 3000.0}}},
    }
    assert manifest_method(implied) == served
    styled = ModelConfig(variant="srbvae", style_modulation=True)
    assert method_name(styled, ObjectiveConfig(swap_weight=10)) == (
        "sRb-VAE + swap term + style modulation"
    )
    anchored = ObjectiveConfig(swap_weight=10, reference_e_weight=100)
    assert method_name(ModelConfig(), anchored) == "sRb-VAE + swap term + reference e anchor"
    grey = ModelConfig(style_modulation=True, z_encoder_input="grey")
    assert method_name(grey, ObjectiveConfig(domain_weight=1)) == (
        "sRb-VAE + latent domain adversary + style modulation + colour-blind z-encoder"
    )
    styles_alone = ModelConfig(variant="srbvae", style_modulation=True, e_in_first_layer=False)
    assert (
        method_name(styles_alone, ObjectiveConfig()) == "sRb-VAE + e through style modulation alone"
    )


def test_a_style_modulated_generator_is_exported_and_loaded_with_its_modulations(tmp_path):
    net = SRbVAE(tiny_config(style_modulation=True))
    with torch.no_grad():
        for style in net.generator.styles:
            style.affine.weight.normal_(0, 0.2)
    export_inference(net, tmp_path, name="digits", data={"source": "test"}, metrics={})
    loaded, _, manifest = load_inference(tmp_path)
    assert manifest["model_config"]["style_modulation"] is True
    assert any(k.startswith("generator.styles.") for k in loaded.inference_state_dict())
    x = images(4, 32)
    for a, b in zip(_outputs(net, x), _outputs(loaded, x), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
