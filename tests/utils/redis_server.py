"""A real redis-server on a free loopback port, started and stopped by the tests (launched as
`make serve` launches it: scripts/processes.py)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.processes import Child, accepts_connections, free_port, redis_argv
from scripts.serve import SetupError, find_redis_server

__all__ = ["RedisServer", "free_port", "running_redis"]


@dataclass
class RedisServer:
    port: int
    directory: Path
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra_args: str) -> None:
        try:
            binary = find_redis_server(install=False)
        except SetupError as exc:
            raise RuntimeError(str(exc)) from None
        argv = redis_argv(binary, self.port, self.directory, *extra_args)
        log_path = self.directory / f"redis-{self.port}.log"
        self.child = Child("redis", argv, dict(os.environ), log_path, stop_timeout=5)
        self.child.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if accepts_connections(self.port):
                return
            if (rc := self.child.exited()) is not None:
                raise RuntimeError(f"redis-server exited with {rc}:\n{self.child.log()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start within 10 s")

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
        self.child = None


@contextlib.contextmanager
def running_redis(directory: Path, *extra_args: str) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), directory)
    server.start(*extra_args)
    try:
        yield server
    finally:
        server.stop()
