"""Submitting jobs to the worker and awaiting their results.

A job is sent by task name, as the message Celery would send (service/core/sender.py), alone
or, when several arrive while a submission is in flight, in one message with them
(service/core/groups.py); its result is read straight from Celery's Redis result backend, under
its own id either way. A synchronous request waits on the channel that backend publishes each
state on, through the process's one result subscription (service/core/results.py), so an
answer leaves as soon as the worker stores it (no polling interval). The service keeps its own
small record per job (its task and when it was sent, with a TTL) so that `GET /jobs/{id}` can
tell an unknown id from a queued job and results expire on the service's schedule.

    async with jobs.watch() as watch:                       # a synchronous request
        job_id, record = await jobs.submit(task, payload, expires_s, watch=watch)
        state = await jobs.wait(watch, record, timeout_s)
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, cast

from celery import Celery, states
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

import contract.errors
from contract.tasks import (
    DELIVERIES_PREFIX,
    QUEUE,
    RESULTS,
    TRACE_FIELD,
    GroupedJob,
    TaskName,
    TaskResult,
)
from service.core import trace
from service.core.errors import ApiError, Unavailable, redis_errors
from service.core.groups import Arrival, GroupCommit
from service.core.journal import Journal
from service.core.results import ResultListener, Watch
from service.core.sender import queue_group, queue_task

log = logging.getLogger(__name__)

JOB_KEY_PREFIX = "srbvae:api:job:"
# A job's photos outlive its expiry by this much: a worker that took it just before may still
# be reading them, or take it again after a crash (the visibility timeout, 300 s by default).
PHOTO_GRACE_S = 600
_TIMEOUTS = {"TimeLimitExceeded", "SoftTimeLimitExceeded"}


JobKind = Literal["transfer", "sample", "neutralize", "interpolate", "encode", "generate"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]


@dataclass(frozen=True)
class JobRecord:
    task: TaskName  # what was asked: how to present its result
    submitted_at: float

    @property
    def kind(self) -> JobKind:
        """The task's short name, as `GET /jobs/{id}` reports it: "transfer", "sample", ..."""
        return cast(JobKind, self.task.removeprefix("srbvae."))


@dataclass(frozen=True)
class JobError:
    status: int
    detail: str


@dataclass(frozen=True)
class JobState:
    """One of result and error once the job has succeeded or failed."""

    job_id: str
    record: JobRecord
    state: JobStatus
    result: TaskResult | None = None
    error: JobError | None = None


@dataclass(frozen=True)
class JobWatch:
    """A job id not sent yet, with its result channel watched (JobQueue.watch)."""

    job_id: str
    results: Watch


@dataclass(frozen=True)
class _Outgoing:
    """A job on its way to the queue, alone or in a group."""

    job_id: str
    task: TaskName
    payload: BaseModel
    expires_s: float
    journal: bool
    photos: dict[str, bytes]
    stored: str  # the record, as JSON

    def grouped(self, now: float) -> GroupedJob:
        return GroupedJob(
            id=self.job_id,
            task=self.task,
            kwargs=self.payload.model_dump(mode="json"),
            expires_at=now + self.expires_s,
        )


