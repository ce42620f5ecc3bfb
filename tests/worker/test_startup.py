"""A worker refuses to start on a bad checkpoint: clear message, exit 78, no code from it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.utils.checkpoints import make_model_dir
from tests.utils.redis_server import free_port
from tests.utils.worker_process import REPO_ROOT


def start_worker(model_dir, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRBVAE_WORKER_")}
    env.update(
        SRBVAE_WORKER_MODEL_DIR=str(model_dir),
        # Nothing listens there: refusal must come before any connection attempt.
        SRBVAE_WORKER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        SRBVAE_WORKER_CONNECTION_MAX_RETRIES="0",
    )
    return subprocess.run(
        [sys.executable, "-m", "worker"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _tamper(weights):
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))


def _pickle_weights(weights, marker):
    # A hand-written pickle that would create `marker` if anything unpickled it; the manifest
    # is updated to its SHA-256, so only the format check stands in the way.
    weights.write_bytes(f"cbuiltins\nopen\n(V{marker}\nVw\ntR.".encode())
    manifest_path = weights.parent / "model.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["weights"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("fault", ["sha256", "pickle"])
def test_bad_checkpoint_refuses_start_up(tmp_path, fault):
    model_dir = make_model_dir(tmp_path / "models")
    weights = model_dir / "faces" / "model.safetensors"
    marker = tmp_path / "pwned"
    if fault == "sha256":
        _tamper(weights)
    else:
        _pickle_weights(weights, marker)
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
