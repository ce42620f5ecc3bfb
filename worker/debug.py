"""Tasks for fault tests, registered only with SRBVAE_WORKER_DEBUG_TASKS=1 (never in
production): a job that holds the device too long, and one that kills its worker."""

from __future__ import annotations

import os
import signal
import time

from contract.tasks import DebugTaskName
from worker.app import app
from worker.base import Job, ModelTask
from worker.runtime import get_runtime


# track_started: the fault tests wait for STARTED through Celery before they strike.
@app.task(name=str(DebugTaskName.SLEEP), base=ModelTask, bind=True, track_started=True)
def sleep(self, job: Job, seconds: float = 1.0) -> dict:
    """Holds the device thread, as a forward pass that hangs would (past the hard limit, the
    watchdog replaces the process)."""
    rt = get_runtime()
    rt.jobs.wait(rt.batcher.call(lambda: time.sleep(float(seconds)), job.id), job.deadline)
    return {"slept": float(seconds)}


@app.task(name=str(DebugTaskName.CRASH), base=ModelTask, bind=True, track_started=True)
def crash(self, job: Job) -> dict:
    """Dies as an out-of-memory kill would: SIGKILL, no cleanup, no acknowledgement."""
    os.kill(os.getpid(), signal.SIGKILL)
    return {}
