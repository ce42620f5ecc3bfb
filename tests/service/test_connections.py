"""The real job queue and live workers (service/core/connections.py) against redis-server, no
worker: outages, timeouts, and results arriving by publication rather than polling."""

from __future__ import annotations

import asyncio
import threading
import time

import redis
from fastapi.testclient import TestClient

from contract.registry import announce
from contract.tasks import DELIVERIES_PREFIX, QUEUE, GenerateRequest, TaskName
from service.core.connections import Connections
from service.main import create_app
from tests.service.conftest import small_settings
from tests.service.fakes import worker_info
from tests.utils import images
from tests.utils.redis_server import running_redis


def announce_worker(url: str) -> None:
    """A registry entry as a worker writes it, so routes find a model without a worker."""
    pipe = redis.Redis.from_url(url).pipeline()
    announce(pipe, worker_info("fake.1"))
    pipe.execute()


def test_redis_down_is_503_with_retry_after_quickly(png):
    with TestClient(create_app(small_settings(redis_url="redis://127.0.0.1:1/0"))) as client:
        start = time.monotonic()
        answer = client.post("/transfer", files={"image": ("a", png), "attributes": ("b", png)})
        assert time.monotonic() - start < 2
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert client.get("/readyz").status_code == 503
        assert client.get("/models").status_code == 503
        assert client.get("/metrics").status_code == 200  # scrapes go on during an outage


def test_job_outliving_its_time_limit_is_504(redis_server, png):
    announce_worker(redis_server.url)
    settings = small_settings(redis_url=redis_server.url, job_timeout_s=0.3)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/sample", files={"image": ("a.png", png)})
        assert answer.status_code == 504
        job_id = answer.headers["x-job-id"]
        assert client.get(f"/jobs/{job_id}").json()["status"] == "queued"


def test_queue_over_its_limit_is_503(redis_server, png):
    announce_worker(redis_server.url)
    settings = small_settings(redis_url=redis_server.url, max_queue_depth=1)
    with TestClient(create_app(settings)) as client:
        assert client.post("/sample?async=true", files={"image": ("a", png)}).status_code in (
            202,
            503,
        )
        answer = client.post("/sample?async=true", files={"image": ("a", png)})
        assert answer.status_code == 503 and "retry-after" in answer.headers
    redis.Redis.from_url(redis_server.url).delete("srbvae")


def test_result_is_answered_as_soon_as_it_is_stored(redis_server, png):
    """Stores the result as a worker's Celery backend does, 0.3 s after submission; the
    request must end right after, not on a polling tick."""
    announce_worker(redis_server.url)
    settings = small_settings(redis_url=redis_server.url, job_timeout_s=5)
    app = create_app(settings)
    stored_at: list[float] = []

    def fake_worker(backend) -> None:
        client = redis.Redis.from_url(redis_server.url)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for key in client.scan_iter(match="srbvae:api:job:*"):
                job_id = key.decode().rsplit(":", 1)[1]
                time.sleep(0.3)
                result = {"model": "digits", "checkpoint_sha256": "ab" * 32, "elapsed_ms": 1.0,
                          "images": [images.png_b64()], "seed": 3}  # fmt: skip
                backend.store_result(job_id, result, "SUCCESS")
                stored_at.append(time.monotonic())
                return
            time.sleep(0.01)

    leftovers = redis.Redis.from_url(redis_server.url).keys("srbvae:api:job:*")
    if leftovers:  # jobs of the tests above: the fake worker must find only this one
        redis.Redis.from_url(redis_server.url).delete(*leftovers)
    with TestClient(app) as client:
        thread = threading.Thread(
            target=fake_worker, args=(app.state.connections.jobs.celery.backend,)
        )
        thread.start()
        answer = client.post("/sample", files={"image": ("a", png)}, data={"n": "1", "seed": "3"})
        done = time.monotonic()
        thread.join()
    assert answer.status_code == 200 and answer.headers["x-seed"] == "3"
    assert done - stored_at[0] < 0.1


def test_sending_a_job_subscribes_nothing_beyond_the_wait(redis_server):
    """Celery's stock backend subscribes to each task it sends (for AsyncResult.get); the API
    waits on its own subscription, so a send is one LPUSH and no SUBSCRIBE."""
    from service.core.connections import make_celery

    app = make_celery(small_settings(redis_url=redis_server.url))
    client = redis.Redis.from_url(redis_server.url)
    try:
        sent = app.send_task("srbvae.transfer", kwargs={}, task_id="send-only-check")
        # While the AsyncResult lives, the stock backend would still be subscribed.
        subscribed = [c for c in client.client_list() if int(c.get("sub", 0))]
        assert subscribed == [], sent
        assert client.llen("srbvae") >= 1
        assert app.backend.get_key_for_task("x") == b"celery-task-meta-x"
    finally:
        client.delete("srbvae")
        app.close()
        client.close()


def test_first_requests_after_a_redis_restart_do_not_fail_on_stale_pooled_connections(
    tmp_path,
):
    """A restart leaves the API's pool full of dead sockets. Concurrent calls take one each:
    every kind of call must reconnect rather than answer 503 (seen in the resilience test of
    a Redis restart, on the GET that follows a subscription)."""

    async def scenario(server) -> None:
        connections = Connections.open(small_settings(redis_url=server.url, redis_timeout_s=1))
        jobs = connections.jobs
        payload = GenerateRequest(model="digits", z=[[0.0] * 8])
        try:
            job_id, _ = await jobs.submit(TaskName.GENERATE, payload, 30)
            await asyncio.gather(*(jobs.state(job_id) for _ in range(8)))  # 8+ connections
            pooled = len(connections.redis.connection_pool._available_connections)
            assert pooled >= 8, pooled
            server.stop()
            server.start()  # the append-only file brings the job back
            states = await asyncio.gather(*(jobs.state(job_id) for _ in range(8)))
            assert [s.state for s in states] == ["queued"] * 8
            await asyncio.gather(*(jobs.queue_depth() for _ in range(8)))
            await jobs.submit(TaskName.GENERATE, payload, 30)
            await jobs.ping()
        finally:
            await connections.close()

    with running_redis(tmp_path) as server:
        asyncio.run(scenario(server))
        assert redis.Redis.from_url(server.url).llen(QUEUE) == 2  # each job sent once


def test_job_a_worker_has_started_is_running(redis_server):
    """Workers store no STARTED state; their delivery counter says a job was started."""

    async def scenario() -> None:
        connections = Connections.open(small_settings(redis_url=redis_server.url))
        payload = GenerateRequest(model="digits", z=[[0.0] * 8])
        try:
            job_id, _ = await connections.jobs.submit(TaskName.GENERATE, payload, 30)
            assert (await connections.jobs.state(job_id)).state == "queued"
            await connections.redis.incr(DELIVERIES_PREFIX + job_id)
            assert (await connections.jobs.state(job_id)).state == "running"
        finally:
            await connections.close()

    asyncio.run(scenario())
    redis.Redis.from_url(redis_server.url).delete(QUEUE)
