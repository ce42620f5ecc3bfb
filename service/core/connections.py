"""The connections one service process holds, opened in the app's lifespan (not at import):
a Redis client, and the Celery app it sends with (JSON only, the worker's Redis, no task code).

Tasks are sent by name (`contract.tasks.TaskName`); the worker's task modules are never
imported here, so the web process never loads torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.backends.redis import RedisBackend, SentinelBackend
from kombu import Queue
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError

from contract.redis_url import is_sentinel, sentinel_for
from contract.tasks import BODY_ENCODING, QUEUE
from service.core.config import Settings
from service.core.jobs import JobQueue
from service.core.journal import Journal
from service.core.results import ResultListener
from service.core.workers import LiveWorkers


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


class SendOnlyRedisBackend(RedisBackend):
    """Celery's Redis result backend without the subscription it makes for every task sent
    (for AsyncResult.get, which the API never calls: service.core.jobs waits on its own): a
    SUBSCRIBE before each send and an UNSUBSCRIBE, written from the event loop, when the
    AsyncResult is dropped. Without them a send costs about a fifth less CPU."""

    def on_task_call(self, producer, task_id) -> None:
        pass


class SendOnlySentinelBackend(SentinelBackend):
    """The same for a Sentinel-managed Redis (a sentinel:// URL)."""

    def on_task_call(self, producer, task_id) -> None:
        pass


def make_celery(settings: Settings) -> Celery:
    sentinel = is_sentinel(settings.redis_url)
    backend_class = SendOnlySentinelBackend if sentinel else SendOnlyRedisBackend
    # "<class>+<url>": Celery's way to name the backend class along with its URL.
    backend = f"{__name__}:{backend_class.__name__}+{settings.redis_url}"
    app = Celery("srbvae-api", broker=settings.redis_url, backend=backend)
    timeout = settings.redis_timeout_s
    # kombu's and Celery's Sentinel support find the primary by this name.
    master = {"master_name": settings.redis_master_name} if sentinel else {}
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        result_expires=settings.result_ttl_s,
        # The worker's one declared queue; a mistyped name fails instead of creating a queue.
        task_queues=[Queue(QUEUE)],
        task_default_queue=QUEUE,
        task_create_missing_queues=False,
        # A stale pooled connection after a Redis restart gets one quick retry; an outage
        # beyond that is a 503 now rather than a request hanging on reconnects.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        broker_connection_timeout=timeout,
        broker_connection_retry_on_startup=False,
        broker_transport_options={
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "body_encoding": BODY_ENCODING,  # the journal's resends too
            **master,
        },
        result_backend_transport_options=master,
        redis_socket_connect_timeout=timeout,
        redis_socket_timeout=timeout,
    )
    return app


def redis_client(settings: Settings) -> Redis:
    """The process's client of the primary. Behind Sentinels, each new connection asks them
    where the primary is: after a failover, the connections to the old one fail (or are
    told READONLY), the stale-connection retry reconnects, and so finds the new one."""
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_timeout_s,
        "socket_timeout": settings.redis_timeout_s,
        "health_check_interval": 30,
        "retry": stale_connection_retry(),
    }
    if not is_sentinel(settings.redis_url):
        return Redis.from_url(settings.redis_url, **options)
    sentinel, master = sentinel_for(settings.redis_url, Sentinel, **options)
    return sentinel.master_for(settings.redis_master_name, redis_class=Redis, **master)


@dataclass
class Connections:
    redis: Redis
    jobs: JobQueue
    workers: LiveWorkers

    @classmethod
    def open(cls, settings: Settings) -> Connections:
        """No I/O here: clients connect on first use, so the process starts while Redis is
        down and answers 503 until it is back."""
        redis = redis_client(settings)
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
            min_replicas=settings.redis_min_replicas,
            replica_wait_s=settings.redis_replica_wait_s,
            group_max_jobs=settings.group_max_jobs,
            group_wait_s=settings.group_wait_ms / 1000,
        )
        workers = LiveWorkers(redis, settings.registry_cache_s, settings.retry_after_s)
        return cls(redis, jobs, workers)

    async def close(self) -> None:
        await self.jobs.listener.close()
        await self.redis.aclose()
        self.jobs.celery.close()
