"""The connections one service process holds, opened in the app's lifespan (not at import)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError

from service.core.celery_app import make_celery
from service.core.config import Settings
from service.core.jobs import JobQueue
from service.core.journal import Journal
from service.core.registry import WorkerRegistry
from service.core.results import ResultListener


def stale_connection_retry() -> Retry:
    """One immediate retry, on a fresh connection, of a command that failed with a
    ConnectionError. After a Redis restart the pool still holds the old sockets, and redis-py
    8 hands them out unchecked (its liveness check at checkout is skipped while maintenance
    notifications are "auto", the default): without this, the first requests after Redis is
    back would get 503 from a dead socket. Every command the API sends is safe to send twice
    (reads, SET/ZADD of the same values, the journal's SET NX lock). TimeoutError is not
    retried: a Redis that does not answer would take twice `redis_timeout_s` to become a 503;
    a refused connection retried fails again within milliseconds."""
    return Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))


@dataclass
class Backends:
    redis: Redis
    jobs: JobQueue
    registry: WorkerRegistry

    @classmethod
    def open(cls, settings: Settings) -> Backends:
        """No I/O here: clients connect on first use, so the process starts while Redis is
        down and answers 503 until it is back."""
        redis = Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=settings.redis_timeout_s,
            socket_timeout=settings.redis_timeout_s,
            health_check_interval=30,
            retry=stale_connection_retry(),
        )
        celery = make_celery(settings)
        journal = Journal(
            redis,
            celery,
            ttl_s=settings.result_ttl_s,
            resend_after_s=settings.resend_after_s,
            confirm_s=settings.journal_confirm_s,
            sweep_s=settings.journal_sweep_s,
        )
        listener = ResultListener(
            redis, timeout_s=settings.redis_timeout_s, retry_after_s=settings.retry_after_s
        )
        jobs = JobQueue(
            redis,
            celery,
            listener,
            result_ttl_s=settings.result_ttl_s,
            max_queue_depth=settings.max_queue_depth,
            max_memory_fraction=settings.max_redis_memory_fraction,
            retry_after_s=settings.retry_after_s,
            journal=journal,
        )
        registry = WorkerRegistry(redis, settings.registry_cache_s, settings.retry_after_s)
        return cls(redis, jobs, registry)

    async def close(self) -> None:
        await self.jobs.listener.close()
        await self.redis.aclose()
        self.jobs.celery.close()
