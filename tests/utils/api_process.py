"""The real API (`uvicorn service.main:app`) as a subprocess on a free port, for e2e tests
(launched as `make serve` launches it: scripts/processes.py).

    with running_api(redis.url, tmp, max_upload_bytes=65536) as api:
        httpx.get(f"{api.url}/readyz")

`settings` become `SRBVAE_API_<NAME>` variables. The process is stopped on exit (SIGTERM,
then SIGKILL), even when the test failed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from scripts.processes import Child, api_argv, free_port


@dataclass
class ApiProcess:
    port: int
    child: Child

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self):
        return self.child.process

    def log(self) -> str:
        return self.child.log()

    def stop(self) -> None:
        self.child.stop()


@contextlib.contextmanager
def running_api(redis_url: str, log_dir: str | Path, **settings) -> Iterator[ApiProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRBVAE_API_")}
    env.update(SRBVAE_API_REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    env.update({f"SRBVAE_API_{k.upper()}": str(v) for k, v in settings.items()})
    port = free_port()
    argv = api_argv("127.0.0.1", port, "--log-level", "warning")
    child = Child("api", argv, env, Path(log_dir) / f"api-{port}.log", stop_timeout=10)
    child.start()
    api = ApiProcess(port, child)
    try:
        _wait_healthy(api, timeout=30)
        yield api
    finally:
        api.stop()


def _wait_healthy(api: ApiProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (rc := api.child.exited()) is not None:
            raise RuntimeError(f"uvicorn exited with {rc}:\n{api.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api.url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"the API did not answer /healthz within {timeout} s:\n{api.log()}")
