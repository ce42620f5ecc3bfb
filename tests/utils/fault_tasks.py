"""Tasks for the fault tests, loaded only into test workers (`running_worker(fault_tasks=True)`
starts `python -m worker --include tests.utils.fault_tasks`): a job that holds the device too
long, and one that kills its worker. Their names are `tests.utils.faults.FaultTask`."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from celery import states

from contract.tasks import QUEUE
from tests.utils.faults import FaultTask, wait_for
from worker.app import app
from worker.runtime import get_runtime
from worker.tasks import Job, ModelTask

DRAIN_WAIT_S = 1.5  # with the settling time, under the fault workers' hard limit (4.5 s)


def started(task, job: Job) -> None:
    """Stores STARTED through Celery, which the fault tests wait for before they strike: the
    tasks' base stores their results itself and has Celery's own (track_started with them) off.
    Stored once admitted, so the job has begun. Under the job's id: one run in a group
    (worker/groups.py) is not its message's."""
    task.update_state(task_id=job.id, state=states.STARTED, meta={"pid": os.getpid()})


@app.task(name=str(FaultTask.SLEEP), base=ModelTask, bind=True)
def sleep(self, job: Job, seconds: float = 1.0) -> dict:
    """Holds the device thread, as a forward pass that hangs would (past the hard limit, the
    watchdog replaces the process)."""
    started(self, job)
    rt = get_runtime()
    rt.jobs.wait(rt.batcher.call(lambda: time.sleep(float(seconds)), job.id), job.deadline)
    return {"slept": float(seconds)}


@app.task(name=str(FaultTask.CRASH), base=ModelTask, bind=True)
def crash(self, job: Job, settle_s: float = 0.0) -> dict:
    """Dies as an out-of-memory kill would: SIGKILL, no cleanup, no acknowledgement.

    With `settle_s`, it first waits (at most DRAIN_WAIT_S) until the queue is empty, then
    `settle_s` more: the messages this worker has popped are then recorded as unacknowledged,
    and the kill loses none of them. Without it, a kill while the worker's main thread is
    between a BRPOP and that record loses the popped message (kombu's BRPOP window,
    docs/worker.md), which the API's journal, not the worker, sends again."""
    started(self, job)
    if settle_s:
        r = get_runtime().redis
        with contextlib.suppress(TimeoutError):  # not drained in time: kill all the same
            wait_for(lambda: not r.llen(QUEUE), DRAIN_WAIT_S, "the queue was not drained")
        time.sleep(float(settle_s))
    os.kill(os.getpid(), signal.SIGKILL)
    return {}
