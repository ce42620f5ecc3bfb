"""Tasks for the fault tests, loaded only into test workers (`running_worker(fault_tasks=True)`
starts `python -m worker --include tests.utils.fault_tasks`): a job that holds the device too
long, and one that kills its worker. Their names are `tests.utils.faults.FaultTask`."""

from __future__ import annotations

import os
import signal
import time

from celery import states

from tests.utils.faults import FaultTask
from worker.app import app
from worker.runtime import get_runtime
from worker.tasks import Job, ModelTask


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
def crash(self, job: Job) -> dict:
    """Dies as an out-of-memory kill would: SIGKILL, no cleanup, no acknowledgement."""
    started(self, job)
    os.kill(os.getpid(), signal.SIGKILL)
    return {}
