"""The live workers and the models they hold, read from the registry they write to Redis
(contract/registry.py)."""

from __future__ import annotations

import time
from typing import cast

from redis.asyncio import Redis

from contract.registry import (
    INDEX_KEY,
    ModelInfo,
    WorkerInfo,
    gone,
    parse_workers,
    registry_ids,
    worker_key,
)
from service.core.errors import ApiError, Unavailable, redis_errors


class LiveWorkers:
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
            # redis-py types replies as bytes | str (for decode_responses=True); this client leaves it off.
            ids = registry_ids(cast(list[bytes], await self.redis.zrange(INDEX_KEY, 0, -1)))
            values = await self.redis.mget([worker_key(i) for i in ids]) if ids else []
            if expired := gone(ids, values):
                await self.redis.zrem(INDEX_KEY, *expired)
            workers = parse_workers(values)
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

    async def model(self, name: str) -> ModelInfo:
        """The model `name` as a live worker holds it: 404 for a name no worker has, 503 when
        no worker is up at all."""
        models = await self.models()
        if name in models:
            return models[name]
        if not models:
            raise Unavailable("no worker is serving models", self.retry_after_s)
        raise ApiError(404, f"unknown model {name!r}; available: {', '.join(sorted(models))}")
