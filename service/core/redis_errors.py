"""Redis outages become 503 with Retry-After, wherever the service talks to Redis."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError, TimeoutError

from service.core.errors import Unavailable

log = logging.getLogger(__name__)

OUTAGES = (ConnectionError, TimeoutError, OperationalError, OSError)


@contextlib.asynccontextmanager
async def redis_errors(retry_after_s: int) -> AsyncIterator[None]:
    try:
        yield
    except OUTAGES as exc:
        log.warning("Redis unavailable: %s", exc)
        raise Unavailable("the job queue (Redis) is unavailable", retry_after_s) from exc
