"""One result subscription per API process, shared by every request that waits for a job.

Celery's Redis backend publishes each state it stores on a channel named after the result key
(`celery-task-meta-<job id>`). One connection per process stays subscribed to all of them, by
pattern, from start-up on; a wait registers its job's key with it and leaves again, without a
command to Redis either way:

    async with listener.watch(key) as watch:
        await watch.subscribed()     # in force from here: send the job only now
        ...                          # queue the job
        raws = await watch.next(timeout)

A connection and subscription of its own per waiting request (connect, SUBSCRIBE, GET,
UNSUBSCRIBE, close) cost about a millisecond of the API's CPU per request; a SUBSCRIBE and an
UNSUBSCRIBE per request on a shared connection, two writes to Redis and two confirmations to
read. The price of the pattern: every API process receives the result of every job, its own or
not (a few kilobytes each, dropped unless awaited), which is nothing for a few API processes
and a reason to go back to a channel per job for very many.

A job is queued only once the subscription is in force, so its result cannot be published
unseen: no read of the result key is needed. When the connection is lost, the listener
reconnects at once, subscribes again, then reads the result keys of the jobs still awaited (a
result stored while it was away was published to nobody) and hands over what it finds. If
Redis cannot be reached, every wait ends with 503, as any other Redis call would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from service.core import trace
from service.core.errors import OUTAGES, Unavailable

log = logging.getLogger(__name__)

# Every channel Celery's Redis backend publishes a result on (its key prefix, task_keyprefix).
RESULT_PATTERN = "celery-task-meta-*"
IDLE_PING_S = 10.0  # a quiet connection is pinged this often; two silent periods: it is dead
RECONNECT_MAX_S = 1.0  # backoff between attempts while Redis stays away


class Watch:
    """One waiting request's view of its job's channel."""

    def __init__(self, listener: ResultListener, key: str) -> None:
        self.key = key
        self._listener = listener
        self._active = asyncio.Event()  # the channel's subscription is in force
        self._changed = asyncio.Event()  # a state arrived, or the listener gave up
        self._raws: list[bytes] = []
        self._error: Unavailable | None = None
        self.delivered_ns: int | None = None  # with SRBVAE_TRACE_TIMINGS=1: the last arrival

    async def subscribed(self) -> None:
        """Returns once a result published from now on reaches this watch; 503 if Redis
        cannot be reached (within `redis_timeout_s`)."""
        try:
            await asyncio.wait_for(self._active.wait(), self._listener.timeout_s)
        except TimeoutError:
            raise self._listener.unavailable("no answer to the result subscription") from None
        self._raise()

    async def next(self, timeout_s: float) -> list[bytes]:
        """The states stored for the job since the last call (oldest first), or [] once
        `timeout_s` passes without one; 503 if the listener lost Redis for good."""
        if not self._raws and self._error is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(timeout_s, 0))
        self._changed.clear()
        raws, self._raws = self._raws, []
        if not raws:
            self._raise()
        return raws

    def _deliver(self, raw: bytes) -> None:
        if trace.ENABLED:
            self.delivered_ns = time.time_ns()
        self._raws.append(raw)
        self._changed.set()

    def _fail(self, error: Unavailable) -> None:
        self._error = error
        self._active.set()
        self._changed.set()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


class ResultListener:
    """The process's one subscriber connection; started by the first watch, stopped by
    `close()`. Not thread-safe: one event loop."""

    def __init__(self, redis: Redis, *, timeout_s: float, retry_after_s: int) -> None:
        self.redis = redis  # the pool: result keys are read there after a reconnect
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._watches: dict[str, Watch] = {}
        self._conn: AbstractConnection | None = None  # set while subscribed and reading
        self._wanted = asyncio.Event()  # a watch is waiting for a connection
        self._established = False  # this connection's subscription is in force
        self._task: asyncio.Task | None = None

    @contextlib.asynccontextmanager
    async def watch(self, key: str) -> AsyncIterator[Watch]:
        if key in self._watches:
            raise ValueError(f"{key} is already watched")  # job ids are fresh UUIDs
        watch = Watch(self, key)
        self._watches[key] = watch
        try:
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run(), name="result-listener")
            if self._established:
                watch._active.set()
            else:
                self._wanted.set()  # in force once the listener has (re)subscribed
            yield watch
        finally:
            del self._watches[key]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def unavailable(self, why: str) -> Unavailable:
        log.warning("Redis unavailable: %s", why)
        return Unavailable("the job queue (Redis) is unavailable", self.retry_after_s)

    # --- the listener task ---------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0  # attempts in a row that did not get as far as a subscription
        while True:
            if not self._watches:  # no one waits: connect when someone does
                self._wanted.clear()
                await self._wanted.wait()
            conn = self._connection()
            self._established = False
            try:
                await conn.connect()
                await self._listen(conn)  # returns only by raising
            except Exception as exc:
                established, self._established = self._established, False
                if established and isinstance(exc, OUTAGES):
                    log.warning("result subscription lost (%s); subscribing again", exc)
                    failures = 0
                    continue
                if isinstance(exc, OUTAGES):
                    error = self.unavailable(f"result subscription: {exc}")
                else:  # a bug here must not leave every later request to time out
                    log.exception("result listener failed")
                    error = self.unavailable("result listener failed")
                failures += 1
                self._fail_all(error)
                self._wanted.clear()  # a new watch tries again at once
                with contextlib.suppress(TimeoutError):
                    delay = min(RECONNECT_MAX_S, 0.05 * 2**failures)
                    await asyncio.wait_for(self._wanted.wait(), delay)
            finally:
                self._conn = None
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)

    def _connection(self) -> AbstractConnection:
        """A connection of its own, outside the pool: RESP2 (every reply a list, pushes
        included), no retry, no health check (errors must reach `_run`, which knows to
        resubscribe and read the keys; redis-py's own reconnects would not)."""
        pool = self.redis.connection_pool
        kwargs = {
            **pool.connection_kwargs,
            "protocol": 2,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }
        for unsupported in ("maint_notifications_config", "maint_notifications_pool_handler"):
            kwargs.pop(unsupported, None)
        return pool.connection_class(**kwargs)

    async def _listen(self, conn: AbstractConnection) -> None:
        # Watches registered before the subscription is confirmed are read once it is: their
        # results may have been stored while no connection was subscribed.
        self._conn = conn
        before = list(self._watches)
        await conn.send_command("PSUBSCRIBE", RESULT_PATTERN, check_health=False)
        pinged = False
        while True:
            reply = await conn.read_response(timeout=IDLE_PING_S)
            if reply is None:  # quiet: ping; quiet again after the ping: the socket is dead
                if pinged:
                    raise ConnectionError("no answer to PING on the result subscription")
                await conn.send_command("PING", check_health=False)
                pinged = True
                continue
            pinged = False
            kind = reply[0]
            if kind == b"pmessage":  # [kind, pattern, channel, data]
                if (watch := self._watches.get(reply[2].decode())) is not None:
                    watch._deliver(reply[3])
            elif kind == b"psubscribe":
                await self._read_stored(before)
                self._established = True
                for watch in self._watches.values():
                    watch._active.set()

    async def _read_stored(self, keys: list[str]) -> None:
        """After a (re)connect: what was stored for the watched jobs while unsubscribed."""
        keys = [k for k in keys if k in self._watches]
        if not keys:
            return
        # redis-py types replies as bytes | str (for decode_responses=True); this client leaves it off.
        stored = cast(list[bytes | None], await self.redis.mget(keys))
        for key, raw in zip(keys, stored, strict=True):
            if raw is not None and (watch := self._watches.get(key)) is not None:
                watch._deliver(raw)

    def _fail_all(self, error: Unavailable) -> None:
        for watch in self._watches.values():
            watch._fail(error)
