"""A worker refuses to start on a bad checkpoint: clear message, exit 78, no code from it."""

from __future__ import annotations

import os
import subprocess

import pytest

from scripts.processes import REPO_ROOT, worker_argv
from tests.utils.checkpoints import make_model_dir, pickle_weights, tamper_weights
from tests.utils.redis_server import free_port


def start_worker(model_dir, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRBVAE_WORKER_")}
    env.update(
        SRBVAE_WORKER_MODEL_DIR=str(model_dir),
        # Nothing listens there: refusal must come before any connection attempt.
        SRBVAE_WORKER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        SRBVAE_WORKER_CONNECTION_MAX_RETRIES="0",
    )
    return subprocess.run(
        worker_argv(),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("fault", ["sha256", "pickle"])
def test_bad_checkpoint_refuses_start_up(tmp_path, fault):
    model_dir = make_model_dir(tmp_path / "models")
    weights = model_dir / "faces" / "model.safetensors"
    marker = tmp_path / "pwned"
    if fault == "sha256":
        tamper_weights(weights)
    else:
        pickle_weights(weights, marker)
    done = start_worker(model_dir)
    assert done.returncode == 78, done.stderr[-3000:]
    assert "refusing to start: checkpoint 'faces' refused" in done.stderr
    assert "model.safetensors" in done.stderr
    assert "not restarting" in done.stderr
    assert not marker.exists()


def test_empty_model_dir_refuses_start_up(tmp_path):
    done = start_worker(tmp_path)
    assert done.returncode == 78
    assert "no checkpoints" in done.stderr
