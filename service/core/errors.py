"""The service's one error type (an HTTP status, a JSON `detail`, and optional headers), and
how a Redis outage becomes one: 503 with Retry-After, wherever the service talks to Redis."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import HTTPException
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError, OutOfMemoryError, TimeoutError

log = logging.getLogger(__name__)

OUTAGES = (ConnectionError, TimeoutError, OperationalError, OSError)


class ApiError(HTTPException):
    """Rendered by FastAPI's handler as `{"detail": ...}`; also passes through body parsing,
    which turns any other exception into a generic 400."""

    def __init__(self, status: int, detail: object, headers: dict[str, str] | None = None):
        super().__init__(status_code=status, detail=detail, headers=headers)


class Unavailable(ApiError):
    """Redis, the workers or the queue cannot take the job now: 503 with Retry-After."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(503, detail, headers={"Retry-After": str(retry_after_s)})


@contextlib.asynccontextmanager
async def redis_errors(retry_after_s: int) -> AsyncIterator[None]:
    """Redis outages, and a Redis at its memory limit, raise Unavailable."""
    try:
        yield
    except OutOfMemoryError as exc:  # at maxmemory with noeviction: writes are refused
        log.warning("Redis is full: %s", exc)
        raise Unavailable("the job queue (Redis) is full", retry_after_s) from exc
    except OUTAGES as exc:
        log.warning("Redis unavailable: %s", exc)
        raise Unavailable("the job queue (Redis) is unavailable", retry_after_s) from exc
