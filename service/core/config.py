"""The service's one settings class, read from `SRBVAE_API_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from PIL import Image
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contract.redis_url import check_url

MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SRBVAE_API_", extra="ignore")

    # Broker and result backend, as the worker's: redis://... for one Redis, or
    # sentinel://host:port;sentinel://host:port/db for Sentinels and the primary they name
    # (contract/redis_url.py).
    redis_url: str = "redis://localhost:6379/0"
    redis_master_name: str = "srbvae"  # the primary's name at the Sentinels
    # A job is answered 202 once this many replicas hold it (Redis WAIT); fewer within
    # redis_replica_wait_s: 503, as a write a failover may still lose (docs/deploy.md).
    redis_min_replicas: int = Field(0, ge=0)
    redis_replica_wait_s: float = Field(0.5, gt=0)
    default_model: str = "faces"  # used when a request names none; /readyz waits for it
    # The workers' model directory (or a copy of it): the API reads only each model's
    # examples/ from it, for GET /models/{name}/examples; the checkpoints stay the workers'.
    model_dir: Path = Path("models")

    # Uploads are held in memory (never spooled to disk), so these bound the memory per request.
    max_upload_bytes: int = Field(10 * MiB, gt=0)  # one file
    max_request_bytes: int = Field(24 * MiB, gt=0)  # a whole body: two full files and headers
    max_files: int = Field(64, gt=0)  # contract.tasks.MAX_BATCH images per /encode
    max_fields: int = Field(16, gt=0)
    max_field_bytes: int = Field(4096, gt=0)  # text fields are numbers and model names
    # Below Pillow's MAX_IMAGE_PIXELS (~89 M), which only warns up to twice its value.
    max_pixels: int = Field(25_000_000, gt=0)
    # Memory for image work: upload bodies held in memory and their decoding (service/core/
    # budget.py). A request reserves its share before reading its body and before decoding;
    # what does not fit waits up to image_memory_wait_s, then 503. 256 MiB is 7 requests of two
    # 9 MB photos at once, plus one full-size 12-megapixel PNG being decoded.
    image_memory_bytes: int = Field(256 * MiB, gt=0)
    image_memory_wait_s: float = Field(10.0, ge=0)

    job_timeout_s: float = Field(30.0, gt=0)  # a synchronous request answers 504 after this
    result_ttl_s: int = Field(3600, gt=0)  # job records and results expire from Redis
    max_queue_depth: int = Field(1000, gt=0)  # more waiting messages than this: 503
    # Jobs that reach the API together go out together, as one message of at most this many
    # (service/core/groups.py); 1 sends each alone. Before it goes, a group waits at most
    # group_wait_ms for the job requests already reading their uploads; a lone job never waits.
    # Eight, not more: the worker starts on one group while the API reads the next
    # (docs/performance.md).
    group_max_jobs: int = Field(8, ge=1, le=64)
    group_wait_ms: float = Field(5.0, ge=0, le=100)
    # New jobs get 503 once Redis uses this fraction of its maxmemory: the rest is for the
    # jobs already accepted (workers' unacked entries, results), which Redis would refuse too.
    max_redis_memory_fraction: float = Field(0.9, gt=0, le=1)
    # Async jobs with no result this long after submission are looked for, and sent again if
    # the broker lost them (service/core/journal.py); twice the worker's visibility timeout.
    resend_after_s: float = Field(600.0, gt=0)
    journal_confirm_s: float = Field(10.0, ge=0)  # found nowhere, and still so this much later
    journal_sweep_s: float = Field(30.0, gt=0)  # how often that look is taken
    retry_after_s: int = Field(5, gt=0)  # the Retry-After of every 503
    redis_timeout_s: float = Field(2.0, gt=0)  # connect and command timeout: fail fast, 503
    registry_cache_s: float = Field(1.0, ge=0)  # how long a read of the worker registry is reused

    # FastAPI's OpenTelemetry tracing, metrics and logs, sent to the providers an OpenTelemetry
    # SDK installs (none is installed by this service). Off, FastAPI does not look for them on
    # every request (about 3% of the API's CPU per request, docs/performance.md); the
    # Prometheus metrics of GET /metrics are the service's own and stay on.
    opentelemetry: bool = False

    cors_origins: Annotated[list[str], NoDecode] = []  # comma-separated in the environment
    api_key: SecretStr | None = None  # when set, job routes need header X-API-Key

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("api_key")
    @classmethod
    def _no_placeholder_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if not secret:
            return None  # an empty variable means no key
        if secret.lower() in {"changeme", "changethis", "secret", "password"} or len(secret) < 16:
            raise ValueError("api_key must be a real secret of at least 16 characters")
        return value

    @model_validator(mode="after")
    def _limits_consistent(self) -> Settings:
        check_url(self.redis_url, self.redis_master_name)
        if self.redis_min_replicas and self.redis_replica_wait_s >= self.redis_timeout_s:
            # WAIT blocks its connection: a longer wait would read as Redis not answering
            raise ValueError("redis_replica_wait_s must be shorter than redis_timeout_s")
        if Image.MAX_IMAGE_PIXELS and self.max_pixels >= Image.MAX_IMAGE_PIXELS:
            raise ValueError(f"max_pixels must stay below Pillow's {Image.MAX_IMAGE_PIXELS}")
        if self.max_request_bytes < self.max_upload_bytes:
            raise ValueError("max_request_bytes must be at least max_upload_bytes")
        if self.image_memory_bytes < self.max_request_bytes + self.max_upload_bytes:
            # else the largest body allowed could never be read
            raise ValueError(
                "image_memory_bytes must be at least max_request_bytes plus max_upload_bytes"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
