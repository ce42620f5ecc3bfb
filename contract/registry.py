"""How workers announce the models they hold, so the API can answer /models and /readyz.

Each worker process writes one JSON document under `worker_key(worker_id)` with a TTL and
refreshes it while it runs; a key that expires means a worker that is gone.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

KEY_PREFIX = "srbvae:worker:"
HEARTBEAT_SECONDS = 5
TTL_SECONDS = 3 * HEARTBEAT_SECONDS


def worker_key(worker_id: str) -> str:
    return f"{KEY_PREFIX}{worker_id}"


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    resolution: int
    z_dim: int
    e_dim: int
    variant: str
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
    # What the worker runs with, as in force (issue 8 asserts them on a running worker).
    queue: str | None = None
    pool: str | None = None
    concurrency: int | None = None  # jobs in flight at once
    max_batch: int | None = None  # rows per forward pass
    soft_time_limit: float | None = None  # seconds; the job fails with JobTimeout
    hard_time_limit: float | None = None  # seconds; the process is replaced
    visibility_timeout: float | None = None  # seconds before an unacked job is handed out again
    max_deliveries: int | None = None  # starts before a job fails with TooManyDeliveries


def read_workers(client) -> list[WorkerInfo]:
    """Every live worker's announcement. `client` is a redis-py client (sync); entries that
    do not parse (another version of the contract) are skipped."""
    keys = sorted(client.scan_iter(match=f"{KEY_PREFIX}*", count=100))
    workers = []
    for raw in client.mget(keys) if keys else []:
        if raw is None:  # expired between SCAN and MGET
            continue
        try:
            workers.append(WorkerInfo.model_validate_json(raw))
        except ValueError:
            continue
    return workers
