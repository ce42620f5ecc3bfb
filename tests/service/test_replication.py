"""`redis_min_replicas`: a job is answered 202 only once that many replicas of the primary
hold it (Redis WAIT); else 503, naming the job, which was queued and may still run."""

from __future__ import annotations

import json

import pytest
import redis
from fastapi.testclient import TestClient

from contract.tasks import QUEUE
from service.main import create_app
from tests.service.conftest import small_settings
from tests.service.test_connections import announce_worker
from tests.utils.faults import wait_for
from tests.utils.redis_server import running_redis


@pytest.fixture(scope="module")
def primary(tmp_path_factory):
    with running_redis(tmp_path_factory.mktemp("primary")) as server:
        yield server


def queued_ids(client: redis.Redis) -> set[str]:
    return {json.loads(m)["headers"]["id"] for m in client.lrange(QUEUE, 0, -1)}


def test_job_no_replica_confirms_is_503_naming_the_queued_job(primary, png):
    announce_worker(primary.url)
    settings = small_settings(redis_url=primary.url, redis_min_replicas=1, redis_replica_wait_s=0.2)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/sample?async=true", files={"image": ("a.png", png)})
    assert answer.status_code == 503, answer.text
    job_id = answer.headers["x-job-id"]
    assert "not yet on 1 replica(s)" in answer.json()["detail"]
    assert answer.headers["retry-after"] == "5"
    assert job_id in queued_ids(redis.Redis.from_url(primary.url))  # it may still run
    redis.Redis.from_url(primary.url).delete(QUEUE)


def test_job_is_accepted_once_the_replica_holds_it(primary, png, tmp_path):
    announce_worker(primary.url)
    with running_redis(tmp_path, "--replicaof", "127.0.0.1", str(primary.port)) as replica:
        copy = redis.Redis.from_url(replica.url)
        settings = small_settings(redis_url=primary.url, redis_min_replicas=1, redis_timeout_s=2)
        with TestClient(create_app(settings)) as client:
            wait_for(
                lambda: copy.info("replication")["master_link_status"] == "up", 10,
                "the replica did not sync",
            )  # fmt: skip
            answer = client.post("/sample?async=true", files={"image": ("a.png", png)})
            assert answer.status_code == 202, answer.text
            assert answer.json()["job_id"] in queued_ids(copy)  # on the replica at the answer
    redis.Redis.from_url(primary.url).delete(QUEUE)
