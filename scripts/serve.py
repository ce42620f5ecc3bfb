"""`make serve`: Redis, one worker and the API on this machine, until Ctrl-C.

    python -m scripts.serve [--host 127.0.0.1] [--port 8000] [--redis-port 6379] [--state-dir .serve]

Options default to `SERVE_HOST`, `SERVE_PORT`, `SERVE_REDIS_PORT` and `SERVE_DIR`, so
`make serve SERVE_PORT=8080` works. The worker reads the usual `SRBVAE_WORKER_*` settings
(`SRBVAE_WORKER_MODEL_DIR` defaults to `models/`), the API `SRBVAE_API_*`; the Redis URL of
both is this stack's. Redis keeps its append-only file in `<state-dir>/redis/`, the logs go to
`<state-dir>/logs/` and to this terminal.

Each child runs in its own process group, so a terminal's Ctrl-C reaches this script alone and
the shutdown is ordered: API, then worker (warm shutdown: running jobs finish), then Redis
(flushes its append-only file). SIGTERM and SIGHUP do the same, and so does the death of any
child. Children also get SIGTERM from the kernel if this script is killed outright (Linux).
An exclusive lock on `<state-dir>/serve.json` keeps a second invocation from starting a
second stack; the file names the running one.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from scripts.processes import (
    REPO_ROOT,
    Child,
    accepts_connections,
    api_argv,
    free_port,
    pid_alive,
    port_free,
    redis_argv,
    worker_argv,
)

EXIT_ALREADY_RUNNING = 2
EXIT_SETUP = 3
EXIT_CHILD_DIED = 4

REDIS_MISSING = (
    "redis-server was not found on PATH.\n"
    "Install it and run make serve again:\n"
    "    sudo apt-get install redis-server        # Debian, Ubuntu\n"
    "(make serve installs it itself when run as root on a machine with apt-get.)"
)


def log(message: str) -> None:
    print(f"serve  | {message}", flush=True)


class SetupError(Exception):
    """Something the user must fix before the stack can start; the message says what."""


# --- Redis -------------------------------------------------------------------------------


def find_redis_server(*, install: bool = True) -> str:
    """The system's redis-server; Debian's, installed with apt-get, when running as root."""
    binary = shutil.which("redis-server")
    if binary:
        return binary
    if not install or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SetupError(REDIS_MISSING)
    log("redis-server not found: installing Debian's redis-server with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"],
    ):
        if subprocess.run(command, env=env).returncode != 0:
            raise SetupError(f"{' '.join(command)} failed; " + REDIS_MISSING)
    binary = shutil.which("redis-server")
    if binary is None:
        raise SetupError("apt-get installed redis-server but it is not on PATH")
    return binary


def model_dir() -> Path:
    return Path(os.environ.get("SRBVAE_WORKER_MODEL_DIR") or REPO_ROOT / "models")


def check_models(directory: Path, default_model: str) -> list[str]:
    names = sorted(p.parent.name for p in directory.glob("*/model.json"))
    if not names:
        raise SetupError(
            f"no checkpoints in {directory} (one directory per model, each with model.json and "
            "model.safetensors). Point SRBVAE_WORKER_MODEL_DIR at one, or train and export a "
            "model: docs/deploy.md."
        )
    if default_model not in names:
        raise SetupError(
            f"{directory} holds {', '.join(names)} but not the default model {default_model!r}, "
            "so /readyz would never be 200: set SRBVAE_API_DEFAULT_MODEL to one of them."
        )
    return names


# --- the lock ----------------------------------------------------------------------------


def acquire_lock(state_dir: Path):
    """An open, exclusively locked `serve.json`, or None when a live stack holds it.

    flock is released by the kernel when its holder dies, however it dies, so a stale file
    never blocks a new start; the pid in it is only for the message."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = open(state_dir / "serve.json", "a+")  # noqa: SIM115 - held for the stack's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def running_stack(state_dir: Path) -> dict:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((state_dir / "serve.json").read_text())
    return {}


def write_state(handle, state: dict) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(state, indent=2) + "\n")
    handle.flush()


def kill_leftovers(previous: dict) -> None:
    """Children of a serve that was SIGKILLed on a system without PDEATHSIG."""
    for pid in previous.get("pgids", []):
        if pid_alive(pid):
            log(f"stopping process group {pid} left over by a previous serve")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


# --- readiness ---------------------------------------------------------------------------


