import json
import os
import subprocess
import sys

import pytest
import torch

from model import load_model
from model.checkpoint import read_checkpoint
from model.training_step import NonFiniteLossError, TrainStep
from tests.training.conftest import tiny_run
from tests.utils.redis_server import free_port
from training.config import load_config
from training.loop import train


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
    assert model.manifest["data"]["source"] == "faces"


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


def test_ctrl_c_saves_the_state_at_the_last_finished_step(tiny_faces, tmp_path, monkeypatch):
    real_call = TrainStep.__call__
    calls = {"n": 0}

    def interrupt_on_fourth(self, x_u, x_r):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_call(self, x_u, x_r)

    monkeypatch.setattr(TrainStep, "__call__", interrupt_on_fourth)
    cfg = load_config(None, tiny_run(tiny_faces, tmp_path, "ctrl-c", 6, "run.snapshot_every=100"))
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    manifest, _ = read_checkpoint(tmp_path / "ctrl-c" / "state", "state.json")
    assert manifest["step"] == 3


def test_a_nan_stops_the_run_and_is_recorded(tiny_faces, tmp_path, monkeypatch):
    def nan_step(self, x_u, x_r):
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


def test_a_fresh_start_leaves_nothing_of_the_previous_run(tiny_faces, tmp_path):
    train(load_config(None, tiny_run(tiny_faces, tmp_path, "again", 6)))
    run_dir = train(load_config(None, tiny_run(tiny_faces, tmp_path, "again", 3)), resume=False)
    grids = sorted(p.name for p in (run_dir / "grids").iterdir())
    assert not [g for g in grids if "0000006" in g], grids
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records) == 3
    assert load_model(run_dir / "export").manifest["training"]["step"] == 3
