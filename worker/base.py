"""The task base class: what every model task does around its own work."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import NamedTuple

from celery import Task, signals
from celery.exceptions import Ignore

from contract.errors import JobError
from worker.runtime import get_runtime

log = logging.getLogger(__name__)


class Job(NamedTuple):
    id: str
    deadline: float  # monotonic time of the soft limit


# The gate a job holds in its thread until Celery has stored its result (task_postrun).
_held = threading.local()


class ModelTask(Task):
    """Admits the job (its place beside or apart from the others, deliveries, already
    finished?) and times it; unexpected errors become a JobError with a short message instead
    of a traceback from inside torch."""

    typing = False  # the schemas validate the payload, with clearer messages
    throws = (JobError,)  # expected failures: logged in one line, without a traceback

    def __call__(self, *args, **kwargs):
        job_id = self.request.id or "local"
        rt = get_runtime()
        _release_gate()  # a hold is left over only if a postrun signal was missed
        started_before = rt.jobs.started_before(job_id)
        held = contextlib.ExitStack()
        held.enter_context(rt.jobs.gate(alone=started_before))
        if self.request.called_directly:  # no worker, no stored result: a plain scope
            with held:
                return self._admitted_run(rt, job_id, started_before, args, kwargs)
        _held.stack = held
        return self._admitted_run(rt, job_id, started_before, args, kwargs)

    def _admitted_run(self, rt, job_id: str, started_before: bool, args, kwargs):
        rt.jobs.admitted(job_id, started_before=started_before)
        with rt.jobs.running(job_id) as deadline:
            try:
                return self.run(Job(job_id, deadline), *args, **kwargs)
            except (JobError, Ignore):
                raise
            except Exception as exc:
                log.exception("job %s (%s) failed", job_id, self.name)
                raise JobError(f"internal error in {self.name}: {type(exc).__name__}") from None


@signals.task_postrun.connect
def _release_gate(**_) -> None:
    """Sent by Celery in the job's thread once its result (or failure) is stored, or when it
    was skipped: the next job, which may be a poison job, can only now take the gate."""
    held = getattr(_held, "stack", None)
    if held is not None:
        _held.stack = None
        held.close()
