"""One result subscription per API process, shared by every request that waits for a job.

Celery's Redis backend publishes each state it stores on a channel named after the result key.
A connection and subscription of its own per waiting request (connect, SUBSCRIBE, GET,
UNSUBSCRIBE, close) costs about a millisecond of the API's CPU per request. Here one connection
per process stays subscribed, and each wait adds its job's channel to it and removes it after:

    async with listener.watch(key) as watch:
        await watch.subscribed()     # in force from here: send the job only now
        ...                          # queue the job
        raws = await watch.next(timeout)

A job is queued only once its channel is subscribed, so its result cannot be published unseen:
no read of the result key is needed. When the connection is lost, the listener reconnects at
once, subscribes every channel still watched, then reads their result keys (a result stored
while it was away was published to nobody) and hands over what it finds. If Redis cannot be
reached, every wait ends with 503, as any other Redis call would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from service.core.errors import OUTAGES, Unavailable

log = logging.getLogger(__name__)

# Always subscribed, published to by nobody: the connection stays in subscriber mode between
# jobs, and its confirmation, which follows those of a batch of channels, says they are in force.
CONTROL_CHANNEL = "srbvae:api:results"
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
        self._established = False  # this connection's first subscriptions are in force
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
            conn = self._conn
            if conn is None:
                self._wanted.set()  # the listener subscribes it when it (re)connects
            else:
                with contextlib.suppress(*OUTAGES):  # the listener notices and resubscribes
                    await conn.send_command("SUBSCRIBE", key, check_health=False)
            yield watch
        finally:
            del self._watches[key]
            conn = self._conn
            if conn is not None and conn.is_connected:
                with contextlib.suppress(*OUTAGES):
                    await conn.send_command("UNSUBSCRIBE", key, check_health=False)

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
                if self._established and isinstance(exc, OUTAGES):
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
        # From here on, new watches send their own SUBSCRIBE; those registered before are
        # subscribed now, in one command, and their keys read once all are in force.
        self._conn = conn
        before = list(self._watches)
        await conn.send_command("SUBSCRIBE", *before, CONTROL_CHANNEL, check_health=False)
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
            kind, channel = reply[0], reply[1]
            if kind == b"message":
                if (watch := self._watches.get(channel.decode())) is not None:
                    watch._deliver(reply[2])
            elif kind == b"subscribe":
                name = channel.decode()
                if name == CONTROL_CHANNEL:
                    await self._read_stored(before)
                    self._established = True
                elif (watch := self._watches.get(name)) is not None:
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
