"""`make serve`'s script (scripts/serve.py) as a subprocess: tiny checkpoints, free ports, its own
state directory. It becomes ready and serves a transfer, refuses a second stack, and leaves no
process behind on Ctrl-C or when a child dies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scripts import serve
from tests.utils.checkpoints import make_model_dir
from tests.utils.images import png
from tests.utils.redis_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("serve") / "models")


@dataclass
class Serve:
    process: subprocess.Popen
    port: int
    state_dir: Path
    output_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited:\n{self.output()[-4000:]}"
            if "is ready" in self.output():
                return
            time.sleep(0.2)
        raise TimeoutError(f"not ready within {timeout} s:\n{self.output()[-4000:]}")

    def ctrl_c(self) -> int:
        """SIGINT to its process group, as a terminal's Ctrl-C."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(60)


def run_serve(state_dir: Path, model_dir: Path, log: Path, **env: str) -> Serve:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SRBVAE_", "SERVE_"))}
    environ.update(SRBVAE_WORKER_MODEL_DIR=str(model_dir), PYTHONUNBUFFERED="1", **env)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.serve", "--port", str(port),
             "--redis-port", str(free_port()), "--state-dir", str(state_dir)],
            cwd=REPO_ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return Serve(process, port, state_dir, log)


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def wait_dead(pids: set[int], timeout: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = {p for p in pids if serve.pid_alive(p)}
        if not alive:
            return alive
        time.sleep(0.1)
    return alive


@pytest.fixture
def cleanup():
    started: list[Serve] = []
    yield started
    for s in started:
        if s.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.process.pid, signal.SIGKILL)
            s.process.wait()


def test_serve_transfers_refuses_second_stack_and_stops_on_ctrl_c(tmp_path, model_dir, cleanup):
    first = run_serve(tmp_path / "state", model_dir, tmp_path / "first.log")
    cleanup.append(first)
    first.wait_ready()
    assert f"{first.url.replace('127.0.0.1', 'localhost')}/docs" in first.output()

    answer = httpx.post(
        f"{first.url}/transfer",
        files={"image": ("a.png", png((40, 30), (200, 30, 30))),
               "attributes": ("b.png", png((40, 30), (30, 30, 200)))},
        data={"model": "digits"},  # faces would search these plain pictures for a face
        timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert answer.content.startswith(b"\x89PNG")
    assert (tmp_path / "state" / "redis" / "appendonlydir").is_dir()

    second = run_serve(tmp_path / "state", model_dir, tmp_path / "second.log")
    cleanup.append(second)
    assert second.process.wait(30) == serve.EXIT_ALREADY_RUNNING
    assert "already runs" in second.output()
    assert f"pid {first.process.pid}" in second.output()
    assert str(first.port) in second.output()
    assert httpx.get(f"{first.url}/readyz", timeout=5).status_code == 200

    pids = descendants(first.process.pid)
    assert len(pids) >= 4, pids  # redis, supervisor, worker process, uvicorn
    assert first.ctrl_c() == 0, first.output()[-4000:]
    assert not wait_dead(pids), first.output()[-4000:]
    assert "stopped" in first.output()


def test_serve_stops_everything_when_a_child_dies(tmp_path, model_dir, cleanup):
    stack = run_serve(tmp_path / "state", model_dir, tmp_path / "serve.log")
    cleanup.append(stack)
    stack.wait_ready()
    pids = descendants(stack.process.pid)
    uvicorn = next(p for p in pids if b"uvicorn" in Path(f"/proc/{p}/cmdline").read_bytes())
    os.kill(uvicorn, signal.SIGKILL)
    assert stack.process.wait(60) == serve.EXIT_CHILD_DIED
    assert "api exited with -9" in stack.output()
    assert not wait_dead(pids), stack.output()[-4000:]


def test_serve_without_checkpoints_says_what_is_missing(tmp_path, cleanup):
    (tmp_path / "empty").mkdir()
    stack = run_serve(tmp_path / "state", tmp_path / "empty", tmp_path / "serve.log")
    cleanup.append(stack)
    assert stack.process.wait(30) == serve.EXIT_SETUP
    assert f"no checkpoints in {tmp_path / 'empty'}" in stack.output()


def test_serve_without_default_model_refuses(tmp_path, model_dir, cleanup):
    stack = run_serve(
        tmp_path / "state", model_dir, tmp_path / "serve.log", SRBVAE_API_DEFAULT_MODEL="cats"
    )
    cleanup.append(stack)
    assert stack.process.wait(30) == serve.EXIT_SETUP
    assert "not the default model 'cats'" in stack.output()


def test_missing_redis_without_root_names_the_package(monkeypatch):
    monkeypatch.setattr(serve.shutil, "which", lambda name: None)
    monkeypatch.setattr(serve.os, "geteuid", lambda: 1000)
    with pytest.raises(serve.SetupError) as error:
        serve.find_redis_server()
    assert "apt-get install redis-server" in str(error.value)


def test_makefile_serve_runs_the_script():
    result = subprocess.run(
        ["make", "-n", "serve"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "-m scripts.serve" in result.stdout
