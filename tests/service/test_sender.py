"""The API's task message against Celery's own: what `send_task` queues, field for field, and
a worker's view of it (kombu's Redis transport and Celery's protocol 2 parse it back)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import redis
from redis.asyncio import Redis

from contract.tasks import QUEUE
from service.core.connections import make_celery
from service.core.sender import queue_task, task_message
from tests.service.conftest import small_settings

KWARGS = {"model": "digits", "image": "A" * 4000, "attributes": "B" * 4000, "strength": 0.5}
JOB_ID = "11111111-2222-3333-4444-555555555555"
# Differ by sender, process or time, not by meaning.
PER_MESSAGE = {"delivery_tag", "reply_to", "origin", "expires", "kwargsrepr"}


def queued(url: str) -> dict:
    client = redis.Redis.from_url(url)
    (raw,) = client.lrange(QUEUE, 0, -1)
    client.delete(QUEUE)
    return json.loads(raw)


def comparable(message: dict) -> dict:
    body = json.loads(message["body"])  # JSON text: body_encoding utf-8 in both apps
    headers = {k: v for k, v in message["headers"].items() if k not in PER_MESSAGE}
    props = {k: v for k, v in message["properties"].items() if k not in PER_MESSAGE}
    rest = {k: v for k, v in message.items() if k not in ("body", "headers", "properties")}
    return {"body": body, "headers": headers, "properties": props, **rest}


def test_the_message_is_the_one_celery_sends(redis_server):
    app = make_celery(small_settings(redis_url=redis_server.url))
    try:
        app.send_task("srbvae.transfer", kwargs=KWARGS, queue=QUEUE, task_id=JOB_ID, expires=30)
    finally:
        app.close()
    celerys = queued(redis_server.url)

    async def ours() -> None:
        client = Redis.from_url(redis_server.url)
        pipe = client.pipeline(transaction=False)
        queue_task(pipe, "srbvae.transfer", KWARGS, JOB_ID, 30)
        await pipe.execute()
        await client.aclose()

    asyncio.run(ours())
    mine = queued(redis_server.url)
    assert comparable(mine) == comparable(celerys)
    assert set(mine["headers"]) == set(celerys["headers"])
    assert set(mine["properties"]) == set(celerys["properties"])
    gap = datetime.fromisoformat(mine["headers"]["expires"]) - datetime.fromisoformat(
        celerys["headers"]["expires"]
    )
    assert abs(gap.total_seconds()) < 5


def test_the_images_are_left_out_of_the_arguments_repr():
    message = json.loads(task_message("srbvae.transfer", KWARGS, JOB_ID, 30))
    shown = message["headers"]["kwargsrepr"]
    assert "'model': 'digits'" in shown and "'strength': 0.5" in shown
    assert "AAAA" not in shown and "<4000 characters>" in shown
    assert len(message["properties"]["delivery_tag"]) == 36  # a fresh uuid per message
