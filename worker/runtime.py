"""What one worker process holds while it runs: the models it serves, the device thread, the
job tracker and its announcement in the registry. Built once at process start (worker.app's
worker_init), before any connection, and used by every task through `get_runtime()`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import redis
import torch
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from contract.errors import UnknownModel
from contract.redis_url import sync_client
from contract.registry import HEARTBEAT_SECONDS, ModelInfo, WorkerInfo, announce, withdraw
from contract.tasks import QUEUE
from model import CheckpointError, ReferenceVAE, load_model
from model.checkpoint import manifest_method
from worker.batcher import Batcher
from worker.settings import WorkerSettings
from worker.tracker import JobTracker

log = logging.getLogger(__name__)

MANIFEST = "model.json"
# sampling: how /sample draws e; rendering: the default rendering and its tolerance
CARD_FIELDS = ("data", "training", "metrics", "dtype", "sampling", "rendering")


class StartupError(RuntimeError):
    """The worker must not start: the message says why and what to fix."""


# --- the models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedModel:
    name: str  # the directory name: what tasks call it
    vae: ReferenceVAE
    e_ref: torch.Tensor  # (1, e_dim) on the CPU: e for "no attributes" (generate with e=None)
    info: ModelInfo

    def generate_batch(
        self, z: torch.Tensor, e: torch.Tensor, side: Executor | None = None
    ) -> tuple[torch.Tensor]:
        """G(z, e) as the batcher calls it: a tuple of batched outputs."""
        return (self.vae.generate_tensor(z, e, side=side),)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise StartupError(f"device {device!r} requested but CUDA is not available")
    return dev


def find_checkpoints(model_dir: Path) -> dict[str, Path]:
    if not model_dir.is_dir():
        raise StartupError(f"model directory {model_dir} does not exist")
    found = {p.parent.name: p.parent for p in sorted(model_dir.glob(f"*/{MANIFEST}"))}
    if not found:
        raise StartupError(f"no checkpoints (*/{MANIFEST}) in model directory {model_dir}")
    return found


def load_models(model_dir: Path, device: torch.device) -> dict[str, ServedModel]:
    """Every checkpoint in model_dir, verified (SHA-256, safetensors only) by load_model.

    One bad checkpoint refuses start-up: serving a partial set would make /models lie.
    """
    served = {}
    for name, path in find_checkpoints(model_dir).items():
        t0 = time.perf_counter()
        try:
            vae = load_model(path, device=device)
        except CheckpointError as exc:
            raise StartupError(f"checkpoint {name!r} refused: {exc}") from exc
        if vae.name != name:
            log.warning("checkpoint directory %s holds a model named %r", path, vae.name)
        with torch.inference_mode():
            e_ref = vae.net.expand_e_ref(1).float().cpu()
        served[name] = ServedModel(name, vae, e_ref, model_info(name, vae))
        log.info(
            "loaded %s (%dx%d, z %d, e %d, sha256 %s) on %s in %.2f s",
            name, vae.resolution, vae.resolution, vae.z_dim, vae.e_dim,
            vae.manifest["weights"]["sha256"][:12], device, time.perf_counter() - t0,
        )  # fmt: skip
    return served


FACE_SOURCES = ("faces", "photos")  # datasets of aligned faces (training/data)


def face_zoom(name: str, manifest: dict) -> float | None:
    """The framing photos are aligned to for this model: its training data's zoom, where those
    were faces; None for any other model."""
    data = manifest.get("data", {})
    if data.get("source") not in FACE_SOURCES:
        return None
    if data.get("zoom") is None:
        log.warning("faces model %s records no framing (data.zoom): photos are not aligned", name)
        return None
    return float(data["zoom"])


def model_info(name: str, vae: ReferenceVAE) -> ModelInfo:
    m = vae.manifest
    return ModelInfo(
        name=name,
        resolution=vae.resolution,
        z_dim=vae.z_dim,
        e_dim=vae.e_dim,
        variant=vae.cfg.variant,
        method=manifest_method(m),
        checkpoint_sha256=m["weights"]["sha256"],
        card={k: m[k] for k in CARD_FIELDS if k in m},
        face_zoom=face_zoom(name, m),
        rendering=vae.rendering.mode,
    )


def warm_up(models: dict[str, ServedModel], batch_sizes: tuple[int, ...] = (1, 8)) -> None:
    """One pass per model and batch size, so the first request does not pay for allocator
    growth, kernel selection or CUDA context creation."""
    for m in models.values():
        t0 = time.perf_counter()
        for b in batch_sizes:
            x = torch.zeros(b, 3, m.vae.resolution, m.vae.resolution)
            z, e = m.vae.encode_tensor(x)
            m.vae.generate_tensor(z, e)
        log.info("warmed up %s in %.2f s", m.name, time.perf_counter() - t0)


# --- the announcement in the registry --------------------------------------------------------


class Announcer:
    """Writes this process's WorkerInfo under its registry key (contract/registry.py), again
    every heartbeat, so the API can answer /models and /readyz; deleted on a clean exit."""

    def __init__(self, redis, info: WorkerInfo, consuming: Callable[[], bool]):
        self.redis = redis
        self.info = info
        self.consuming = consuming
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="announce", daemon=True)
        self._healthy = True

    def start(self) -> Announcer:
        self.beat()
        self._thread.start()
        return self

    def beat(self) -> None:
        self.info.heartbeat_at = time.time()
        self.info.consuming = self.consuming()
        try:
            pipe = self.redis.pipeline()  # MULTI: the entry and its index entry together
            announce(pipe, self.info)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - Redis may be restarting; keep beating
            if self._healthy:
                log.warning("cannot announce worker in Redis: %s", exc)
            self._healthy = False
            return
        if not self._healthy:
            log.info("announcing worker in Redis again")
        self._healthy = True

    def stop(self) -> None:
        self._stop.set()
        try:
            pipe = self.redis.pipeline()
            withdraw(pipe, self.info.worker_id)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - the key expires on its own
            log.warning("cannot withdraw worker from Redis: %s", exc)

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.beat()


# --- the process's runtime -------------------------------------------------------------------


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

    def announce(self, consuming: Callable[[], bool]) -> Announcer:
        """Starts announcing this process; `consuming` says whether it takes its jobs."""
        s = self.settings
        now = time.time()
        info = WorkerInfo(
            worker_id=self.worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            device=str(self.device),
            models={name: m.info for name, m in self.models.items()},
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
        self.announcer = Announcer(self.redis, info, consuming).start()
        return self.announcer


_current: Runtime | None = None


def get_runtime() -> Runtime:
    if _current is None:
        raise RuntimeError("the worker runtime is not started (run the worker: python -m worker)")
    return _current


# A pass of a lone transfer: 2 rows to encode, 3 to generate with the domain check.
LONE_PASS_ROWS = 4


def uses_side_thread(s: WorkerSettings, device: torch.device) -> bool:
    """Whether small passes get a second device thread: on a CPU only (a GPU runs one stream)."""
    return s.small_pass_side_thread and device.type == "cpu"


def small_pass_rows(s: WorkerSettings, device: torch.device) -> int:
    """The largest pass that runs on `small_pass_threads` (and on the side thread beside the
    device thread). Where torch has two intra-op threads or fewer on a CPU, every pass: the two
    device threads, one intra-op thread each, give the same parallelism with no barrier per
    operator, and no pass stalls on a thread that the API or Redis took the core of (at
    concurrency 4 and 16, 7-10% more requests a second here: docs/performance.md). With more
    threads the large passes keep them all: the device threads are only two; without the side
    thread, a pass on one intra-op thread would have half the parallelism."""
    if s.small_pass_rows is not None:
        return s.small_pass_rows
    if uses_side_thread(s, device) and torch.get_num_threads() <= 2:
        return s.max_batch
    return LONE_PASS_ROWS


def start_runtime(s: WorkerSettings, backend) -> Runtime:
    """Loads and warms the models (StartupError if any checkpoint is refused), then starts
    the device thread and the watchdog. Nothing connects to Redis yet. `backend`: Celery's
    result backend, where the watchdog stores the timeouts it decides."""
    global _current
    if s.torch_threads:
        torch.set_num_threads(s.torch_threads)
    device = resolve_device(s.device)
    batcher = Batcher(
        s.max_batch,
        s.batch_wait_ms / 1000,
        small_rows=small_pass_rows(s, device),
        small_threads=s.small_pass_threads,
        side_thread=uses_side_thread(s, device),
    ).start()

    def load() -> dict[str, ServedModel]:
        models = load_models(s.model_dir, device)
        if s.warmup:
            warm_up(models)
        return models

    # On the device thread, the only one that runs the models afterwards: torch work on a
    # second thread would start a second team of intra-op threads, and with more of them than
    # cores OpenMP stops spinning between parallel regions, so every small pass waits for its
    # threads to wake (docs/performance.md).
    try:
        models = cast(dict[str, ServedModel], batcher.call(load).result())
    except BaseException:
        batcher.stop()
        raise

    def redis_client(retry: Retry):
        return sync_client(
            s.redis_url,
            s.redis_master_name,
            socket_timeout=10,
            socket_connect_timeout=5,
            health_check_interval=10,
            retry=retry,
        )

    client = redis_client(Retry(ExponentialBackoff(cap=2.0), 5))
    # A job's admission (its delivery counter) waits out a failover, Sentinel's detection and
    # promotion of a replica, rather than failing the job: a client retrying for about 30 s.
    jobs_client = redis_client(Retry(ExponentialBackoff(cap=2.0, base=0.05), 20))
    jobs = JobTracker(
        jobs_client,
        soft_limit=s.soft_time_limit,
        hard_limit=s.hard_time_limit,
        max_deliveries=s.max_deliveries,
        counter_ttl=int(s.result_expires + s.visibility_timeout * (s.max_deliveries + 1)),
        result_expires=s.result_expires,
        result_key=backend.get_key_for_task,
        store_result=backend.store_result,
        batcher=batcher,
    ).start()
    worker_id = f"{s.name}.{os.getpid()}"
    _current = Runtime(s, device, models, batcher, jobs, client, worker_id)
    return _current


def stop_runtime() -> None:
    global _current
    if _current is None:
        return
    if _current.announcer is not None:
        _current.announcer.stop()
    _current.jobs.stop()
    _current.batcher.stop()
    _current = None
