import json

import pytest
import torch

from model.checkpoint import CheckpointError, read_checkpoint
from model.networks import SRbVAE
from model.objectives import make_objective
from model.training_step import TrainStep
from tests.training.conftest import tiny_run
from training.config import load_config
from training.loop import train
from training.warm_start import warm_start


def _with_domain_adversary(cfg):
    net = SRbVAE(cfg.model, domain_adversary=True)
    step = TrainStep(make_objective(net, cfg.objective), cfg.optim, channels_last=True)
    return net, step.optimizers()


def test_shared_weights_and_moments_are_copied_by_name_and_the_new_adversary_starts_fresh(
    tiny_faces, tmp_path
):
    source = train(load_config(None, tiny_run(tiny_faces, tmp_path, "source", 4)))
    cfg = load_config(
        None, tiny_run(tiny_faces, tmp_path, "target", 8, "objective.domain_weight=100")
    )
    net, optimizers = _with_domain_adversary(cfg)
    untouched = {k: v.clone() for k, v in net.state_dict().items() if k.startswith("disc_domain")}

    manifest, extra, fresh = warm_start(source / "state", net, optimizers, cfg)

    assert manifest["step"] == 4 and extra  # the source's step and RNG state continue
    assert fresh and all(name.startswith("disc_domain.") for name in fresh)
    _, saved = read_checkpoint(source / "state", "state.json")
    state = net.state_dict()
    for key, value in saved.items():
        if key.startswith("net."):
            assert torch.equal(state[key[4:]], value), key
    for key, value in untouched.items():
        assert torch.equal(state[key], value), key
    # Adam's moments came along with their parameters: the generator's first conv has them,
    # the fresh adversary has none until its first step.
    params = dict(net.named_parameters())
    model_opt, disc_opt = optimizers["model"], optimizers["disc"]
    first = next(name for name in params if name.startswith("generator."))
    assert model_opt.state[params[first]]["exp_avg"].abs().sum() > 0
    assert all(params[name] not in disc_opt.state for name in fresh)
    assert any(params[name] in disc_opt.state for name in params if name.startswith("disc_xze."))


def test_a_run_with_init_from_continues_the_source_step_count_with_the_new_term(
    tiny_faces, tmp_path
):
    source = train(load_config(None, tiny_run(tiny_faces, tmp_path, "source", 4)))
    overrides = tiny_run(
        tiny_faces, tmp_path, "target", 6,
        "objective.domain_weight=100", f'run.init_from="{source / "state"}"',
    )  # fmt: skip
    run_dir = train(load_config(None, overrides))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [6]
    assert "loss/domain" in records[0] and "disc/acc_zeta" in records[0]
    manifest, _ = read_checkpoint(run_dir / "state", "state.json")
    assert manifest["step"] == 6
    # Its own state takes precedence afterwards: a second call resumes it, not the source.
    longer = [o if not o.startswith("run.steps=") else "run.steps=8" for o in overrides]
    resumed = train(load_config(None, longer))
    assert read_checkpoint(resumed / "state", "state.json")[0]["step"] == 8


def test_a_source_with_other_networks_is_refused_with_its_path(tiny_faces, tmp_path):
    source = train(load_config(None, tiny_run(tiny_faces, tmp_path, "source", 2)))
    cfg = load_config(
        None,
        tiny_run(tiny_faces, tmp_path, "wider", 4, "objective.domain_weight=100")
        + ["model.fc_dim=48"],
    )
    net, optimizers = _with_domain_adversary(cfg)
    with pytest.raises(CheckpointError, match="same \\[model\\] settings"):
        warm_start(source / "state", net, optimizers, cfg)
    with pytest.raises(CheckpointError, match="names no training state"):
        warm_start(tmp_path / "nowhere", net, optimizers, cfg)


def _taken_on(tiny_faces, tmp_path, setting: str):
    """A two-step source run, and a run with `setting` (a [model] override) warm-started from
    it: (source run directory, the new run's config, its networks, the fresh parameters)."""
    source = train(load_config(None, tiny_run(tiny_faces, tmp_path, "source", 2)))
    cfg = load_config(None, tiny_run(tiny_faces, tmp_path, "taker", 4) + [setting])
    net = SRbVAE(cfg.model)
    optimizers = TrainStep(make_objective(net, cfg.objective), cfg.optim).optimizers()
    _, _, fresh = warm_start(source / "state", net, optimizers, cfg)
    return source, cfg, net, fresh


def test_a_trained_generator_takes_on_style_modulation_unchanged(tiny_faces, tmp_path):
    source, cfg, net, fresh = _taken_on(tiny_faces, tmp_path, "model.style_modulation=true")

    assert fresh and all(name.startswith("generator.styles.") for name in fresh)
    src = SRbVAE(load_config(None, tiny_run(tiny_faces, tmp_path, "source", 2)).model)
    _, saved = read_checkpoint(source / "state", "state.json")
    src.load_state_dict({k[4:]: v for k, v in saved.items() if k.startswith("net.")})
    z, e = torch.randn(3, cfg.model.z_dim), torch.randn(3, cfg.model.e_dim)
    with torch.no_grad():
        assert torch.equal(net.generator(z, e), src.generator(z, e))  # the same pictures


def test_a_trained_model_takes_on_a_framed_z_encoder_with_every_weight(tiny_faces, tmp_path):
    _, _, net, fresh = _taken_on(tiny_faces, tmp_path, "model.z_encoder_framed=true")
    assert fresh == []  # framing changes what q(z|x) sees, not its weights
    assert net.encoder_z.framed
