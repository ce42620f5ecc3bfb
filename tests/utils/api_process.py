"""The real API (`uvicorn service.main:app`) as a subprocess on a free port, for e2e tests.

    with running_api(redis.url, tmp, max_upload_bytes=65536) as api:
        httpx.get(f"{api.url}/readyz")

`settings` become `SRBVAE_API_<NAME>` variables. The process is stopped on exit (SIGTERM,
then SIGKILL), even when the test failed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.utils.redis_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ApiProcess:
    port: int
    log_path: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running_api(redis_url: str, log_dir: str | Path, **settings) -> Iterator[ApiProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRBVAE_API_")}
    env.update(SRBVAE_API_REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    env.update({f"SRBVAE_API_{k.upper()}": str(v) for k, v in settings.items()})
    port = free_port()
    log_path = Path(log_dir) / f"api-{port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.main:app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    api = ApiProcess(port, log_path, process)
    try:
        _wait_healthy(api, timeout=30)
        yield api
    finally:
        api.stop()


def _wait_healthy(api: ApiProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {api.process.returncode}:\n{api.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api.url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"the API did not answer /healthz within {timeout} s:\n{api.log()}")
