"""The Celery application (Redis broker and backend, JSON only, late acknowledgement) and the
process's start-up and shutdown, hung off Celery's worker signals.

`celery -A worker.app worker -P threads` and `python -m worker` both use this `app`. Its
configuration is computed from `get_settings()` on first use, not at import; importing this
module imports torch (the tasks' runtime), so the supervisor and the API never do.

- worker_init (before any connection): check the pool, load and verify the models, start the
  device thread (worker/runtime.py). A refused checkpoint exits with EXIT_CONFIG before any
  job is taken.
- Consumer started: announce the worker in Redis (with the effective visibility timeout), and
  from then on whether it is consuming (worker/stall.py).
- worker_shutdown: withdraw the announcement, stop the threads.
"""

from __future__ import annotations

import logging

from celery import Celery, bootsteps, signals
from kombu import Queue

from contract.redis_url import is_sentinel
from contract.registry import HEARTBEAT_SECONDS
from contract.tasks import BODY_ENCODING, QUEUE
from worker import runtime as rt
from worker import trace
from worker.settings import EXIT_CONFIG, WorkerSettings, get_settings
from worker.stall import StallWatch
from worker.transport import use_for_sentinel_urls

log = logging.getLogger(__name__)


def celery_config(s: WorkerSettings) -> dict:
    sentinel = is_sentinel(s.redis_url)
    # kombu's and Celery's Sentinel support find the primary by this name.
    master = {"master_name": s.redis_master_name} if sentinel else {}
    transport = "SentinelTransport" if sentinel else "Transport"
    if sentinel:
        use_for_sentinel_urls()
    return {
        "broker_url": s.redis_url,
        # kombu's Redis transport, less a crash on losing Redis mid-job (worker/transport.py).
        "broker_transport": f"worker.transport:{transport}",
        "result_backend": s.redis_url,  # sentinel:// selects Celery's SentinelBackend
        "result_backend_transport_options": master,
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
        # publication): the API tells "running" by the job's delivery counter (worker/tracker.py).
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
            "body_encoding": BODY_ENCODING,  # as the API sends them: no base64 to decode
            **master,
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": s.connection_max_retries,
        "result_backend_always_retry": True,
        "result_backend_max_retries": s.connection_max_retries or float("inf"),
        "redis_backend_health_check_interval": 10,
        "worker_concurrency": s.concurrency,
        "worker_pool": s.pool,
        # Time limits are enforced by worker.tracker (the threads pool ignores Celery's own).
        "worker_hijack_root_logger": True,
    }


app = Celery("srbvae", include=["worker.tasks", "worker.groups"])
app.add_defaults(lambda: celery_config(get_settings()))


@signals.worker_init.connect
def _on_worker_init(sender, **_) -> None:
    pool = str(getattr(sender, "pool_cls", ""))
    if not any(ok in pool for ok in ("thread", "solo")):
        # prefork would fork after the models (and maybe CUDA) are set up, and each child
        # would batch alone; threads keep one device and let requests meet in one batch.
        log.critical("the worker needs the threads or solo pool, got %s (use -P threads)", pool)
        raise SystemExit(EXIT_CONFIG)
    if get_settings().loglevel.upper() != "DEBUG":
        # A line per job received, written by Celery's consumer thread, which every job's
        # receipt waits on. What became of each job is still logged (succeeded, failed, ...).
        logging.getLogger("celery.worker.strategy").setLevel(logging.WARNING)
    try:
        rt.start_runtime(get_settings(), app.backend)
    except rt.StartupError as exc:
        log.critical("refusing to start: %s", exc)
        raise SystemExit(EXIT_CONFIG) from None


class Announce(bootsteps.StartStopStep):
    """Consumer step: runs once the task consumer is consuming, again after a reconnect."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.consumer = None
        self.watch: StallWatch | None = None

    def start(self, c) -> None:
        self.consumer = c
        runtime = rt.get_runtime()
        s = runtime.settings
        if self.watch is None:
            self.watch = StallWatch(
                runtime.redis,
                concurrency=s.concurrency,
                free_s=s.stall_after,
                busy_s=s.hard_time_limit + s.stall_after,
                exit_after_s=HEARTBEAT_SECONDS,  # one beat says consuming: false first
            )
        self.watch.reset()
        announcer = runtime.announcer or runtime.announce(self._consuming)
        channel = c.connection.default_channel
        # The value kombu's channel actually uses, not the one we asked for.
        announcer.info.visibility_timeout = float(channel.visibility_timeout)
        announcer.beat()

    def stop(self, c) -> None:
        self.consumer = None

    def _consuming(self) -> bool:
        """Connected, and taking the jobs that wait (worker/stall.py)."""
        c = self.consumer
        connected = bool(
            c is not None
            and c.task_consumer is not None
            and c.connection is not None
            and c.connection.connected
        )
        return connected and self.watch is not None and not self.watch.stalled()


app.steps["consumer"].add(Announce)


if trace.ENABLED:  # SRBVAE_TRACE_TIMINGS=1 (bench/request_timeline.py): no receiver otherwise

    @signals.task_received.connect
    def _on_task_received(request=None, **_) -> None:
        trace.received(getattr(request, "id", None))


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_) -> None:
    rt.stop_runtime()
