"""The API's one result subscription (service/core/results.py) against redis-server: shared by
every wait, and still answering after its connection is lost, with a result stored while it
was away."""

from __future__ import annotations

import asyncio
import fnmatch
import time

import pytest
import redis

from contract.tasks import ImagesResult, TaskName
from service.core.connections import Connections
from service.core.errors import Unavailable
from service.core.jobs import JobQueue, JobRecord
from service.core.results import RESULT_PATTERN
from tests.service.conftest import small_settings
from tests.utils import images
from tests.utils.redis_server import running_redis

RESULT = ImagesResult(
    model="digits", checkpoint_sha256="ab" * 32, elapsed_ms=1.0, images=[images.png_b64()]
).model_dump(mode="json")


@pytest.fixture
def redis_server(tmp_path):
    with running_redis(tmp_path) as server:
        yield server


def stored(jobs: JobQueue, job_id: str) -> bytes:
    """The result key's value as the worker's Celery backend writes it."""
    backend = jobs.celery.backend
    return backend.encode({"status": "SUCCESS", "result": RESULT, "task_id": job_id})


def record() -> JobRecord:
    return JobRecord(TaskName.GENERATE, time.time())


def run(server, scenario, **settings) -> None:
    async def main() -> None:
        connections = Connections.open(small_settings(redis_url=server.url, **settings))
        try:
            await scenario(connections.jobs)
        finally:
            await connections.close()

    asyncio.run(main())


def subscribers(client: redis.Redis) -> list[dict]:
    return [c for c in client.client_list() if int(c.get("sub", 0)) or int(c.get("psub", 0))]


def test_waits_share_one_connection_and_open_none_per_request(redis_server):
    client = redis.Redis.from_url(redis_server.url)

    async def scenario(jobs: JobQueue) -> None:
        async def one() -> str:
            async with jobs.watch() as watch:
                await watch.results.subscribed()
                job_id = watch.job_id
                client.publish(jobs._result_key(job_id), stored(jobs, job_id))
                state = await jobs.wait(watch, record(), 5)
                assert state.state == "succeeded" and state.result.images == RESULT["images"]
                return job_id

        await asyncio.gather(*(one() for _ in range(4)))  # warm: pool and subscription
        opened = client.info("stats")["total_connections_received"]
        await asyncio.gather(*(one() for _ in range(20)))
        assert client.info("stats")["total_connections_received"] == opened
        (listener,) = subscribers(client)
        assert int(listener["psub"]) == 1 and int(listener["sub"]) == 0
        assert client.pubsub_numpat() == 1 and client.pubsub_channels() == []
        assert listener["cmd"] != "unsubscribe"  # nothing sent to Redis per wait

    run(redis_server, scenario)


def test_result_stored_while_the_subscription_was_down_is_answered(redis_server):
    """The result is stored, unpublished, in the same transaction that kills the listener's
    connection: only the read after resubscribing can find it."""
    client = redis.Redis.from_url(redis_server.url)

    async def scenario(jobs: JobQueue) -> None:
        async with jobs.watch() as watch:
            await watch.results.subscribed()
            key = jobs._result_key(watch.job_id)
            pipe = client.pipeline(transaction=True)
            pipe.set(key, stored(jobs, watch.job_id))
            pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            pipe.execute()
            state = await jobs.wait(watch, record(), 5)
            assert state.state == "succeeded"
        # and the next wait is served by the new connection
        async with jobs.watch() as watch:
            await watch.results.subscribed()
            client.publish(jobs._result_key(watch.job_id), stored(jobs, watch.job_id))
            assert (await jobs.wait(watch, record(), 5)).state == "succeeded"

    run(redis_server, scenario)


def test_wait_ends_with_503_quickly_when_redis_goes_away_and_works_once_it_is_back(
    redis_server,
):
    async def scenario(jobs: JobQueue) -> None:
        async with jobs.watch() as watch:
            await watch.results.subscribed()
            waiting = asyncio.create_task(jobs.wait(watch, record(), 20))
            await asyncio.sleep(0.05)
            start = time.monotonic()
            redis_server.stop()
            with pytest.raises(Unavailable):
                await waiting
            assert time.monotonic() - start < 2
        # Back again: the next wait subscribes on a new connection at once, no backoff.
        redis_server.start()
        start = time.monotonic()
        async with jobs.watch() as watch:
            await watch.results.subscribed()
            client = redis.Redis.from_url(redis_server.url)
            client.publish(jobs._result_key(watch.job_id), stored(jobs, watch.job_id))
            assert (await jobs.wait(watch, record(), 5)).state == "succeeded"
        assert time.monotonic() - start < 0.5

    run(redis_server, scenario, redis_timeout_s=1)


def test_subscription_to_an_unreachable_redis_is_a_quick_503():
    async def scenario(jobs: JobQueue) -> None:
        start = time.monotonic()
        async with jobs.watch() as watch:
            with pytest.raises(Unavailable):
                await watch.results.subscribed()
        assert time.monotonic() - start < 1

    class Dead:
        url = "redis://127.0.0.1:1/0"

    run(Dead, scenario)


def test_the_pattern_covers_every_result_key_and_other_jobs_results_are_dropped(redis_server):
    client = redis.Redis.from_url(redis_server.url)

    async def scenario(jobs: JobQueue) -> None:
        async with jobs.watch() as watch:
            await watch.results.subscribed()
            other = "00000000-0000-0000-0000-000000000000"  # a job of another API process
            assert fnmatch.fnmatchcase(jobs._result_key(watch.job_id), RESULT_PATTERN)
            client.publish(jobs._result_key(other), stored(jobs, other))
            client.publish(jobs._result_key(watch.job_id), stored(jobs, watch.job_id))
            state = await jobs.wait(watch, record(), 5)
            assert state.job_id == watch.job_id and state.state == "succeeded"
            assert await watch.results.next(0) == []  # nothing else reached this wait

    run(redis_server, scenario)
