"""Redis outages, and a Redis at its memory limit, become 503 with Retry-After, wherever the
service talks to Redis."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError, OutOfMemoryError, TimeoutError

from service.core.errors import Unavailable

log = logging.getLogger(__name__)

OUTAGES = (ConnectionError, TimeoutError, OperationalError, OSError)


@contextlib.asynccontextmanager
async def redis_errors(retry_after_s: int) -> AsyncIterator[None]:
    try:
        yield
    except OutOfMemoryError as exc:  # at maxmemory with noeviction: writes are refused
        log.warning("Redis is full: %s", exc)
        raise Unavailable("the job queue (Redis) is full", retry_after_s) from exc
    except OUTAGES as exc:
        log.warning("Redis unavailable: %s", exc)
        raise Unavailable("the job queue (Redis) is unavailable", retry_after_s) from exc
