"""The Celery application: Redis broker and backend, JSON only, late acknowledgement.

`celery -A worker.app worker -P threads` and `python -m worker` both use this `app`. Its
configuration is computed from `get_settings()` on first use, not at import.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from contract.tasks import QUEUE
from worker.settings import WorkerSettings, get_settings


def celery_config(s: WorkerSettings) -> dict:
    return {
        "broker_url": s.redis_url,
        # kombu's Redis transport, less a crash on losing Redis mid-job (worker/transport.py).
        "broker_transport": "worker.transport:Transport",
        "result_backend": s.redis_url,
        # JSON in both directions; a message in any other serialisation is refused unread.
        "accept_content": ["json"],
        "task_serializer": "json",
        "result_serializer": "json",
        "result_accept_content": ["json"],
        "event_serializer": "json",
        # One declared queue; a mistyped queue name fails loudly instead of creating one.
        "task_queues": [Queue(QUEUE)],
        "task_default_queue": QUEUE,
        "task_create_missing_queues": False,
        # Acknowledge after the job finishes, so a worker killed mid-job loses nothing.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,  # one reserved message per task thread
        # No STARTED write before each task (a read and a write of the result key, and a
        # publication): the API tells "running" by the job's delivery counter (worker/jobs.py).
        "task_track_started": False,
        "worker_disable_rate_limits": True,  # no task has one: skip the bucket per message
        "result_expires": s.result_expires,
        "result_extended": False,
        "broker_transport_options": {
            "visibility_timeout": s.visibility_timeout,
            # kombu scans for expired unacked messages every interval * throttle seconds
            # (default 10 * 10); one scan per interval keeps recovery within the timeout.
            "unacked_restore_interval": s.restore_interval,
            "unacked_restore_throttle": 1,
            # A worker killed while holding the scan lock would block restores this long.
            "unacked_mutex_expire": 60,
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": s.connection_max_retries,
        "result_backend_always_retry": True,
        "result_backend_max_retries": s.connection_max_retries or float("inf"),
        "redis_backend_health_check_interval": 10,
        "worker_concurrency": s.concurrency,
        "worker_pool": s.pool,
        # Time limits are enforced by worker.jobs (the threads pool ignores Celery's own).
        "worker_hijack_root_logger": True,
    }


app = Celery("srbvae", include=["worker.tasks"])
app.add_defaults(lambda: celery_config(get_settings()))

# Process start-up (models, batcher, registry) hangs off the worker signals.
import worker.lifecycle  # noqa: E402, F401
