"""What one worker process holds while it runs: models, device thread, job tracker,
announcer. Built once at process start (worker.lifecycle) and used by every task."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

import redis
import torch
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from contract.errors import UnknownModel
from contract.registry import WorkerInfo
from contract.tasks import QUEUE
from worker.announce import Announcer
from worker.batcher import Batcher
from worker.jobs import JobTracker
from worker.models import ServedModel, load_models, resolve_device, warm_up
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: WorkerSettings
    device: torch.device
    models: dict[str, ServedModel]
    batcher: Batcher
    jobs: JobTracker
    redis: redis.Redis
    worker_id: str
    announcer: Announcer | None = None

    def model(self, name: str) -> ServedModel:
        try:
            return self.models[name]
        except KeyError:
            raise UnknownModel(
                f"no model named {name!r} on this worker; it serves {sorted(self.models)}"
            ) from None

    # Device work. Each call is one operation for the batcher: rows from concurrent jobs
    # with the same model are concatenated into one forward pass.

    def encode(self, m: ServedModel, x: torch.Tensor, job_id: str, deadline: float):
        """(B, 3, R, R) -> z (B, z_dim), e (B, e_dim)."""
        fut = self.batcher.submit((m.name, "encode"), m.vae.encode_tensor, [x], job_id)
        return self.jobs.wait(fut, deadline)

    def generate(
        self, m: ServedModel, z: torch.Tensor, e: torch.Tensor | None, job_id: str, deadline: float
    ) -> torch.Tensor:
        """z (B, z_dim), e (B, e_dim) or None for e^r -> (B, 3, R, R)."""
        if e is None:
            e = m.e_ref.expand(z.shape[0], -1)
        fut = self.batcher.submit((m.name, "generate"), _generate(m), [z, e], job_id)
        (x,) = self.jobs.wait(fut, deadline)
        return x


def _generate(m: ServedModel):
    def run(z: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor]:
        return (m.vae.generate_tensor(z, e),)

    return run


_current: Runtime | None = None


def get_runtime() -> Runtime:
    if _current is None:
        raise RuntimeError("the worker runtime is not started (run the worker: python -m worker)")
    return _current


def start_runtime(s: WorkerSettings, app) -> Runtime:
    """Loads and warms the models (StartupError if any checkpoint is refused), then starts
    the device thread and the watchdog. Nothing connects to Redis yet."""
    global _current
    if s.torch_threads:
        torch.set_num_threads(s.torch_threads)
    device = resolve_device(s.device)
    models = load_models(s.model_dir, device)
    if s.warmup:
        warm_up(models)
    client = redis.Redis.from_url(
        s.redis_url,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=10,
        retry=Retry(ExponentialBackoff(cap=2.0), 5),
    )
    batcher = Batcher(s.max_batch, s.batch_wait_ms / 1000).start()
    jobs = JobTracker(
        client,
        soft_limit=s.soft_time_limit,
        hard_limit=s.hard_time_limit,
        max_deliveries=s.max_deliveries,
        counter_ttl=int(s.result_expires + s.visibility_timeout * (s.max_deliveries + 1)),
        result_key=app.backend.get_key_for_task,
        store_failure=lambda job_id, exc: app.backend.store_result(job_id, exc, "FAILURE"),
        batcher=batcher,
    ).start()
    worker_id = f"{s.name}.{os.getpid()}"
    _current = Runtime(s, device, models, batcher, jobs, client, worker_id)
    return _current


def announce(runtime: Runtime, consuming) -> None:
    s = runtime.settings
    now = time.time()
    info = WorkerInfo(
        worker_id=runtime.worker_id,
        hostname=socket.gethostname(),
        pid=os.getpid(),
        device=str(runtime.device),
        models={name: m.info for name, m in runtime.models.items()},
        started_at=now,
        heartbeat_at=now,
        queue=QUEUE,
        pool=s.pool,
        concurrency=s.concurrency,
        max_batch=s.max_batch,
        soft_time_limit=s.soft_time_limit,
        hard_time_limit=s.hard_time_limit,
        visibility_timeout=s.visibility_timeout,
        max_deliveries=s.max_deliveries,
    )
    runtime.announcer = Announcer(runtime.redis, info, consuming).start()


def stop_runtime() -> None:
    global _current
    if _current is None:
        return
    if _current.announcer is not None:
        _current.announcer.stop()
    _current.jobs.stop()
    _current.batcher.stop()
    _current = None