def readyz(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (OSError, urllib.error.URLError):
        return 0, "not answering yet"


# --- main --------------------------------------------------------------------------------


class Stop(Exception):
    pass


class ChildDied(Exception):
    pass


# Set by the signal handler and checked by the loops: raising from the handler itself could
# interrupt Popen between fork and bookkeeping and lose track of a child.
stop_requested: list[int] = []


def check(children: list[Child]) -> None:
    if stop_requested:
        raise Stop(signal.Signals(stop_requested[0]).name)
    for child in children:
        rc = child.exited()
        if rc is not None:
            tail = child.log_path.read_text(errors="replace").splitlines()[-15:]
            raise ChildDied(
                f"{child.name} exited with {rc}; stopping the rest. Last lines of "
                f"{child.log_path}:\n" + "\n".join(tail)
            )


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="make serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=env("SERVE_HOST", "127.0.0.1"), help="API bind address")
    parser.add_argument("--port", type=int, default=int(env("SERVE_PORT", "8000")))
    parser.add_argument(
        "--redis-port",
        type=int,
        default=int(env("SERVE_REDIS_PORT", "0")) or None,
        help="default 6379, or a free port when 6379 is taken",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=Path(env("SERVE_DIR", REPO_ROOT / ".serve"))
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=float(env("SERVE_READY_TIMEOUT", "300"))
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    state_dir = args.state_dir.resolve()
    lock = acquire_lock(state_dir)
    if lock is None:
        other = running_stack(state_dir)
        log(
            f"a stack already runs (serve pid {other.get('pid', '?')}): "
            f"{other.get('url', '?')}/ , docs at {other.get('url', '?')}/docs. "
            f"Stop it with Ctrl-C in its terminal or `kill {other.get('pid', '<pid>')}`; "
            f"its state is in {state_dir}."
        )
        return EXIT_ALREADY_RUNNING
    kill_leftovers(running_stack(state_dir))

    host = args.host
    url_host = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "localhost") else host
    url = f"http://{url_host}:{args.port}"
    default_model = os.environ.get("SRBVAE_API_DEFAULT_MODEL", "faces")
    try:
        redis_server = find_redis_server()
        models = check_models(model_dir(), default_model)
        if not port_free(host, args.port):
            raise SetupError(
                f"port {args.port} on {host} is taken; choose another: make serve SERVE_PORT=8001"
            )
        redis_port = args.redis_port or 6379
        if not port_free("127.0.0.1", redis_port):
            if args.redis_port:
                raise SetupError(f"Redis port {redis_port} is taken; set SERVE_REDIS_PORT")
            # Our Redis is private to this stack, so any port does; 6379 may be a system Redis.
            redis_port = free_port()
            log(f"port 6379 is taken (a system Redis?): this stack's Redis uses {redis_port}")
    except SetupError as error:
        log(str(error))
        return EXIT_SETUP

    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis_dir, log_dir = state_dir / "redis", state_dir / "logs"
    redis_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.update(SRBVAE_WORKER_REDIS_URL=redis_url, SRBVAE_API_REDIS_URL=redis_url)
    env.setdefault("SRBVAE_API_MODEL_DIR", str(model_dir()))  # the examples the page offers
    # As in docker-compose.yml: an evicted queue is a lost queue.
    maxmemory = ("--maxmemory", os.environ.get("SERVE_REDIS_MAXMEMORY", "512mb"),
                 "--maxmemory-policy", "noeviction")  # fmt: skip
    children = [
        Child("redis", redis_argv(redis_server, redis_port, redis_dir, *maxmemory), env,
              log_dir / "redis.log", stop_timeout=10, echo=True),
        # Warm shutdown lets running jobs finish, within the worker's hard time limit.
        Child("worker", worker_argv(), env, log_dir / "worker.log", stop_timeout=65, echo=True),
        Child("api", api_argv(host, args.port), env, log_dir / "api.log", stop_timeout=10,
              echo=True),
    ]  # fmt: skip

    def on_signal(signum, _frame):
        stop_requested.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    pgids: list[int] = []
    state = {"pid": os.getpid(), "url": url, "redis_url": redis_url, "pgids": pgids}
    rc = 0
    try:
        log(f"models in {model_dir()}: {', '.join(models)}")
        for child in children:
            child.start()
            pgids.append(child.pid)
            write_state(lock, state)
            if child.name == "redis":
                _wait_redis(child, redis_port)
        log(f"waiting for {url}/readyz (the worker loads the models first)")
        deadline = time.monotonic() + args.ready_timeout
        while True:
            check(children)
            status, body = readyz(url)
            if status == 200:
                break
            if time.monotonic() > deadline:
                log(f"not ready after {args.ready_timeout:.0f} s: {status} {body}")
                return EXIT_CHILD_DIED
            time.sleep(0.5)
        print(
            "\n"
            f"  sRb-VAE is ready: {url}/\n"
            f"  API docs:         {url}/docs\n"
            f"  try it:           curl -F image=@a.png -F attributes=@b.png {url}/transfer -o out.png\n"
            f"  Redis:            {redis_url} (append-only file in {redis_dir})\n"
            f"  logs:             {log_dir}/\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )  # fmt: skip
        while True:
            check(children)
            time.sleep(0.5)
    except Stop as stop:
        log(f"{stop}: stopping")
    except ChildDied as died:
        log(str(died))
        rc = EXIT_CHILD_DIED
    finally:
        # A second Ctrl-C must not interrupt the shutdown half-way and leave processes behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        for child in reversed(children):
            if not child.stop():
                log(f"{child.name} did not stop within {child.stop_timeout:.0f} s: killed it")
        pgids.clear()
        write_state(lock, state)
        lock.close()
    log("stopped")
    return rc


def _wait_redis(child: Child, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if accepts_connections(port):
            return
        check([child])
        time.sleep(0.05)
    raise ChildDied(f"redis did not accept connections on {port} within 10 s")


if __name__ == "__main__":
    sys.exit(main())
