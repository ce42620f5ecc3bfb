"""Notices a worker process that is connected but no longer takes jobs.

Celery 5.x has had several bugs in which a worker, after a Redis reconnect, stays connected
and keeps announcing itself while its consumer no longer asks Redis for messages; a job slot
that is never freed (a result Redis refused to store) ends the same way. Celery's own state
shows neither, so this watches from outside: jobs wait in the queue, yet this process has
taken none for longer than a consuming process could:

- `free_s` while it has a free task slot: its consumer should then be blocked on BRPOP, and
  Redis hands a waiting job to a blocked client at once;
- `busy_s` (more than the hard time limit) while every slot is busy: each job ends by then.

A stalled process says so in its registry entry (`consuming: false`: /readyz stops counting
it) and, `exit_after_s` later (a heartbeat), exits with EXIT_STALLED; the
supervisor starts a fresh process, and the visibility timeout hands out again whatever the
stalled one held.
"""

from __future__ import annotations

import logging
import os
import time

from celery.worker import state
from redis.exceptions import RedisError

from contract.tasks import QUEUE
from worker import transport

log = logging.getLogger(__name__)

EXIT_STALLED = 75  # EX_TEMPFAIL: the supervisor restarts the process


class StallWatch:
    def __init__(self, redis, *, concurrency: int, free_s: float, busy_s: float,
                 exit_after_s: float) -> None:  # fmt: skip
        self.redis = redis
        self.concurrency = concurrency
        self.free_s = free_s
        self.busy_s = busy_s
        self.exit_after_s = exit_after_s
        self._progress = time.monotonic()  # last delivery, (re)connection or empty queue seen
        self._free_since: float | None = None  # first check that saw a free slot

    def reset(self) -> None:
        """At each (re)connection of the consumer."""
        self._progress = time.monotonic()

    def stalled(self) -> bool:
        now = time.monotonic()
        self._progress = max(self._progress, transport.last_delivery())
        if len(state.reserved_requests) < self.concurrency:
            self._free_since = self._free_since or now
        else:
            self._free_since = None
        try:
            waiting = self.redis.llen(QUEUE)
        except RedisError:
            return False  # an outage: the connection check reports it
        if not waiting:
            self._progress = now
            return False
        if self._free_since is not None:
            since, limit = max(self._progress, self._free_since), self.free_s
        else:
            since, limit = self._progress, self.busy_s
        if now - since <= limit:
            return False
        if now - since > limit + self.exit_after_s:
            log.critical(
                "%d job(s) waiting and none taken for %.0f s: this process stopped consuming "
                "its queue; exiting so that a fresh one takes over", waiting, now - since,
            )  # fmt: skip
            logging.shutdown()
            os._exit(EXIT_STALLED)
        log.error(
            "%d job(s) waiting and none taken for %.0f s: not consuming", waiting, now - since
        )
        return True
