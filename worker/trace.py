"""Per-job timestamps for bench/request_timeline.py, off unless `SRBVAE_TRACE_TIMINGS=1`.

When on, the worker notes wall-clock times (`time.time_ns`, comparable with the API's and the
client's on one machine) as a job passes each stage: its message read off the queue, received
by Celery, its task started, admitted, each device pass. The task's stored result carries them
(`TRACE_FIELD` beside Celery's fields), and an API started with the same variable returns them
in a header. When off, `mark` is one test of a module constant and nothing is stored.
"""

from __future__ import annotations

import os
import threading
import time

from contract.tasks import TRACE_ENV

ENABLED = os.environ.get(TRACE_ENV) == "1"

_marks: dict[str, dict[str, int]] = {}  # job id -> stage -> time.time_ns()
_thread = threading.local()  # the consumer thread's read of the queue, until the job is known


def mark(job_id: str | None, stage: str, ns: int | None = None) -> None:
    """Notes when job `job_id` reached `stage` (now, or at `ns`)."""
    if ENABLED and job_id:
        _marks.setdefault(job_id, {})[stage] = time.time_ns() if ns is None else ns


def read_started() -> None:
    """The consumer thread is reading a message off the queue (worker/transport.py); the job it
    holds is known once Celery has built its request (`received`)."""
    if ENABLED:
        _thread.read_ns = time.time_ns()


def received(job_id: str | None) -> None:
    """Celery received the job's message: its read's time and this one are noted."""
    if ENABLED and job_id:
        read_ns = getattr(_thread, "read_ns", None)
        if read_ns is not None:
            mark(job_id, "w_read", read_ns)
            _thread.read_ns = None
        mark(job_id, "w_received")


def take(job_id: str) -> dict[str, int] | None:
    """The job's marks, forgotten here (None when tracing is off or none were made)."""
    if not ENABLED:
        return None
    return _marks.pop(job_id, None)
