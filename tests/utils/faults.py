"""Shared by the fault tests (tests/worker/, tests/resilience/): the fault tasks' names,
polling with a deadline, a hand-written pickle message, and counting a job's runs in a worker
log."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from enum import StrEnum

from kombu import Connection, Queue

from contract.tasks import QUEUE, TaskName


class FaultTask(StrEnum):
    """Registered by test workers only (tests/utils/fault_tasks.py)."""

    SLEEP = "srbvae.test.sleep"  # kwargs: seconds; holds the device thread that long
    CRASH = "srbvae.test.crash"  # kwargs: settle_s; SIGKILLs its own worker process (an OOM kill)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Polls until `predicate()` is truthy and returns its value; TimeoutError(what) after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(interval)
    return value


def evil_pickle(marker: str) -> bytes:
    """A pickle that, if loaded, would create `marker` (builtins.open(path, "w")). Written by
    hand so no test imports pickle."""
    return f"cbuiltins\nopen\n(V{marker}\nVw\ntR.".encode()


def publish_pickle(redis_url: str, marker: str, job_id: str) -> None:
    """Puts a pickle-serialised task message on the worker's queue, as an attacker with
    access to Redis could."""
    with Connection(redis_url) as conn:
        conn.Producer().publish(
            evil_pickle(marker),
            exchange=QUEUE,
            routing_key=QUEUE,
            declare=[Queue(QUEUE)],
            content_type="application/x-python-serialize",
            content_encoding="binary",
            headers={"id": job_id, "task": str(TaskName.NEUTRALIZE), "lang": "py"},
        )


def succeeded_lines(log: str, job_id: str) -> int:
    """How often a worker log says the job succeeded: its result was stored that often."""
    return len(re.findall(rf"\[{job_id}\] succeeded", log))


def log_with_successes(log: Callable[[], str], job_ids: Iterable[str], timeout: float = 10) -> str:
    """The worker's log once it has a "succeeded" line for every job: a task stores its result,
    which answers the client, a moment before Celery logs that line."""
    ids = list(job_ids)

    def complete() -> str | None:
        text = log()
        return text if all(succeeded_lines(text, j) for j in ids) else None

    return wait_for(complete, timeout, "a job's 'succeeded' line was not logged")


def assert_all_succeeded(answers: dict[str, dict]) -> None:
    """Every job answered "succeeded" (answers as tests.utils.stack gives them)."""
    failed = {j: a["error"] for j, a in answers.items() if a["status"] != "succeeded"}
    assert not failed, failed
