"""Sending a task from the event loop: the message Celery's Redis transport would queue, as one
LPUSH in the pipeline that records the job.

Celery's `send_task` is synchronous: from the event loop it needs the thread pool (a hop there
and back per job), and each call builds a producer, a signature, repr()s of the arguments and
kombu's envelope through several layers. The message here is the one they produce, field for
field (task protocol 2, a JSON body, which the API's and the worker's Celery apps leave as JSON
text where kombu's Redis transport would base64 it: `body_encoding` utf-8), pushed on the
queue's list as kombu's `Channel._put` pushes it; `tests/service/test_sender.py` checks it
against Celery's own. The worker sees no difference: it acknowledges late, counts deliveries
and honours `expires` as for any Celery message. The JSON is written by orjson: the images in
the arguments are long base64 strings, which the json module escapes character by character
(about 20 us for 4 KB on the development machine, against 1 us).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from redis.asyncio.client import Pipeline

from contract.tasks import BODY_ENCODING, GROUP_JOBS_HEADER, GROUP_TASK, QUEUE, GroupedJob

# Celery's names for who sent a task and where replies would go (an RPC backend only).
ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"
REPLY_TO = str(uuid.uuid4())
_NO_CALLBACKS = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_SHORT = 100  # longer strings (base64 images) are summarised in the message's kwargsrepr


def task_message(
    name: str, kwargs: dict, task_id: str, expires_s: float | None,
    extra_headers: dict[str, object] | None = None,
) -> bytes:  # fmt: skip
    """The JSON message of task `name` with keyword arguments `kwargs`, dropped by a worker
    that takes it more than `expires_s` from now (None: never)."""
    body = orjson.dumps([[], kwargs, _NO_CALLBACKS]).decode()
    expires = None if expires_s is None else datetime.now(UTC) + timedelta(seconds=expires_s)
    headers: dict[str, object] = {
        "lang": "py",
        "task": name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None if expires is None else expires.isoformat(),
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": kwargs_repr(kwargs),
        "origin": ORIGIN,
        "ignore_result": None,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
        **(extra_headers or {}),
    }
    properties: dict[str, object] = {
        "correlation_id": task_id,
        "reply_to": REPLY_TO,
        "delivery_mode": 2,  # persistent
        **({} if expires_s is None else {"expiration": str(int(expires_s * 1000))}),
        "delivery_info": {"exchange": "", "routing_key": QUEUE},
        "priority": 0,
        "body_encoding": BODY_ENCODING,
        "delivery_tag": str(uuid.uuid4()),  # the worker's key for it until acknowledged
    }
    message = {
        "body": body,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": properties,
    }
    return orjson.dumps(message)


def kwargs_repr(kwargs: dict) -> str:
    """What Celery shows of the arguments (logs, events): images as their length only."""

    def short(v: object) -> object:
        if isinstance(v, str) and len(v) > _SHORT:
            return f"<{len(v)} characters>"
        if isinstance(v, list) and len(repr(v)) > _SHORT:
            return f"<{len(v)} items>"
        return v

    return repr({k: short(v) for k, v in kwargs.items()})


def queue_task(pipe: Pipeline, name: str, kwargs: dict, task_id: str, expires_s: float) -> None:
    """Adds the task's LPUSH to `pipe`, to go with the job's other writes in one round trip
    (priority 0 is the list named after the queue)."""
    pipe.lpush(QUEUE, task_message(name, kwargs, task_id, expires_s))


def queue_group(pipe: Pipeline, jobs: list[GroupedJob]) -> str:
    """Adds the LPUSH of one message carrying `jobs` (contract.tasks.GROUP_TASK) to `pipe`;
    returns the message's own id. The message has no expiry of its own: each job carries its
    own, and the worker stores an expired one as revoked under that job's id, where Celery
    would store it under the message's. The job ids go in a header for the journal."""
    group_id = str(uuid.uuid4())
    kwargs = {"jobs": [job.model_dump(mode="json") for job in jobs]}  # contract.tasks.JobGroup
    headers: dict[str, object] = {GROUP_JOBS_HEADER: [job.id for job in jobs]}
    pipe.lpush(QUEUE, task_message(GROUP_TASK, kwargs, group_id, None, headers))
    return group_id
