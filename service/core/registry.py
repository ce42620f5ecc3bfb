"""Which models the live workers hold, read from the registry they write to Redis."""

from __future__ import annotations

import logging
import time

from pydantic import ValidationError
from redis.asyncio import Redis

from contract.registry import KEY_PREFIX, ModelInfo, WorkerInfo
from service.core.redis_errors import redis_errors

log = logging.getLogger(__name__)


class WorkerRegistry:
    def __init__(self, redis: Redis, cache_s: float, retry_after_s: int) -> None:
        self.redis = redis
        self.cache_s = cache_s
        self.retry_after_s = retry_after_s
        self._cached: tuple[float, list[WorkerInfo]] | None = None

    async def workers(self) -> list[WorkerInfo]:
        """Live workers (their keys have not expired), read at most every `cache_s`."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.cache_s:
            return self._cached[1]
        async with redis_errors(self.retry_after_s):
            keys = [key async for key in self.redis.scan_iter(match=f"{KEY_PREFIX}*", count=100)]
            values = await self.redis.mget(keys) if keys else []
        workers = []
        for key, raw in zip(keys, values, strict=True):
            if raw is None:  # expired between SCAN and MGET
                continue
            try:
                workers.append(WorkerInfo.model_validate_json(raw))
            except ValidationError:
                log.warning("ignoring malformed worker registry entry %s", key)
        self._cached = (now, workers)
        return workers

    async def models(self) -> dict[str, ModelInfo]:
        """Models held by at least one worker that is still consuming its queue."""
        found: dict[str, ModelInfo] = {}
        for worker in await self.workers():
            if worker.consuming:
                for name, info in worker.models.items():
                    found.setdefault(name, info)
        return found
