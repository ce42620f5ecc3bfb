"""A journal of accepted asynchronous jobs, so that the broker cannot lose one.

kombu's Redis transport takes a message with BRPOP and records it as unacknowledged right
after. A worker killed in between (an out-of-memory kill) takes the message with it: it is
then in neither the queue nor the unacknowledged set, and nothing would ever run it.

Each job accepted with `?async=true` is noted in a sorted set (`srbvae:api:journal`, by
submission time), its task and payload in `srbvae:api:payload:<id>`, both with the result
TTL. One API process at a time (a lock in Redis) sweeps the jobs older than
`resend_after_s` that have no result yet. A job found neither queued nor unacknowledged is
suspect; still so `confirm_s` later, it is sent again under the same id. The wait matters: a
live worker records what it popped at once, but "at once" has been seconds for a worker
starting on a loaded machine, and a job sent again while the first copy runs would run
twice. Sending again is otherwise safe: a worker skips a job whose result is already stored
(worker/tracker.py). Finished and expired jobs leave the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import cast

from celery import Celery, states
from pydantic import BaseModel
from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from contract.tasks import GROUP_JOBS_HEADER, QUEUE, TaskName

log = logging.getLogger(__name__)

JOURNAL_KEY = "srbvae:api:journal"
LOCK_KEY = "srbvae:api:journal:lock"
PAYLOAD_PREFIX = "srbvae:api:payload:"
UNACKED_KEY = "unacked"  # kombu's Redis transport: delivery tag -> [message, exchange, key]
_BATCH = 100  # journal entries looked at per sweep


class Journal:
    def __init__(self, redis: Redis, celery: Celery, *, ttl_s: int, resend_after_s: float,
                 confirm_s: float, sweep_s: float) -> None:  # fmt: skip
        self.redis = redis
        self.celery = celery
        self.ttl_s = ttl_s
        self.resend_after_s = resend_after_s
        self.confirm_s = confirm_s
        self.sweep_s = sweep_s
        self._suspects: dict[str, float] = {}  # job id -> when first found nowhere (monotonic)

    def add(self, pipe, job_id: str, task: TaskName, payload: BaseModel, expires_s: float) -> None:
        """Queues the journal's writes for a new job on `pipe` (before the job is sent)."""
        now = time.time()
        entry = {"task": str(task), "kwargs": payload.model_dump(mode="json"),
                 "expires_at": now + expires_s}  # fmt: skip
        pipe.set(PAYLOAD_PREFIX + job_id, json.dumps(entry), ex=self.ttl_s)
        pipe.zadd(JOURNAL_KEY, {job_id: now})

    async def forget(self, job_ids: list[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(JOURNAL_KEY, *job_ids)
        pipe.delete(*(PAYLOAD_PREFIX + j for j in job_ids))
        await pipe.execute()

    async def run(self) -> None:
        """Sweeps every `sweep_s` until cancelled; an outage only postpones the next sweep."""
        while True:
            await asyncio.sleep(self.sweep_s)
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - Redis may be down; try again later
                log.debug("journal sweep skipped: %s", exc)

    async def sweep(self) -> list[str]:
        """Sends again the jobs the broker lost; returns their ids."""
        token = uuid.uuid4().hex
        lock_ms = int(max(self.sweep_s, 5.0) * 2000)
        if not await self.redis.set(LOCK_KEY, token, nx=True, px=lock_ms):
            return []  # another API process is sweeping
        try:
            due = await self.redis.zrangebyscore(
                JOURNAL_KEY, "-inf", time.time() - self.resend_after_s, start=0, num=_BATCH
            )
            # redis-py types replies as bytes | str (for decode_responses=True); this client leaves it off, so members come back as bytes.
            pending = await self._unfinished([d.decode() for d in cast(list[bytes], due)])
            nowhere = pending - await self._held() if pending else set()
            now = time.monotonic()
            self._suspects = {j: self._suspects.get(j, now) for j in nowhere}
            lost = sorted(j for j, since in self._suspects.items() if now - since >= self.confirm_s)
            for job_id in lost:
                await self._resend(job_id)
                del self._suspects[job_id]
            # Queued, running or sent again: look again after another resend_after_s.
            later = pending - self._suspects.keys()
            if later:
                await self.redis.zadd(JOURNAL_KEY, dict.fromkeys(later, time.time()), xx=True)
            return lost
        finally:
            if await self.redis.get(LOCK_KEY) == token.encode():
                await self.redis.delete(LOCK_KEY)

    async def _unfinished(self, job_ids: list[str]) -> set[str]:
        """The jobs without a final result; the others leave the journal."""
        if not job_ids:
            return set()
        result_keys = [self._result_key(j) for j in job_ids]
        payload_keys = [PAYLOAD_PREFIX + j for j in job_ids]
        values = await self.redis.mget(result_keys + payload_keys)
        results, payloads = values[: len(job_ids)], values[len(job_ids) :]
        unfinished, done = set(), []
        now = time.time()
        for job_id, raw, payload in zip(job_ids, results, payloads, strict=True):
            status = json.loads(raw).get("status") if raw else None
            expired = payload is None or json.loads(payload)["expires_at"] <= now
            if status in states.READY_STATES or expired:
                done.append(job_id)
            else:
                unfinished.add(job_id)
        if done:
            await self.forget(done)
        return unfinished

    async def _held(self) -> set[str]:
        """Ids of the jobs in the queue or held unacknowledged by a worker, alone or in a group."""
        queued = await self.redis.lrange(QUEUE, 0, -1)
        unacked = await self.redis.hvals(UNACKED_KEY)
        ids = set()
        for raw in queued:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                ids.update(_job_ids(json.loads(raw)["headers"]))
        for raw in unacked:
            with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
                ids.update(_job_ids(json.loads(raw)[0]["headers"]))
        return ids

    async def _resend(self, job_id: str) -> None:
        raw = await self.redis.get(PAYLOAD_PREFIX + job_id)
        if raw is None:
            return
        entry = json.loads(raw)
        log.warning(
            "job %s is neither queued nor held by a worker, and has no result (the broker lost "
            "it); sending it again", job_id,
        )  # fmt: skip
        await run_in_threadpool(
            self.celery.send_task,
            entry["task"],
            kwargs=entry["kwargs"],
            queue=QUEUE,
            task_id=job_id,
            expires=datetime.fromtimestamp(entry["expires_at"], UTC),
        )

    def _result_key(self, job_id: str) -> str:
        key = self.celery.backend.get_key_for_task(job_id)
        return key.decode() if isinstance(key, bytes) else key


def _job_ids(headers: dict) -> list[str]:
    """The jobs a message carries: its own id, or a group's jobs (service/core/groups.py)."""
    grouped = headers.get(GROUP_JOBS_HEADER)
    return [str(j) for j in grouped] if isinstance(grouped, list) else [headers["id"]]
