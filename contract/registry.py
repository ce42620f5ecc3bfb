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
