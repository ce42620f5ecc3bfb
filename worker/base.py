"""The task base class: what every model task does around its own work."""

from __future__ import annotations

import logging
from typing import NamedTuple

from celery import Task
from celery.exceptions import Ignore

from contract.errors import JobError
from worker.runtime import get_runtime

log = logging.getLogger(__name__)


class Job(NamedTuple):
    id: str
    deadline: float  # monotonic time of the soft limit


class ModelTask(Task):
    """Admits the job (deliveries, already finished?) and times it; unexpected errors become
    a JobError with a short message instead of a traceback from inside torch."""

    typing = False  # the schemas validate the payload, with clearer messages
    throws = (JobError,)  # expected failures: logged in one line, without a traceback

    def __call__(self, *args, **kwargs):
        job_id = self.request.id or "local"
        rt = get_runtime()
        with rt.jobs.admitted(job_id), rt.jobs.running(job_id) as deadline:
            try:
                return self.run(Job(job_id, deadline), *args, **kwargs)
            except (JobError, Ignore):
                raise
            except Exception as exc:
                log.exception("job %s (%s) failed", job_id, self.name)
                raise JobError(f"internal error in {self.name}: {type(exc).__name__}") from None
