"""Redis restarted during a burst of jobs, and a worker that stops consuming its queue."""

from __future__ import annotations

import json
import socket
import time

import pytest
from celery import states

from contract.tasks import QUEUE
from tests.resilience.conftest import API, WORKER
from tests.utils import images
from tests.utils.faults import (
    FaultTask,
    assert_all_succeeded,
    log_with_successes,
    succeeded_lines,
    wait_for,
)
from tests.utils.stack import running_stack
from tests.utils.worker_process import read_workers

pytestmark = pytest.mark.slow  # real processes and fault timeouts: seconds per test


@pytest.fixture(scope="module")
def stack(model_dir, tmp_path_factory):
    worker = dict(WORKER, concurrency=2, stall_after=2)
    with running_stack(tmp_path_factory.mktemp("stack"), model_dir, worker=worker, api=API) as s:
        yield s


def held_ids(r) -> set[str]:
    """Jobs in the queue or taken by a worker and not yet acknowledged."""
    queued = {json.loads(m)["headers"]["id"] for m in r.lrange(QUEUE, 0, -1)}
    return queued | {json.loads(m)[0]["headers"]["id"] for m in r.hvals("unacked")}


def test_redis_restart_during_a_burst_is_a_quick_503_and_loses_no_job(stack):
    worker, r = stack.worker, stack.client()
    worker.wait_ready(30)
    hold = stack.sender.send_task(str(FaultTask.SLEEP), kwargs={"seconds": 2.0})
    wait_for(lambda: hold.state == states.STARTED, 20, "the slow job did not start")
    accepted = [stack.submit(i) for i in range(8)]  # one runs behind the slow job, 7 wait
    stack.redis.stop()  # SIGTERM: Redis writes its append-only file and exits

    png = images.png((32, 32))
    during = {
        "submit": lambda: stack.http.post(
            "/transfer?async=true", files={"image": ("a.png", png), "attributes": ("b.png", png)}
        ),
        "job": lambda: stack.http.get(f"/jobs/{accepted[0]}"),
        "readyz": lambda: stack.http.get("/readyz"),
    }
    for what, call in during.items():
        start = time.monotonic()
        answer = call()
        assert answer.status_code == 503 and "retry-after" in answer.headers, (what, answer.text)
        assert time.monotonic() - start < 2.0, what  # answered, not hanging on Redis

    restarted = time.time()
    stack.redis.start()  # same port and directory: the append-only file is replayed
    results = [r.get(f"celery-task-meta-{j}") for j in accepted]
    missing = {j for j, res in zip(accepted, results, strict=True) if res is None} - held_ids(r)
    assert not missing, f"accepted jobs gone after the restart: {missing}"

    wait_for(
        lambda: any(w.consuming and w.heartbeat_at > restarted for w in read_workers(r)), 30,
        "the worker did not announce itself consuming after the restart",
    )  # fmt: skip
    wait_for(lambda: stack.http.get("/readyz").status_code == 200, 10, "/readyz stayed 503")
    assert_all_succeeded(stack.answers(accepted, 60))
    assert hold.get(timeout=10) == {"slept": 2.0}
    log = log_with_successes(worker.log, [hold.id, *accepted])
    for job_id in [hold.id, *accepted]:
        assert succeeded_lines(log, job_id) == 1, job_id
    after = stack.http.post(
        "/transfer", files={"image": ("a.png", png), "attributes": ("b.png", png)}
    )
    assert after.status_code == 200, after.text


def test_worker_that_stops_consuming_is_reported_by_readyz_and_replaced(stack):
    """Celery's `cancel_consumer` leaves the worker connected but taking nothing: the state
    the reconnect bugs of Celery 5.x leave a worker in."""
    info = stack.worker.wait_ready(30)
    wait_for(lambda: stack.http.get("/readyz").status_code == 200, 10, "not ready to start with")
    node = f"{stack.worker.name}@{socket.gethostname()}"
    replies = stack.sender.control.cancel_consumer(QUEUE, destination=[node], reply=True, timeout=5)
    assert replies == [{node: {"ok": f"no longer consuming from {QUEUE}"}}]
    job = stack.submit(100)

    ready = wait_for(
        lambda: (a := stack.http.get("/readyz")).status_code == 503 and a, 20,
        "/readyz did not notice the worker stopped consuming",
    )  # fmt: skip
    assert "1 worker(s) stopped consuming" in ready.json()["detail"]
    assert_all_succeeded(stack.answers([job], 40))  # by the process that replaced it
    assert stack.worker.wait_ready(30).pid != info.pid
    assert "stopped consuming its queue; exiting" in stack.worker.log()
    wait_for(lambda: stack.http.get("/readyz").status_code == 200, 10, "/readyz stayed 503")
