"""A real worker (`python -m worker`) as a subprocess, for worker and end-to-end tests.

    from tests.utils.worker_process import running_worker, celery_client

    with running_redis(tmp) as redis, running_worker(redis.url, model_dir, tmp) as worker:
        info = worker.info                      # contract.registry.WorkerInfo, once ready
        client = celery_client(redis.url)       # a sender configured as the API's should be
        result = client.send_task(TaskName.SAMPLE, kwargs={...}).get(timeout=30)

API:
- `running_worker(redis_url, model_dir, log_dir, *, ready_timeout=90, fault_tasks=False,
  **settings)`: context manager; starts the supervisor, waits until the worker announces
  itself consuming, yields a `WorkerProcess`, and on exit stops it (SIGTERM, then SIGKILL to
  its whole process group), even when the test failed. `settings` become
  `SRBVAE_WORKER_<NAME>` variables, e.g. `soft_time_limit=2`; `fault_tasks` loads
  tests/utils/fault_tasks.py into the worker (`tests.utils.faults.FaultTask`).
- `WorkerProcess.wait_ready(timeout)` -> WorkerInfo of a live, consuming worker process.
- `WorkerProcess.kill_worker()`: SIGKILL the Celery process (not the supervisor, which starts a
  fresh one: call `wait_ready()` again). Returns the pid it killed, once it is dead.
- `WorkerProcess.stop()`, `WorkerProcess.log()` (its output so far, for assertion messages).
- `read_workers(client, name="*")`: the registry's entries, of one worker's processes or all.
- `celery_client(redis_url)`: a Celery app that only sends (JSON only, the worker's queue).

Each worker gets a unique `name`, so several can share one Redis; the log goes to
`log_dir/worker-<name>.log`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from celery import Celery
from kombu import Queue

import contract.errors  # noqa: F401 - results rebuild its exceptions by module name
from contract.redis_url import sync_client
from contract.registry import INDEX_KEY, WorkerInfo, parse_workers, registry_ids, worker_key
from contract.tasks import QUEUE
from scripts.processes import Child, pid_alive, worker_argv

MASTER_NAME = "srbvae"  # the primary's name at the Sentinels, for a sentinel:// URL


@dataclass
class WorkerProcess:
    redis_url: str
    model_dir: Path
    log_path: Path
    settings: dict = field(default_factory=dict)
    celery_args: tuple[str, ...] = ()  # passed on to `celery worker`
    name: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    child: Child | None = None
    info: WorkerInfo | None = None

    @property
    def process(self):
        """The supervisor's Popen, while it runs."""
        return None if self.child is None else self.child.process

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SRBVAE_WORKER_")}
        env.update(
            SRBVAE_WORKER_REDIS_URL=self.redis_url,
            SRBVAE_WORKER_MODEL_DIR=str(self.model_dir),
            SRBVAE_WORKER_NAME=self.name,
            PYTHONUNBUFFERED="1",
        )
        env.update({f"SRBVAE_WORKER_{k.upper()}": str(v) for k, v in self.settings.items()})
        argv = worker_argv(*self.celery_args)
        self.child = Child("worker", argv, env, self.log_path, stop_timeout=20)
        self.child.start()

    def wait_ready(self, timeout: float = 90.0) -> WorkerInfo:
        """Blocks until a live process of this worker announces itself consuming."""
        client = sync_client(self.redis_url, MASTER_NAME)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    rc = None if self.process is None else self.process.returncode
                    raise RuntimeError(f"worker exited with {rc}:\n{self.log()[-4000:]}")
                for info in read_workers(client, self.name):
                    if info.consuming and pid_alive(info.pid):
                        self.info = info
                        return info
                time.sleep(0.1)
        finally:
            client.close()
        raise TimeoutError(f"worker not ready within {timeout} s:\n{self.log()[-4000:]}")

    def kill_worker(self) -> int:
        """SIGKILLs the Celery worker process; the supervisor starts a new one."""
        if self.info is None:
            raise RuntimeError("wait_ready() first")
        pid = self.info.pid
        os.kill(pid, signal.SIGKILL)
        self.info = None
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        return pid

    def stop(self) -> None:
        """SIGTERM (a warm shutdown), then SIGKILL to every process of the worker left."""
        if self.child is not None:
            self.child.stop()
        self.child = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running_worker(
    redis_url: str,
    model_dir: str | Path,
    log_dir: str | Path,
    *,
    ready_timeout: float = 90.0,
    fault_tasks: bool = False,
    **settings,
) -> Iterator[WorkerProcess]:
    args = ("--include", "tests.utils.fault_tasks") if fault_tasks else ()
    worker = WorkerProcess(redis_url, Path(model_dir), Path(log_dir) / "worker.log", settings, args)
    worker.log_path = Path(log_dir) / f"worker-{worker.name}.log"
    worker.start()
    try:
        worker.wait_ready(ready_timeout)
        yield worker
    finally:
        worker.stop()


def read_workers(client: redis.Redis, name: str = "*") -> list[WorkerInfo]:
    """The registry's live entries (of the worker `name`'s processes, or of every worker)."""
    ids = registry_ids(client.zrange(INDEX_KEY, 0, -1), name)
    return parse_workers(client.mget([worker_key(i) for i in ids]) if ids else [])


def celery_client(redis_url: str) -> Celery:
    """Sends tasks by name and reads results, configured as the API should be."""
    app = Celery("srbvae-test-client", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(
        accept_content=["json"],
        task_serializer="json",
        result_serializer="json",
        result_accept_content=["json"],
        task_queues=[Queue(QUEUE)],
        task_default_queue=QUEUE,
        task_create_missing_queues=False,
        broker_connection_retry_on_startup=True,
    )
    return app
