"""The Celery app the service sends with: JSON only, the worker's Redis, no task code.

Tasks are sent by name (`contract.tasks.TaskName`); the worker's task modules are never
imported here, so the web process never loads torch.
"""

from __future__ import annotations

from celery import Celery
from celery.backends.redis import RedisBackend
from kombu import Queue

from contract.tasks import QUEUE
from service.core.config import Settings


class SendOnlyRedisBackend(RedisBackend):
    """Celery's Redis result backend without the subscription it makes for every task sent
    (for AsyncResult.get, which the API never calls: service.core.jobs waits on its own): a
    SUBSCRIBE before each send and an UNSUBSCRIBE, written from the event loop, when the
    AsyncResult is dropped. Without them a send costs about a fifth less CPU."""

    def on_task_call(self, producer, task_id) -> None:
        pass


def make_celery(settings: Settings) -> Celery:
    # "<class>+<url>": Celery's way to name the backend class along with its URL.
    backend = f"{__name__}:{SendOnlyRedisBackend.__name__}+{settings.redis_url}"
    app = Celery("srbvae-api", broker=settings.redis_url, backend=backend)
    timeout = settings.redis_timeout_s
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
        },
        redis_socket_connect_timeout=timeout,
        redis_socket_timeout=timeout,
    )
    return app
