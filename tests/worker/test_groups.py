"""A message carrying several jobs (worker/groups.py) against a real worker: each job answered
under its own id, and a group redelivered after its worker died split into its jobs, so that a
poison job among them fails alone. The worker runs with tight limits and the fault tasks."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
import redis
from celery import states
from PIL import Image

from contract.errors import TooManyDeliveries, UnknownModel
from contract.tasks import DELIVERIES_PREFIX, GroupedJob, TaskName
from service.core.sender import queue_group
from tests.utils.faults import FaultTask, log_with_successes, succeeded_lines
from tests.worker.conftest import assert_same_images, decode, fault_worker, random_png


@pytest.fixture(scope="module")
def worker(redis_server, model_dir, tmp_path_factory):
    with fault_worker(redis_server.url, model_dir, tmp_path_factory.mktemp("worker-log")) as w:
        yield w


def grouped(task: str, expires_in: float = 60, **kwargs) -> GroupedJob:
    return GroupedJob(
        id=str(uuid.uuid4()), task=task, kwargs=kwargs, expires_at=time.time() + expires_in
    )


def send_group(url: str, jobs: list[GroupedJob], started_before: bool = False) -> str:
    """Queues the group as the API does (service/core/sender.py); `started_before`: as if a
    worker had taken it and died."""
    r = redis.Redis.from_url(url)
    pipe = r.pipeline(transaction=False)
    group_id = queue_group(pipe, jobs)
    if started_before:
        r.set(DELIVERIES_PREFIX + group_id, 1)
    pipe.execute()
    r.close()
    return group_id


def pil(b64: str) -> Image.Image:
    return Image.fromarray(decode(b64).astype(np.uint8))


def test_each_job_of_a_group_is_answered_under_its_own_id(worker, client, models, redis_server):
    worker.wait_ready(60)
    images = [random_png(300 + i) for i in range(4)]
    samples = [
        grouped(str(TaskName.SAMPLE), model="digits", image=im, n=2, seed=i)
        for i, im in enumerate(images)
    ]
    unknown = grouped(str(TaskName.NEUTRALIZE), model="nope", image=images[0])
    expired = grouped(str(TaskName.NEUTRALIZE), expires_in=-1, model="digits", image=images[0])
    send_group(redis_server.url, [*samples, unknown, expired])

    for i, (im, job) in enumerate(zip(images, samples, strict=True)):
        answer = client.AsyncResult(job.id).get(timeout=30)
        assert_same_images(answer["images"], models["digits"].sample(pil(im), 2, i))
    with pytest.raises(UnknownModel):  # fails alone
        client.AsyncResult(unknown.id).get(timeout=30)
    assert client.AsyncResult(expired.id).state == states.REVOKED

    r = redis.Redis.from_url(redis_server.url)
    assert [int(r.get(DELIVERIES_PREFIX + job.id)) for job in samples] == [1] * 4
    r.close()
    log = log_with_successes(worker.log, [job.id for job in samples])
    assert all(succeeded_lines(log, job.id) == 1 for job in samples)


def test_a_redelivered_group_is_split_into_messages_of_its_own(worker, client, redis_server):
    worker.wait_ready(60)
    jobs = [
        grouped(str(TaskName.NEUTRALIZE), model="digits", image=random_png(400 + i))
        for i in range(3)
    ]
    group_id = send_group(redis_server.url, jobs, started_before=True)
    for job in jobs:
        assert len(client.AsyncResult(job.id).get(timeout=30)["images"]) == 1
    r = redis.Redis.from_url(redis_server.url)
    assert r.get(DELIVERIES_PREFIX + group_id) == b"split"
    r.close()
    assert f"group {group_id} was started before" in worker.log()


def test_a_poison_job_in_a_group_fails_alone(worker, client, redis_server):
    """The crash kills the worker with the whole group running; redelivered, the group is split,
    each job runs alone, and only the poison one runs out of deliveries."""
    worker.wait_ready(60)
    fine = [
        grouped(str(TaskName.NEUTRALIZE), model="digits", image=random_png(500 + i))
        for i in range(3)
    ]
    # The split puts the jobs back on the queue and the same worker pops them while the poison
    # runs: the poison waits until the queue is empty and the pops are recorded, or the kill
    # could lose a job in kombu's BRPOP window (the API's journal's work, not this test's).
    poison = grouped(str(FaultTask.CRASH), settle_s=0.5)
    send_group(redis_server.url, [fine[0], poison, *fine[1:]])

    with pytest.raises(TooManyDeliveries, match="started 2 times"):
        client.AsyncResult(poison.id).get(timeout=120)
    for job in fine:
        assert len(client.AsyncResult(job.id).get(timeout=60)["images"]) == 1
    r = redis.Redis.from_url(redis_server.url)
    # Started in the group, then once alone after the split.
    assert [int(r.get(DELIVERIES_PREFIX + job.id)) for job in fine] == [2] * 3
    r.close()
    log = log_with_successes(worker.log, [job.id for job in fine])
    assert all(succeeded_lines(log, job.id) == 1 for job in fine)