class JobQueue:
    def __init__(self, redis: Redis, celery: Celery, listener: ResultListener, *,
                 result_ttl_s: int, max_queue_depth: int, retry_after_s: int,
                 max_memory_fraction: float = 1.0, journal: Journal | None = None,
                 min_replicas: int = 0, replica_wait_s: float = 0.5,
                 group_max_jobs: int = 1, group_wait_s: float = 0.0) -> None:  # fmt: skip
        self.redis = redis
        self.celery = celery
        self.listener = listener
        self.result_ttl_s = result_ttl_s
        self.max_queue_depth = max_queue_depth
        self.retry_after_s = retry_after_s
        self.max_memory_fraction = max_memory_fraction
        self.journal = journal
        self.min_replicas = min_replicas
        self.replica_wait_s = replica_wait_s
        self._groups = GroupCommit(self._send, max_items=group_max_jobs, gather_s=group_wait_s)

    def arrival(self) -> Arrival:
        """A job request on its way: a group about to be sent waits for it, briefly (`submit`
        closes it; close it too should the request end without a job)."""
        return self._groups.arrival()

    async def queue_depth(self) -> int:
        async with redis_errors(self.retry_after_s):
            return int(await self.redis.llen(QUEUE))

    async def ping(self) -> None:
        """503 unless Redis answers now."""
        async with redis_errors(self.retry_after_s):
            await self.redis.ping()

    async def _admit(self) -> None:
        """503 when the queue is over its limit or Redis nearly at its memory limit."""
        async with redis_errors(self.retry_after_s):
            pipe = self.redis.pipeline(transaction=False)
            pipe.llen(QUEUE)  # a pipeline queues commands; execute() returns their replies
            pipe.info("memory")
            depth, memory = await pipe.execute()
        if depth >= self.max_queue_depth:
            raise Unavailable(f"over {self.max_queue_depth} jobs are waiting", self.retry_after_s)
        limit = int(memory.get("maxmemory", 0))
        if limit and int(memory["used_memory"]) >= self.max_memory_fraction * limit:
            raise Unavailable("the job queue (Redis) is nearly full", self.retry_after_s)

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[JobWatch]:
        """A fresh job id whose result channel is watched from now on, for `submit` and
        `wait`; the channel is unwatched on leaving."""
        job_id = str(uuid.uuid4())
        async with self.listener.watch(self._result_key(job_id)) as results:
            yield JobWatch(job_id, results)

    async def submit(
        self, task: TaskName, payload: BaseModel, expires_s: float,
        *, journal: bool = False, watch: JobWatch | None = None,
        photos: dict[str, bytes] | None = None, arrival: Arrival | None = None,
    ) -> tuple[str, JobRecord]:  # fmt: skip
        """Queues the job and returns its id and record; 503 when Redis is down or full, or the
        queue is too long. `expires_s`: a worker that only gets to the job later drops it
        (revoked), so a backlog is not spent on answers whose clients have gone. `journal`:
        note the job in the journal (service/core/journal.py), which sends it again should
        the broker lose it. `watch`: the job takes its id, and is sent only once the result
        subscription is in force (it normally is already). `photos`: files the payload names
        by Redis key (contract.tasks.PHOTO_REF_PREFIX), stored in the same round trip.
        `arrival`: the request's, from `arrival()`. The job goes out with the others submitted
        meanwhile (service/core/groups.py)."""
        trace.mark("api_submit")
        job_id = watch.job_id if watch is not None else str(uuid.uuid4())
        record = JobRecord(task, time.time())
        stored = json.dumps({"task": str(task), "submitted_at": record.submitted_at})
        if watch is not None:
            async with redis_errors(self.retry_after_s):
                await watch.results.subscribed()
        outgoing = _Outgoing(job_id, task, payload, expires_s, journal, photos or {}, stored)
        await self._groups.submit(outgoing, arrival)
        trace.mark("api_queued")
        if self.min_replicas:
            await self._replicated(job_id, stored)
        return job_id, record

    async def _send(self, jobs: list[_Outgoing]) -> None:
        """One submission (service/core/groups.py): one admission check for all, then each
        job's record, photos and journal entry, and the message (one job's own, or one
        carrying them all), in one round trip."""
        await self._admit()
        trace.mark("api_admitted")
        noted = [job.job_id for job in jobs if job.journal] if self.journal else []
        async with redis_errors(self.retry_after_s):
            pipe = self.redis.pipeline(transaction=False)
            for job in jobs:
                pipe.set(_job_key(job.job_id), job.stored, ex=self.result_ttl_s)
                for key, data in job.photos.items():  # the worker deletes them once it is done
                    pipe.set(key, data, ex=int(job.expires_s) + PHOTO_GRACE_S)
                if job.journal and self.journal is not None:
                    self.journal.add(pipe, job.job_id, job.task, job.payload, job.expires_s)
            if len(jobs) == 1:
                (job,) = jobs
                kwargs = job.payload.model_dump(mode="json")
                queue_task(pipe, str(job.task), kwargs, job.job_id, job.expires_s)
            else:
                now = time.time()
                queue_group(pipe, [job.grouped(now) for job in jobs])
            try:
                await pipe.execute()
            except Exception:
                if noted and self.journal is not None:  # refused (503): not to be sent later
                    with contextlib.suppress(Exception):
                        await self.journal.forget(noted)
                raise

    async def _replicated(self, job_id: str, stored: str) -> None:
        """Returns once `min_replicas` replicas hold the job; 503 otherwise. Replication is
        asynchronous: a job the primary has queued but no replica holds yet is lost if the
        primary fails now and Sentinel promotes a replica. WAIT covers every write that
        reached the primary before this connection's last one, so the job record is written
        again (the same value, on this connection) after the send, and WAIT follows it."""
        async with redis_errors(self.retry_after_s):
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(_job_key(job_id), stored, ex=self.result_ttl_s)
            pipe.wait(self.min_replicas, max(1, int(self.replica_wait_s * 1000)))
            _, acked = await pipe.execute()
        if int(acked) < self.min_replicas:
            log.warning("job %s: %d of %d replicas confirmed it", job_id, acked, self.min_replicas)
            raise ApiError(
                503,
                f"job {job_id} was queued, but is not yet on {self.min_replicas} replica(s) of the "
                "job queue: should its primary fail now, the job would be lost. It may still "
                f"run: GET /jobs/{job_id}",
                headers={"Retry-After": str(self.retry_after_s), "X-Job-Id": job_id},
            )

    async def record(self, job_id: str) -> JobRecord | None:
        async with redis_errors(self.retry_after_s):
            raw = await self.redis.get(_job_key(job_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return JobRecord(TaskName(data["task"]), data["submitted_at"])

    async def state(self, job_id: str) -> JobState | None:
        """The job's state now, or None for an unknown or expired id."""
        record = await self.record(job_id)
        if record is None:
            return None
        async with redis_errors(self.retry_after_s):
            # redis-py types replies as bytes | str (for decode_responses=True); this client leaves it off.
            raw, started = cast(
                list[bytes | None],
                await self.redis.mget(self._result_key(job_id), DELIVERIES_PREFIX + job_id),
            )
        state = self._state(job_id, record, raw)
        if state.state == "queued" and started is not None:
            return JobState(job_id, record, "running")
        return state

    async def wait(self, watch: JobWatch, record: JobRecord, timeout_s: float) -> JobState:
        """Blocks until the job sent with `watch` is finished; 504 after `timeout_s`, 503 if
        Redis went away meanwhile. Its channel was subscribed before the job was sent, so
        every state it stores arrives here."""
        job_id = watch.job_id
        deadline = time.monotonic() + timeout_s
        while True:
            for raw in await watch.results.next(deadline - time.monotonic()):
                if trace.ENABLED:
                    trace.mark("api_published", watch.results.delivered_ns)
                state = self._state(job_id, record, raw)
                if state.state in ("succeeded", "failed"):
                    return state
            if time.monotonic() >= deadline:
                raise ApiError(
                    504,
                    f"job {job_id} did not finish within {timeout_s:g} s; "
                    f"it may still complete: GET /jobs/{job_id}",
                    headers={"X-Job-Id": job_id},
                )

    def _result_key(self, job_id: str) -> str:
        key = self.celery.backend.get_key_for_task(job_id)
        return key.decode() if isinstance(key, bytes) else key

    def _state(self, job_id: str, record: JobRecord, raw: bytes | None) -> JobState:
        if raw is None:
            return JobState(job_id, record, "queued")
        meta = self.celery.backend.decode(raw)
        if trace.ENABLED:
            trace.merge(meta.get(TRACE_FIELD))
        status = meta.get("status")
        if status == states.SUCCESS:
            try:
                result = RESULTS[record.task].model_validate(meta.get("result"))
            except ValidationError as exc:
                log.error("job %s: malformed result from the worker: %s", job_id, exc)
                return JobState(job_id, record, "failed", error=JobError(502, "malformed result"))
            return JobState(job_id, record, "succeeded", result=result)
        if status == states.FAILURE:
            return JobState(job_id, record, "failed", error=_job_error(meta.get("result")))
        if status == states.REVOKED:
            error = JobError(504, "the job expired before a worker could run it")
            return JobState(job_id, record, "failed", error=error)
        if status in (states.STARTED, states.RETRY):
            return JobState(job_id, record, "running")
        return JobState(job_id, record, "queued")


def _job_key(job_id: str) -> str:
    return f"{JOB_KEY_PREFIX}{job_id}"


def _job_error(exc_info: object) -> JobError:
    """A Celery failure -> HTTP status and detail. Exceptions are matched by name against
    `contract.errors`; nothing named by a stored result is ever imported."""
    if not isinstance(exc_info, dict):
        return JobError(500, "the job failed")
    name = str(exc_info.get("exc_type", ""))
    message = exc_info.get("exc_message")
    if isinstance(message, list | tuple):
        message = "; ".join(str(m) for m in message)
    detail = str(message) if message else name
    cls = getattr(contract.errors, name, None)
    if isinstance(cls, type) and issubclass(cls, contract.errors.JobError):
        return JobError(cls.http_status, detail)
    if name in _TIMEOUTS:
        return JobError(504, "the job exceeded its time limit")
    log.error("job failed with an internal error %s: %s", name, detail)
    return JobError(500, f"the worker failed ({name})")
