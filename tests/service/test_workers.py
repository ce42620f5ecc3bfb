"""The API's read of the worker registry (service/core/workers.py) against redis-server: a few
commands however many other keys Redis holds, and expired workers dropped from the index."""

from __future__ import annotations

import asyncio

import redis
from redis.asyncio import Redis

from contract.registry import INDEX_KEY, WorkerInfo, announce, worker_key
from service.core.workers import LiveWorkers
from tests.service.fakes import worker_info


def read(url: str) -> list[WorkerInfo]:
    async def go() -> list[WorkerInfo]:
        client = Redis.from_url(url)
        try:
            return await LiveWorkers(client, cache_s=0, retry_after_s=5).workers()
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_registry_read_is_a_few_commands_however_many_keys_redis_holds(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for i in range(20_000):  # results, job records: what a busy hour leaves
        pipe.set(f"celery-task-meta-{i}", "{}", ex=60)
    pipe.execute()
    pipe = client.pipeline()
    announce(pipe, worker_info("node.1"))
    pipe.execute()
    before = client.info("stats")["total_commands_processed"]
    assert [w.worker_id for w in read(redis_server.url)] == ["node.1"]
    assert client.info("stats")["total_commands_processed"] - before <= 4  # incl. this INFO
    client.flushall()


def test_worker_whose_entry_expired_leaves_the_index(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    pipe = client.pipeline()
    announce(pipe, worker_info("node.1"))
    announce(pipe, worker_info("node.2"))
    pipe.execute()
    client.delete(worker_key("node.2"))  # as its TTL would
    assert [w.worker_id for w in read(redis_server.url)] == ["node.1"]
    assert client.zrange(INDEX_KEY, 0, -1) == [b"node.1"]
    assert 0 < client.ttl(INDEX_KEY) <= 15  # the index itself outlives its last worker briefly
    client.flushall()
