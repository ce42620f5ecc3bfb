"""Process start-up and shutdown, hung off Celery's worker signals, so `python -m worker` and
`celery -A worker.app worker` behave the same.

worker_init (before any connection): check the pool, load and verify the models, start the
device thread. A refused checkpoint exits with EXIT_CONFIG before any job is taken.
Consumer started: announce the worker in Redis (with the effective visibility timeout), and
from then on whether it is consuming (worker/stall.py).
worker_shutdown: withdraw the announcement, stop the threads.
"""

from __future__ import annotations

import logging

from celery import bootsteps, signals

from contract.registry import HEARTBEAT_SECONDS
from worker import runtime as rt
from worker.app import app
from worker.models import StartupError
from worker.settings import get_settings
from worker.stall import StallWatch

log = logging.getLogger(__name__)

EXIT_CONFIG = 78  # EX_CONFIG: restarting will not help; the supervisor gives up


@signals.worker_init.connect
def _on_worker_init(sender, **_) -> None:
    pool = str(getattr(sender, "pool_cls", ""))
    if not any(ok in pool for ok in ("thread", "solo")):
        # prefork would fork after the models (and maybe CUDA) are set up, and each child
        # would batch alone; threads keep one device and let requests meet in one batch.
        log.critical("the worker needs the threads or solo pool, got %s (use -P threads)", pool)
        raise SystemExit(EXIT_CONFIG)
    settings = get_settings()
    if settings.debug_tasks:
        import worker.debug  # noqa: F401 - registers srbvae.debug.*
    try:
        rt.start_runtime(settings, app)
    except StartupError as exc:
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
        if runtime.announcer is None:
            rt.announce(runtime, self._consuming)
        channel = c.connection.default_channel
        # The value kombu's channel actually uses, not the one we asked for.
        runtime.announcer.info.visibility_timeout = float(channel.visibility_timeout)
        runtime.announcer.beat()

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


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_) -> None:
    rt.stop_runtime()
