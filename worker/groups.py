"""A message carrying several jobs (contract.tasks.GROUP_TASK): the API's group commit.

The jobs that reach the API while it is queuing another go out as one message
(service/core/groups.py). Here they run side by side, each in a thread of its own, so that
their forward passes meet in the device thread's batches (worker/batcher.py); each is admitted,
timed and answered as a job of its own message would be (worker/tasks.py), and their results
are stored in one MULTI, each under its job's id. Celery receives, dispatches, traces and
acknowledges the message once: those are the costs per message that the group shares.

A group is only ever run on its first delivery. Redelivered (its worker died or faulted on
it), it is split: each job goes back on the queue as a message of its own, under its own id,
and the group is acknowledged. Each job then runs alone as any job started before does, its
deliveries counted and capped (worker/tracker.py), so a job that kills its worker cannot take
the others of its group down with it more than once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all

from celery import Task, states
from celery.exceptions import Ignore, Reject, TaskRevokedError
from kombu.exceptions import OperationalError
from pydantic import ValidationError
from redis import RedisError

from contract.errors import JobError
from contract.tasks import GROUP_TASK, MAX_BATCH, QUEUE, GroupedJob, JobGroup
from worker import trace
from worker.app import app
from worker.runtime import Runtime, get_runtime
from worker.tasks import ModelTask, hold_until_stored

log = logging.getLogger(__name__)

# Threads for the jobs of the groups running at once; made as they are first needed.
_job_threads = ThreadPoolExecutor(max_workers=4 * MAX_BATCH, thread_name_prefix="group-job")


class GroupTask(Task):
    typing = False
    ignore_result = True  # each job's result is stored under its own id, not the message's


@app.task(name=GROUP_TASK, base=GroupTask, bind=True)
def run_group(self, **kwargs) -> None:
    group_id = self.request.id
    try:
        group = JobGroup.model_validate(kwargs)
    except ValidationError as exc:  # only the API sends groups: a bug, not a client's error
        log.error("group %s is malformed and was dropped: %s", group_id, exc)
        return
    rt = get_runtime()
    place = contextlib.ExitStack()
    place.enter_context(rt.jobs.gate(alone=False))
    try:
        first = rt.jobs.first_group_start(group_id, [job.id for job in group.jobs])
        if not first:
            place.close()
            split(rt, group_id, group)
            return
    except (RedisError, OperationalError, OSError) as exc:
        # Celery would acknowledge a failed message, and no job of it would ever be answered:
        # back on the queue instead (or, with Redis away, handed out again after the
        # visibility timeout), to be split on its next delivery.
        place.close()
        log.warning("group %s: %s; back on the queue", group_id, exc)
        raise Reject(str(exc), requeue=True) from exc
    except BaseException:
        place.close()
        raise
    hold_until_stored(place)  # the results are stored before the next job, a poison one, enters
    run_together(rt, group.jobs)


def run_together(rt: Runtime, jobs: list[GroupedJob]) -> None:
    """Runs the jobs side by side, then stores every success in one round trip and each
    failure as Celery stores one."""
    now = time.time()
    running: list[tuple[GroupedJob, Future]] = []
    for job in jobs:
        if job.expires_at <= now:
            _revoke(rt, job)
        else:
            running.append((job, _job_threads.submit(_run_one, rt, job)))
    wait_all([future for _, future in running])
    succeeded: list[tuple[GroupedJob, object]] = []
    for job, future in running:
        exc = future.exception()
        if exc is None:
            succeeded.append((job, future.result()))
        elif not isinstance(exc, Ignore):
            rt.jobs.store_result(job.id, exc, states.FAILURE)
            log.info("Task %s[%s] failed: %r", job.task, job.id, exc)
    if succeeded:
        rt.jobs.store_successes([(job.id, result) for job, result in succeeded])
        for job, _ in succeeded:  # the line Celery writes for a job of its own
            log.info("Task %s[%s] succeeded in a group", job.task, job.id)


def _run_one(rt: Runtime, job: GroupedJob) -> object:
    trace.mark(job.id, "w_task_start")
    task = app.tasks[str(job.task)]
    if not isinstance(task, ModelTask):
        raise JobError(f"{job.task} is not a model task")
    result = task.run_admitted(rt, job.id, False, (), job.kwargs)
    trace.mark(job.id, "w_task_end")
    return result


def _revoke(rt: Runtime, job: GroupedJob) -> None:
    """An expired job, stored as Celery stores an expired message's."""
    log.info("Discarding revoked task: %s[%s] (expired)", job.task, job.id)
    rt.jobs.store_result(job.id, TaskRevokedError("expired"), states.REVOKED)


def split(rt: Runtime, group_id: str, group: JobGroup) -> None:
    """A redelivered group: each job back on the queue as a message of its own (an expired one
    revoked), then the group is acknowledged. Split once: should this process die before the
    acknowledgement, the next delivery finds the mark and only acknowledges."""
    if rt.jobs.group_split(group_id):
        log.warning("group %s was redelivered after it was split; acknowledging it", group_id)
        return
    log.warning(
        "group %s was started before (its worker died or faulted on it); sending its %d "
        "jobs again one by one", group_id, len(group.jobs),
    )  # fmt: skip
    now = time.time()
    with app.producer_or_acquire() as producer:
        for job in group.jobs:
            if job.expires_at <= now:
                _revoke(rt, job)
                continue
            app.send_task(
                str(job.task),
                kwargs=job.kwargs,
                task_id=job.id,
                queue=QUEUE,
                expires=job.expires_at - now,
                producer=producer,
            )
    rt.jobs.mark_split(group_id)
