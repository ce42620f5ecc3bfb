"""The worker's settings: one pydantic-settings class, read from `SRBVAE_WORKER_*` variables.

    SRBVAE_WORKER_REDIS_URL=redis://redis:6379/0 SRBVAE_WORKER_DEVICE=cuda python -m worker

Read through the cached `get_settings()`; tests start worker subprocesses with their own
environment rather than overriding it in-process.
"""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.redis_url import check_url

REPO_ROOT = Path(__file__).resolve().parent.parent
# The exit status of a process that must not be restarted: a refused setting or checkpoint.
EXIT_CONFIG = 78  # EX_CONFIG


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SRBVAE_WORKER_", protected_namespaces=())

    # Broker and result backend alike: redis://... for one Redis, or
    # sentinel://host:port;sentinel://host:port/db for Sentinels (contract/redis_url.py).
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_master_name: str = "srbvae"  # the primary's name at the Sentinels
    model_dir: Path = REPO_ROOT / "models"  # one checkpoint directory per model name
    device: str = "auto"  # auto: cuda when present, else cpu; or "cpu", "cuda:1", ...
    name: str = Field(default_factory=socket.gethostname)  # node name; worker ids add the pid

    # One process, `concurrency` task threads feeding one device thread: the threads are what
    # lets requests that arrive together meet in one batch (see docs/worker.md).
    pool: Literal["threads", "solo"] = "threads"
    concurrency: int = Field(default=16, ge=1, le=256)
    max_batch: int = Field(default=64, ge=1, le=1024)  # rows (images) per forward pass
    # A few ms: long enough for concurrent requests to meet, short against a ~10 ms forward.
    batch_wait_ms: float = Field(default=3.0, ge=0.0, le=1000.0)
    torch_threads: int | None = Field(default=None, ge=1)  # None: torch's default
    # Forward passes of at most `small_pass_rows` rows (a lone transfer: 2 to encode, 3 to
    # generate with its domain check) run on `small_pass_threads` intra-op threads; None: on
    # torch_threads as the larger ones do. Rows None: decided at start-up (small_pass_rows()
    # in worker/runtime.py): every pass on a CPU of two intra-op threads with the side thread,
    # else 4.
    small_pass_rows: int | None = Field(default=None, ge=0)
    small_pass_threads: int | None = Field(default=1, ge=1)
    # On a CPU, such a pass runs on two threads: q(z|x) beside q(e|x); G on half the rows each.
    small_pass_side_thread: bool = True
    warmup: bool = True

    # Time limits, seconds. Soft: the job fails with JobTimeout and its thread is freed.
    # Hard: something is stuck past the soft limit (a forward pass that never returns), so the
    # process records the timeout and exits; the supervisor starts a fresh one.
    soft_time_limit: float = Field(default=30.0, gt=0)
    hard_time_limit: float = Field(default=60.0, gt=0)
    # A job unacknowledged for this long is handed out again (its worker is presumed dead);
    # it must exceed the hard limit or a slow job would run twice.
    visibility_timeout: float = Field(default=300.0, gt=0)
    restore_interval: float = Field(default=10.0, gt=0)  # how often that check runs
    max_deliveries: int = Field(default=3, ge=1)  # a job started more often fails: poison
    # Jobs waiting this long while this process has a free slot and takes none (or the hard
    # limit plus this long with every slot busy): it stopped consuming (worker/stall.py).
    stall_after: float = Field(default=15.0, gt=0)
    result_expires: int = Field(default=3600, ge=1)  # seconds results stay in Redis
    connection_max_retries: int | None = 100  # at start-up and after losing Redis; None: forever

    loglevel: str = "INFO"

    @model_validator(mode="after")
    def _limits_in_order(self) -> WorkerSettings:
        check_url(self.redis_url, self.redis_master_name)
        if not self.soft_time_limit < self.hard_time_limit < self.visibility_timeout:
            raise ValueError(
                "need soft_time_limit < hard_time_limit < visibility_timeout, got "
                f"{self.soft_time_limit} / {self.hard_time_limit} / {self.visibility_timeout}"
            )
        return self


@lru_cache
def get_settings() -> WorkerSettings:
    return WorkerSettings()
