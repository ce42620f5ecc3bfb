"""The stack's processes, started and stopped the same way by `make serve` (scripts/serve.py)
and by the tests (tests/utils/): redis-server, the worker (`python -m worker`) and the API
(uvicorn), each a `Child` in its own process group.

    redis = Child("redis", redis_argv(shutil.which("redis-server"), port, directory), env,
                  log_dir / "redis.log", stop_timeout=10)
    redis.start()                       # output to the log file (and the terminal with echo)
    ...
    redis.stop()                        # SIGTERM, then SIGKILL to whatever is left of its group

A child gets SIGTERM from the kernel when the thread that started it dies (Linux), so nothing
outlives a killed `make serve` or test run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1


def redis_argv(binary: str, port: int, directory: Path, *extra: str) -> list[str]:
    """A private Redis on loopback: append-only persistence in `directory`, no snapshots."""
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--appendonly", "yes", "--save", "", *extra]  # fmt: skip


def worker_argv(*celery_args: str) -> list[str]:
    """The supervisor and its worker process; `celery_args` go to `celery worker`."""
    return [sys.executable, "-m", "worker", *celery_args]


def api_argv(host: str, port: int, *uvicorn_args: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "service.main:app", "--host", host,
            "--port", str(port), *uvicorn_args]  # fmt: skip


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def accepts_connections(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
        return True
    return False


def pid_alive(pid: int) -> bool:
    """Running, and not a zombie (dead, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _own_group_dying_with_parent() -> None:
    os.setsid()
    # Not Linux: no prctl; the children then outlive a SIGKILLed parent.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    stop_timeout: float
    echo: bool = False  # also copy its output to this terminal, each line prefixed by the name
    process: subprocess.Popen | None = None
    _pump: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.echo else log,
                stderr=subprocess.STDOUT,
                preexec_fn=_own_group_dying_with_parent,
            )
        if self.echo:
            self._pump = threading.Thread(target=self._tee, daemon=True)
            self._pump.start()

    def _tee(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        prefix = f"{self.name:<6} | ".encode()
        with open(self.log_path, "ab") as out:
            for line in self.process.stdout:
                out.write(line)
                out.flush()
                with contextlib.suppress(OSError):
                    sys.stdout.buffer.write(prefix + line)
                    sys.stdout.flush()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> bool:
        """SIGTERM the child, wait up to `stop_timeout`, then SIGKILL whatever is left of its
        process group (the worker's own child shares it). False if it had to be killed."""
        if self.process is None:
            return True
        in_time = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                in_time = False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self._pump is not None:
            self._pump.join(2)
        return in_time
