import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from model import load_model
from model.checkpoint import read_checkpoint
from model.training_step import NonFiniteLossError, TrainStep
from tests.training.conftest import tiny_run
from tests.utils.redis_server import free_port
from training.config import RunConfig, load_config
from training.data import PreparedDataset
from training.evaluation.features import encode_split
from training.loop import lr_scale, train
from training.stopping import StopRequested


def test_a_run_writes_metrics_grids_state_and_a_loadable_export(tiny_faces, tmp_path):
    cfg = load_config(None, tiny_run(tiny_faces, tmp_path))
    run_dir = train(cfg, command="test")
    assert json.loads((run_dir / "config.json").read_text())["run"]["steps"] == 6
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert all(r["images_per_second"] > 0 and "loss/d_xi" in r for r in records)
    grids = sorted(p.name for p in (run_dir / "grids").iterdir())
    assert "transfers-0000006.png" in grids and "samples-0000003.png" in grids
    manifest, _ = read_checkpoint(run_dir / "state", "state.json")
    assert manifest["step"] == 6 and manifest["command"] == "test"
    model = load_model(run_dir / "export")
    assert model.resolution == 32 and model.manifest["training"]["step"] == 6
    assert model.manifest["method"] == "sRb-VAE"
    assert model.manifest["data"]["source"] == "faces"
    # /sample draws e from a Gaussian fitted to the encoded unlabelled (training) images.
    assert model.manifest["sampling"]["images"] == 96
    _, e = encode_split(model, np.asarray(PreparedDataset.open(tiny_faces)["unlabelled"].images))
    np.testing.assert_allclose(model.prior.mean.numpy(), e.mean(0), atol=1e-5)
    # Answers' domain scores are placed among the held-out eval_fit images' errors.
    assert model.domain is not None and (model.domain.images, model.domain.split) == (
        70,
        "eval_fit",
    )


def test_the_sample_grids_drawn_during_training_sample_e_as_the_served_model_will(
    tiny_faces, tmp_path, monkeypatch
):
    import training.loop

    priors = []

    def write_grids(model, images, out_dir, tag):
        priors.append((tag, model.prior))
        return []

    monkeypatch.setattr(training.loop, "write_grids", write_grids)
    train(load_config(None, tiny_run(tiny_faces, tmp_path)))
    # Every grid, in training and at export, draws e from a Gaussian fitted to encoded
    # unlabelled images (all 96 of the tiny set), never from N(0, I).
    assert [tag for tag, _ in priors] == ["0000003", "0000006", "0000006"]  # the last at export
    assert all(prior.fitted_on == 96 for _, prior in priors)
    assert all(prior.mean.abs().max() > 0 for _, prior in priors)


def _weights(run_dir):
    _, tensors = read_checkpoint(run_dir / "state", "state.json")
    return {k: v for k, v in tensors.items() if k.startswith("net.")}


def test_an_interrupted_and_resumed_run_ends_exactly_where_an_uninterrupted_one_does(
    tiny_faces, tmp_path
):
    straight = train(load_config(None, tiny_run(tiny_faces, tmp_path, "straight", 6)))
    train(load_config(None, tiny_run(tiny_faces, tmp_path, "resumed", 3)))
    resumed = train(load_config(None, tiny_run(tiny_faces, tmp_path, "resumed", 6)))
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_the_learning_rate_rises_over_the_warm_up_and_falls_to_zero_over_the_cool_down():
    run = RunConfig(steps=10, warmup_steps=2, cooldown_steps=4)
    assert [lr_scale(step, run) for step in range(10)] == [
        0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25
    ]  # fmt: skip
    assert lr_scale(12, run) == 0.0  # a run extended past its schedule never goes negative
    assert lr_scale(3, RunConfig(steps=10)) == 1.0


def test_a_resumed_run_keeps_the_cool_down_of_its_schedule(tiny_faces, tmp_path, monkeypatch):
    seen: list[float] = []
    real_call = TrainStep.__call__

    def step(self, x_u, x_r, **kwargs):
        seen.append(self.optimizers()["model"].param_groups[0]["lr"])
        return real_call(self, x_u, x_r, **kwargs)

    monkeypatch.setattr(TrainStep, "__call__", step)
    args = tiny_run(tiny_faces, tmp_path, "cool", 6, "run.cooldown_steps=4", "optim.lr=1e-3")
    _signal_on_call(monkeypatch, 4, signal.SIGTERM)  # the run stops after its fourth update
    with pytest.raises(StopRequested):
        train(load_config(None, args))
    assert len(seen) == 4
    train(load_config(None, args))
    assert seen == pytest.approx([1e-3, 1e-3, 1e-3, 0.75e-3, 0.5e-3, 0.25e-3])


