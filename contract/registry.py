"""The worker registry: how workers announce the models they hold, so the API can answer
/models and /readyz.

Each worker process writes one JSON document under `worker_key(worker_id)` with a TTL and
refreshes it while it runs; a key that expires means a worker that is gone. Its id is also in
the sorted set INDEX_KEY (scored by heartbeat time), so that a reader asks for the workers in
two commands, however many other keys (results, one per job) Redis holds; a SCAN of the
keyspace would grow with them. Readers hand the values to `parse_workers`, and may drop the
ids whose key has expired (`gone`):

    ids = registry_ids(client.zrange(INDEX_KEY, 0, -1))
    values = client.mget([worker_key(i) for i in ids]) if ids else []
    workers = parse_workers(values)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, ValidationError

log = logging.getLogger(__name__)

KEY_PREFIX = "srbvae:worker:"
HEARTBEAT_SECONDS = 5
TTL_SECONDS = 3 * HEARTBEAT_SECONDS


INDEX_KEY = "srbvae:workers"  # sorted set: worker id -> its last heartbeat (Unix time)


def worker_key(worker_id: str) -> str:
    return f"{KEY_PREFIX}{worker_id}"


def announce(pipe, info: WorkerInfo) -> None:
    """Queues the writes of one heartbeat on a (transactional) pipeline: the entry, its place
    in the index, and the index's own expiry (it outlives the last worker by one TTL)."""
    pipe.set(worker_key(info.worker_id), info.model_dump_json(), ex=TTL_SECONDS)
    pipe.zadd(INDEX_KEY, {info.worker_id: info.heartbeat_at})
    pipe.expire(INDEX_KEY, TTL_SECONDS)


def withdraw(pipe, worker_id: str) -> None:
    pipe.delete(worker_key(worker_id))
    pipe.zrem(INDEX_KEY, worker_id)


def registry_ids(members: Iterable[bytes | str], name: str = "*") -> list[str]:
    """The index's members as worker ids: all, or those of the worker `name` (ids are
    `<name>.<pid>`)."""
    ids = [m.decode() if isinstance(m, bytes) else m for m in members]
    return ids if name == "*" else [i for i in ids if i.startswith(f"{name}.")]


def gone(ids: list[str], values: Iterable[bytes | str | None]) -> list[str]:
    """The ids whose entry has expired (MGET gave None): to be removed from the index."""
    return [i for i, raw in zip(ids, values, strict=True) if raw is None]


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    resolution: int
    z_dim: int
    e_dim: int
    variant: str
    # How it was trained, e.g. "Rb-VAE + latent domain adversary" (model.config.method_name).
    method: str = ""
    checkpoint_sha256: str
    card: dict = {}  # from the checkpoint manifest: data, training command, wall time, metrics
    # A faces model: the framing (the renderer's zoom) of its training crops, to which faces
    # found in photos are aligned. None: the model takes pictures at its own framing only.
    face_zoom: float | None = None
    # How the model's edits are rendered unless a request says (contract.tasks.Render).
    rendering: str = "generator"


class WorkerInfo(BaseModel):
    worker_id: str
    hostname: str
    pid: int
    device: str
    models: dict[str, ModelInfo]
    started_at: float
    heartbeat_at: float
    consuming: bool = True  # False when the worker detected it stopped consuming its queue
    # What the worker runs with, as in force.
    queue: str | None = None
    pool: str | None = None
    concurrency: int | None = None  # jobs in flight at once
    max_batch: int | None = None  # rows per forward pass
    soft_time_limit: float | None = None  # seconds; the job fails with JobTimeout
    hard_time_limit: float | None = None  # seconds; the process is replaced
    visibility_timeout: float | None = None  # seconds before an unacked job is handed out again
    max_deliveries: int | None = None  # starts before a job fails with TooManyDeliveries


def parse_workers(values: Iterable[bytes | str | None]) -> list[WorkerInfo]:
    """Registry values (as MGET returns them) -> the live workers' announcements. A None (a key
    that expired between SCAN and MGET) is skipped, and so is an entry that does not parse
    (another version of the contract), with a warning."""
    workers = []
    for raw in values:
        if raw is None:
            continue
        try:
            workers.append(WorkerInfo.model_validate_json(raw))
        except ValidationError:
            log.warning("ignoring a malformed worker registry entry: %.200r", raw)
    return workers
