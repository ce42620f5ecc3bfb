"""Job bookkeeping that Celery's threads pool does not do: deliveries, time limits, and a
watchdog that replaces the process when something is stuck past the hard limit.

- Deliveries: every start of a job increments a counter in Redis; past `max_deliveries` the
  job fails with TooManyDeliveries instead of killing one more worker (a poison job). A job
  started before (its worker died under it) runs alone in its process: were it the poison,
  it would otherwise take the jobs running beside it down again, until they too ran out of
  deliveries.
- Results: a job's result is stored here, as Celery's Redis backend stores it (the same value
  under the same key, with its expiry, published on the channel named after the key), in one
  round trip; Celery's own reads the key first. Failures are still stored by Celery.
- Finished jobs: a redelivered job whose result is already stored (its worker died between
  storing and acknowledging, or the watchdog recorded a timeout) is acknowledged and skipped,
  so each job's result is stored once.
- Soft limit: a job waits for the device with the time it has left and fails with
  JobTimeout when it runs out; its thread is free again at once.
- Hard limit: a thread or the device stuck past it cannot be interrupted from Python. The
  watchdog stores JobTimeout for the jobs involved and exits the process (EXIT_HARD_TIMEOUT);
  the supervisor (`python -m worker`) or the deployment's restart policy starts a fresh one,
  and the other unacknowledged jobs are handed out again after the visibility timeout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from celery import states
from celery.exceptions import Ignore
from redis import RedisError

from contract.errors import JobTimeout, TooManyDeliveries
from contract.tasks import DELIVERIES_PREFIX, TRACE_FIELD
from worker import trace
from worker.batcher import Batcher

log = logging.getLogger(__name__)

EXIT_HARD_TIMEOUT = 70  # EX_SOFTWARE: the supervisor restarts the process
_SPLIT = b"split"  # a group message's deliveries value once its jobs were re-queued one by one


class JobTracker:
    def __init__(
        self,
        redis,
        *,
        soft_limit: float,
        hard_limit: float,
        max_deliveries: int,
        counter_ttl: int,
        result_expires: int,
        result_key: Callable[[str], str | bytes],
        store_result: Callable[[str, object, str], object],
        batcher: Batcher,
    ):
        self.redis = redis
        self.soft_limit = soft_limit
        self.hard_limit = hard_limit
        self.max_deliveries = max_deliveries
        self.counter_ttl = counter_ttl
        self.result_expires = result_expires
        self.result_key = result_key
        self.store_result = store_result  # Celery's backend: (job id, result or error, state)
        self.batcher = batcher
        self._started: dict[str, float] = {}  # job id -> monotonic start
        self._gate = Gate()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="watchdog", daemon=True)

    def start(self) -> JobTracker:
        self._watchdog.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    # --- called by each task, in its own thread --------------------------------------------

    def first_start(self, job_id: str) -> bool:
        """Counts this start if it is the job's first, in one command (SET NX), and says so;
        False for a job started before (its worker died under it, or stored its result and
        died before acknowledging it), which `admitted` counts once it runs alone. Called
        with a place beside the others taken, so a first start is counted only once it runs."""
        key = DELIVERIES_PREFIX + job_id
        return bool(self.redis.set(key, 1, nx=True, ex=self.counter_ttl))

    def gate(self, *, alone: bool) -> contextlib.AbstractContextManager[None]:
        """The job's place in this process: alone for a job started before, else beside the
        others. To be held until the job's result is stored (worker/tasks.py): a job let in as
        soon as the previous one returned could kill the process before that result is written,
        and the previous job would be charged a delivery it did not cause."""
        return self._gate.exclusive() if alone else self._gate.shared()

    def admitted(self, job_id: str, *, started_before: bool) -> int:
        """Inside the gate, before a job's run: skips it if already finished, fails it if
        started too often. Returns this start's number (1 on the first, which `first_start`
        counted). Only a job started before can have a result (its counter outlives the
        result), so only its is read."""
        if not started_before:
            return 1
        key = DELIVERIES_PREFIX + job_id
        raw = self.redis.get(self.result_key(job_id))
        if raw is not None and json.loads(raw).get("status") in states.READY_STATES:
            log.warning("job %s was redelivered after it finished; acknowledging it", job_id)
            raise Ignore()
        n, _ = self.redis.pipeline().incr(key).expire(key, self.counter_ttl).execute()
        if n > self.max_deliveries:
            raise TooManyDeliveries(
                f"job {job_id} was started {n - 1} times and its worker died each time; giving up"
            )
        if n > 1:
            log.warning(
                "job %s: delivery %d of at most %d, run alone", job_id, n, self.max_deliveries
            )
        return n

    def first_group_start(self, group_id: str, job_ids: list[str]) -> bool:
        """A group message's first start (worker/groups.py), counted for the message and for
        each of its jobs in one round trip (SET NX each, as `first_start`); False when the
        message, or one of its jobs, was started before."""
        pipe = self.redis.pipeline(transaction=False)
        for key in (group_id, *job_ids):
            pipe.set(DELIVERIES_PREFIX + key, 1, nx=True, ex=self.counter_ttl)
        return all(pipe.execute())

    def group_split(self, group_id: str) -> bool:
        """Whether a redelivered group message was already split into its jobs."""
        return self.redis.get(DELIVERIES_PREFIX + group_id) == _SPLIT

    def mark_split(self, group_id: str) -> None:
        self.redis.set(DELIVERIES_PREFIX + group_id, _SPLIT, ex=self.counter_ttl)

    def store_success(self, job_id: str, result: object) -> None:
        """Stores a finished job's result as Celery's Redis backend does (the value the API
        decodes, under the key and on the channel it watches), in one round trip: SET with the
        results' expiry and PUBLISH in one MULTI. Celery's backend reads the key before writing
        it, so as never to overwrite a stored success; a success stored over another is the
        same answer (jobs are idempotent), and failures still go through Celery. Should Redis
        stay away past this client's retries, Celery's backend stores it, retrying longer.
        With SRBVAE_TRACE_TIMINGS=1, the job's timestamps (worker/trace.py) go beside it."""
        self.store_successes([(job_id, result)])

    def store_successes(self, results: list[tuple[str, object]]) -> None:
        """`store_success` for several jobs (a group's), all in one MULTI."""
        pipe = self.redis.pipeline()
        for job_id, result in results:
            meta: dict[str, object] = {
                "status": states.SUCCESS,
                "result": result,
                "traceback": None,
                "children": [],
                "date_done": datetime.now(UTC).isoformat(),
                "task_id": job_id,
            }
            if trace.ENABLED and (marks := trace.take(job_id)):
                meta[TRACE_FIELD] = marks
            key, value = self.result_key(job_id), json.dumps(meta)
            pipe.set(key, value, ex=self.result_expires)
            pipe.publish(key, value)
        try:
            pipe.execute()
        except RedisError as exc:
            log.warning(
                "jobs %s: storing their results failed (%s); retrying through Celery",
                [job_id for job_id, _ in results], exc,
            )  # fmt: skip
            for job_id, result in results:
                self.store_result(job_id, result, states.SUCCESS)

    @contextlib.contextmanager
    def running(self, job_id: str) -> Iterator[float]:
        """Registers the job with the watchdog; yields its soft deadline (monotonic)."""
        start = time.monotonic()
        with self._lock:
            self._started[job_id] = start
        try:
            with self.batcher.job():
                yield start + self.soft_limit
        finally:
            with self._lock:
                self._started.pop(job_id, None)

    def wait(self, future, deadline: float):
        """The device's answer, or JobTimeout once the soft deadline passes."""
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            return self.batcher.wait(future, remaining)
        except TimeoutError:
            future.cancel()  # the device thread skips it if it has not started
            raise JobTimeout(f"the job exceeded its time limit of {self.soft_limit:g} s") from None

    # --- the watchdog ------------------------------------------------------------------------

    def _watch(self) -> None:
        period = min(0.5, self.hard_limit / 10)
        while not self._stop.wait(period):
            now = time.monotonic()
            stuck: set[str] = set()
            busy_since = self.batcher.busy_since
            if busy_since is not None and now - busy_since > self.hard_limit:
                stuck.update(self.batcher.busy_jobs)
                what = f"a device batch has run {now - busy_since:.1f} s"
            else:
                what = "a job thread has run past the hard limit"
            with self._lock:
                stuck.update(j for j, t in self._started.items() if now - t > self.hard_limit)
            if stuck or (busy_since is not None and now - busy_since > self.hard_limit):
                self._hard_timeout(stuck, what)

    def _hard_timeout(self, jobs: set[str], what: str) -> None:
        log.critical(
            "hard time limit of %g s exceeded (%s); failing %s and replacing this process",
            self.hard_limit, what, sorted(jobs) or "no job",
        )  # fmt: skip
        for job_id in jobs:
            try:
                raw = self.redis.get(self.result_key(job_id))
                if raw is None or json.loads(raw).get("status") not in states.READY_STATES:
                    timeout = JobTimeout(
                        f"the job exceeded the hard time limit of {self.hard_limit:g} s"
                    )
                    self.store_result(job_id, timeout, states.FAILURE)
            except Exception:  # noqa: BLE001 - exiting matters more than this one result
                log.exception("could not record the timeout of job %s", job_id)
        logging.shutdown()
        os._exit(EXIT_HARD_TIMEOUT)


class Gate:
    """Jobs run side by side (shared) but for one started before, which runs alone
    (exclusive). Waiting exclusive jobs go first, so they are not starved."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0  # exclusive jobs waiting

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._exclusive and not self._shared)
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()