@pytest.fixture
def sigint_as_in_a_terminal():
    """Ctrl-C as a terminal delivers it, however pytest was started: a run started in the
    background (`&`, nohup) inherits an ignored SIGINT, which the loop keeps ignoring."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _signal_on_call(monkeypatch, call: int, *signals: int) -> None:
    """The patched step sends `signals` to this process during its `call`-th call, before
    doing its work, as a signal arriving in the middle of a step would."""
    real_call = TrainStep.__call__
    calls = {"n": 0}

    def step(self, x_u, x_r, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            for signum in signals:
                signal.raise_signal(signum)
        return real_call(self, x_u, x_r, **kwargs)

    monkeypatch.setattr(TrainStep, "__call__", step)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.usefixtures("sigint_as_in_a_terminal")
def test_a_stop_signal_finishes_the_step_saves_it_and_stops(
    tiny_faces, tmp_path, monkeypatch, signum
):
    _signal_on_call(monkeypatch, 4, signum)
    cfg = load_config(None, tiny_run(tiny_faces, tmp_path, "stop", 6, "run.snapshot_every=100"))
    with pytest.raises(StopRequested) as stopped:
        train(cfg)
    assert stopped.value.signum == signum and stopped.value.step == 4
    manifest, _ = read_checkpoint(tmp_path / "stop" / "state", "state.json")
    assert manifest["step"] == 4
    assert not (tmp_path / "stop" / "export").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back


@pytest.mark.usefixtures("sigint_as_in_a_terminal")
def test_a_second_signal_stops_at_once_and_keeps_the_last_snapshot(
    tiny_faces, tmp_path, monkeypatch
):
    _signal_on_call(monkeypatch, 5, signal.SIGTERM, signal.SIGINT)
    cfg = load_config(None, tiny_run(tiny_faces, tmp_path, "twice", 6))
    with pytest.raises(KeyboardInterrupt) as stopped:
        train(cfg)
    assert not isinstance(stopped.value, StopRequested)
    manifest, _ = read_checkpoint(tmp_path / "twice" / "state", "state.json")
    assert manifest["step"] == 3  # run.snapshot_every=3: step 5 was never finished


def test_a_resumed_run_writes_the_records_after_its_snapshot_once(
    tiny_faces, tmp_path, monkeypatch
):
    _signal_on_call(monkeypatch, 5, signal.SIGTERM, signal.SIGTERM)  # records 2, 4; state 3
    with pytest.raises(KeyboardInterrupt):
        train(load_config(None, tiny_run(tiny_faces, tmp_path, "again", 6)))
    monkeypatch.undo()
    run_dir = train(load_config(None, tiny_run(tiny_faces, tmp_path, "again", 6)))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]


@pytest.mark.slow
def test_sigterm_to_the_training_command_saves_and_exits_143(tiny_faces, tmp_path):
    """`docker stop` and `kill` send SIGTERM to the real process, started as a background
    job is (SIGINT ignored)."""
    args = [f"--set={a}" for a in tiny_run(tiny_faces, tmp_path, "term", 100_000)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "training", "train", *args, "--set=run.snapshot_every=100000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    metrics = tmp_path / "term" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-3000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # ignored, as for a job started with `&`
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "stopped by SIGTERM" in stderr and "run the same command" in stderr
    manifest, _ = read_checkpoint(tmp_path / "term" / "state", "state.json")
    assert manifest["step"] >= 4  # at least the two logged intervals (run.log_every=2)


def test_a_nan_stops_the_run_and_is_recorded(tiny_faces, tmp_path, monkeypatch):
    def nan_step(self, x_u, x_r, **kwargs):
        raise NonFiniteLossError("model", {"loss/total": float("nan")})

    monkeypatch.setattr(TrainStep, "__call__", nan_step)
    with pytest.raises(NonFiniteLossError):
        train(load_config(None, tiny_run(tiny_faces, tmp_path, "nan")))
    record = json.loads((tmp_path / "nan" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "non-finite" in record["error"]


@pytest.mark.parametrize("variant", ["rbvae", "vae"])
def test_the_baselines_train_with_the_same_loop(tiny_faces, tmp_path, variant):
    cfg = load_config(
        None, tiny_run(tiny_faces, tmp_path, variant, 2, f'model.variant="{variant}"')
    )
    assert load_model(train(cfg) / "export").cfg.variant == variant


def test_a_dataset_of_another_resolution_is_refused_with_a_clear_error(tiny_faces, tmp_path):
    cfg = load_config(None, tiny_run(tiny_faces, tmp_path, "res", 2, "model.resolution=64"))
    with pytest.raises(ValueError, match="32x32 images but the model is configured for 64"):
        train(cfg)


@pytest.mark.slow
def test_two_processes_with_torchrun_and_gloo_train_in_sync(tiny_faces, tmp_path):
    args = [f"--set={a}" for a in tiny_run(tiny_faces, tmp_path, "ddp", 4)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
         "-m", "training", "train", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "x2" in done.stderr  # the log line names the world size
    model = load_model(tmp_path / "ddp" / "export")
    assert model.manifest["training"]["processes"] == 2


def test_an_export_appears_only_once_whole(tiny_faces, tmp_path, monkeypatch):
    import training.loop as loop

    train(load_config(None, tiny_run(tiny_faces, tmp_path, "whole", 3)))
    seen = []
    attach = loop.attach_target_prior

    def attach_and_look(path, prior):  # what a reader of `export` finds meanwhile
        seen.append(load_model(tmp_path / "whole" / "export").manifest["training"]["step"])
        attach(path, prior)

    monkeypatch.setattr(loop, "attach_target_prior", attach_and_look)
    run_dir = train(load_config(None, tiny_run(tiny_faces, tmp_path, "whole", 6)))
    assert seen == [3]  # the earlier export, whole, until the new one is
    assert sorted(p.name for p in run_dir.iterdir() if "export" in p.name) == ["export"]
    model = load_model(run_dir / "export")
    assert model.manifest["training"]["step"] == 6 and "sampling" in model.manifest


def test_a_new_export_does_not_keep_the_previous_exports_evaluation(tiny_faces, tmp_path):
    train(load_config(None, tiny_run(tiny_faces, tmp_path, "longer", 3)))
    (tmp_path / "longer" / "export" / "evaluation.json").write_text("{}")
    (tmp_path / "longer" / "export" / "MODEL_CARD.md").write_text("# of step 3")
    run_dir = train(load_config(None, tiny_run(tiny_faces, tmp_path, "longer", 6)))
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == [
        "model.json",
        "model.safetensors",
    ]
    assert load_model(run_dir / "export").manifest["training"]["step"] == 6


def test_a_fresh_start_leaves_nothing_of_the_previous_run(tiny_faces, tmp_path):
    train(load_config(None, tiny_run(tiny_faces, tmp_path, "again", 6)))
    run_dir = train(load_config(None, tiny_run(tiny_faces, tmp_path, "again", 3)), resume=False)
    grids = sorted(p.name for p in (run_dir / "grids").iterdir())
    assert not [g for g in grids if "0000006" in g], grids
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records) == 3
    assert load_model(run_dir / "export").manifest["training"]["step"] == 3


def test_a_run_resumes_on_a_fresh_machine_from_its_compact_carried_state(tiny_faces, tmp_path):
    from training.carry_cli import carry

    straight = train(load_config(None, tiny_run(tiny_faces, tmp_path / "a", "run", 6)))
    first = train(load_config(None, tiny_run(tiny_faces, tmp_path / "b", "run", 3)))
    carried = carry(first, tmp_path / "resume" / "run")
    full = (first / "state" / "state.safetensors").stat().st_size
    assert (carried / "state.safetensors").stat().st_size < 0.6 * full
    # A fresh clone: no runs/ at all, only what was committed.
    shutil.rmtree(tmp_path / "b")
    resumed = train(
        load_config(
            None,
            tiny_run(
                tiny_faces, tmp_path / "b", "run", 6, f'run.carry_root="{tmp_path / "resume"}"'
            ),
        )
    )
    manifest, _ = read_checkpoint(resumed / "state", "state.json")
    assert manifest["step"] == 6
    records = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    # The carried metrics continue (3 was the first leg's last step).
    assert [r["step"] for r in records] == [2, 3, 4, 6]
    # Rounded, not bit for bit: close to the uninterrupted run's weights.
    a, b = _weights(straight), _weights(resumed)
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-2
    assert any(not torch.equal(a[k], b[k]) for k in a)
