"""The worker registry: how workers announce the models they hold, so the API can answer
/models and /readyz.

Each worker process writes one JSON document under `worker_key(worker_id)` with a TTL and
refreshes it while it runs; a key that expires means a worker that is gone. Readers SCAN for
`worker_pattern()`, MGET the keys and hand the values to `parse_workers`:

    keys = list(client.scan_iter(match=worker_pattern(), count=100))
    workers = parse_workers(client.mget(keys) if keys else [])
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, ValidationError

log = logging.getLogger(__name__)

KEY_PREFIX = "srbvae:worker:"
HEARTBEAT_SECONDS = 5
TTL_SECONDS = 3 * HEARTBEAT_SECONDS


def worker_key(worker_id: str) -> str:
    return f"{KEY_PREFIX}{worker_id}"


def worker_pattern(name: str = "*") -> str:
    """The SCAN pattern of every process of the worker `name` (every worker by default):
    worker ids are `<name>.<pid>`."""
    return f"{KEY_PREFIX}*" if name == "*" else f"{KEY_PREFIX}{name}.*"


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
