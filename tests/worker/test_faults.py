"""Faults against a real worker: SIGKILL mid-job, a poison job, the hard time limit, and a
pickle message on the queue. The worker runs with tight limits and the fault tasks."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import redis
from celery import states
from PIL import Image

from contract.errors import JobTimeout, TooManyDeliveries
from contract.tasks import DELIVERIES_PREFIX, QUEUE, TaskName
from scripts.processes import pid_alive
from tests.utils.faults import (
    FaultTask,
    log_with_successes,
    publish_pickle,
    succeeded_lines,
    wait_for,
)
from tests.worker.conftest import assert_same_images, decode, fault_worker, random_png


@pytest.fixture(scope="module")
def worker(redis_server, model_dir, tmp_path_factory):
    with fault_worker(redis_server.url, model_dir, tmp_path_factory.mktemp("worker-log")) as w:
        yield w


def pil(b64: str) -> Image.Image:
    return Image.fromarray(decode(b64).astype(np.uint8))


def test_sigkill_mid_job_then_every_queued_job_finishes_once(worker, client, models, redis_server):
    slow = client.send_task(str(FaultTask.SLEEP), kwargs={"seconds": 2.0})
    images = [random_png(200 + i) for i in range(6)]
    samples = [
        client.send_task(str(TaskName.SAMPLE), kwargs=dict(model="digits", image=im, n=2, seed=i))
        for i, im in enumerate(images)
    ]
    r = redis.Redis.from_url(redis_server.url)
    # Killed once its prefetch is full (4 jobs reserved, the rest still queued). With room
    # left, kombu keeps a BRPOP outstanding, and a message Redis has already popped into the
    # socket of a SIGKILLed worker is lost: see docs/worker.md, "The BRPOP window".
    # Counted, not just STARTED: Celery stores STARTED before the job is admitted, and a kill
    # in between would hit a job that had not begun.
    wait_for(
        lambda: r.get(DELIVERIES_PREFIX + slow.id) == b"1" and r.hlen("unacked") >= 4,
        20,
        "the worker did not start the slow job and fill its prefetch",
    )
    killed = worker.kill_worker()
    assert worker.wait_ready(60).pid != killed

    assert slow.get(timeout=60) == {"slept": 2.0}
    for i, (im, pending) in enumerate(zip(images, samples, strict=True)):
        assert_same_images(
            pending.get(timeout=60)["images"], models["digits"].sample(pil(im), 2, i)
        )

    assert int(r.get(DELIVERIES_PREFIX + slow.id)) == 2  # killed once, then finished
    r.close()
    log = log_with_successes(worker.log, [j.id for j in [slow, *samples]])
    for job in [slow, *samples]:
        assert succeeded_lines(log, job.id) == 1, job.id


def test_job_past_the_hard_limit_times_out_and_the_process_is_replaced(worker, client):
    before = worker.wait_ready(30).pid
    stuck = client.send_task(str(FaultTask.SLEEP), kwargs={"seconds": 60.0})
    with pytest.raises(JobTimeout, match="time limit of 3 s"):
        stuck.get(timeout=30)
    wait_for(lambda: not pid_alive(before), 30, "the stuck process was not replaced")
    assert worker.wait_ready(60).pid != before
    assert "hard time limit of 4.5 s exceeded" in worker.log()
    result = client.send_task(
        str(TaskName.NEUTRALIZE), kwargs=dict(model="faces", image=random_png(1))
    ).get(timeout=30)
    assert len(result["images"]) == 1
    assert stuck.state == states.FAILURE


def test_poison_job_fails_with_too_many_deliveries_and_the_queue_drains(worker, client):
    worker.wait_ready(30)
    poison = client.send_task(str(FaultTask.CRASH))
    with pytest.raises(TooManyDeliveries, match="started 2 times"):
        poison.get(timeout=90)
    worker.wait_ready(60)
    result = client.send_task(
        str(TaskName.NEUTRALIZE), kwargs=dict(model="digits", image=random_png(2))
    ).get(timeout=30)
    assert len(result["images"]) == 1


def test_pickle_message_is_refused_and_never_executed(worker, client, redis_server, tmp_path):
    worker.wait_ready(30)
    marker = tmp_path / "pwned"
    job_id = str(uuid.uuid4())
    publish_pickle(redis_server.url, str(marker), job_id)
    # A JSON job sent after it is answered, so the pickle one has been seen and dropped.
    result = client.send_task(
        str(TaskName.NEUTRALIZE), kwargs=dict(model="digits", image=random_png(3))
    ).get(timeout=30)
    assert len(result["images"]) == 1
    wait_for(lambda: "Refusing to deserialize" in worker.log(), 10, "no refusal logged")
    assert not marker.exists()
    assert client.AsyncResult(job_id).state == states.PENDING  # never ran, nothing stored
    r = redis.Redis.from_url(redis_server.url)
    assert r.llen(QUEUE) == 0  # dropped, not requeued to loop forever
    r.close()
