"""kombu's Redis transport, fixed so that losing Redis with jobs in flight does not stop the
worker.

kombu 5.7 closes a broken connection twice (Celery's consumer collects it, then closes it),
and the first close drops the transport's connection parameters. Two things then fail with
AttributeError, which Celery treats as unrecoverable (the worker process exits, with status 0,
once its running jobs end): the second close, putting the channel's unacknowledged messages
back on the queue; and, once Redis is back, acknowledging the jobs that were running.

Here the channel keeps its parameters, so those jobs are acknowledged when they finish; and
a channel's close never puts back on the queue a job that is still running in this process
(kombu's does, at a lost connection, and the job then runs twice). Should this process die
first, the visibility timeout hands such a job out again. At a warm shutdown nothing runs any
more when the channel closes, so whatever it still holds goes back at once, as in kombu.
Selected with Celery's `broker_transport` (worker/app.py).

It also notes when a message was last delivered, for worker/stall.py, keeps one Redis client
per connection pool where kombu makes a new one for every command it sends outside the
consumer's own connection (recording each message as unacknowledged, and acknowledging it),
and writes that record with orjson.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import orjson
import redis
from celery.worker import state
from kombu.transport import TRANSPORT_ALIASES, _transport_cache
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual as kombu_virtual
from kombu.utils import json as kombu_json
from redis import sentinel as redis_sentinel

from worker import trace

log = logging.getLogger(__name__)

_last_delivery = 0.0  # time.monotonic() when this process last took a message off a queue


def last_delivery() -> float:
    """For worker/stall.py: when this process last received a job."""
    return _last_delivery


class QoS(kombu_redis.QoS):
    def append(self, message, delivery_tag):
        """kombu's record of a message as unacknowledged (the index's score, the message by
        its tag), with the message written by orjson: kombu's json module spends about 50 us
        per job of a group message on it, orjson a few (the images are long strings). kombu
        reads it back with its own json when it restores the message."""
        delivery = message.delivery_info
        entry = [message._raw, delivery["exchange"], delivery["routing_key"]]
        try:
            record = orjson.dumps(entry)
        except TypeError:  # a value orjson does not write; kombu's json may
            record = kombu_json.dumps(entry)
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()})
            pipe.hset(self.unacked_key, delivery_tag, record)
            pipe.execute()
            kombu_virtual.QoS.append(self, message, delivery_tag)

    def restore_unacked(self, client=None):
        """At a channel's close: puts back on the queue what it took and is not running."""
        running = {r.message.delivery_tag for r in list(state.active_requests)}
        running &= self._delivered.keys()
        if running:
            log.warning(
                "closing the connection to Redis with %d job(s) running; they are acknowledged "
                "when they finish, or handed out again after the visibility timeout",
                len(running),
            )
        transport = self.channel.connection
        if client is None and (transport is None or transport.client is None):
            return  # the parameters are gone (see above); the visibility timeout restores
        with self.channel.conn_or_acquire(client) as client:
            for tag in self._delivered:
                if tag not in running:
                    self.restore_by_tag(tag, client=client)
        self._delivered.clear()


class Channel(kombu_redis.Channel):
    QoS = QoS
    _pool_client: redis.Redis | None = None

    @contextlib.contextmanager
    def conn_or_acquire(self, client=None) -> Iterator[redis.Redis]:
        """kombu's builds a redis.Redis on each call (twice per job: the unacknowledged record
        at receipt and the acknowledgement), and redis-py's constructor is a few percent of
        the worker's CPU. One client per pool serves them all: a redis-py client is
        thread-safe, each command taking a connection from the pool. A new pool (after a
        reconnect) gets a new client."""
        if client:
            yield client
            return
        pool = self.pool
        cached = self._pool_client
        if cached is None or cached.connection_pool is not pool:
            cached = self._pool_client = self._create_client()
        yield cached

    def _brpop_read(self, **options):
        global _last_delivery
        trace.read_started()
        delivered = super()._brpop_read(**options)  # raises Empty when nothing came
        _last_delivery = time.monotonic()
        return delivered

    def _connparams(self, asynchronous=False):
        saved = self.__dict__.setdefault("_saved_connparams", {})
        if self.connection is not None and self.connection.client is not None:
            saved[asynchronous] = super()._connparams(asynchronous=asynchronous)
        return dict(saved[asynchronous])


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """The same channel, connected to the primary that the Sentinels name (a sentinel:// URL);
    after a failover, the reconnect asks them again and finds the new primary.

    kombu's reads the Sentinels' addresses from the transport's connection each time it makes
    a pool, and a job finishing after a reconnect is acknowledged through the old channel,
    whose connection is gone: here they are kept, as the connection parameters are."""

    _sentinels: tuple[tuple[str | None, int | None], ...] = ()

    def _sentinel_managed_pool(self, asynchronous=False):
        transport = self.connection
        if transport is not None and transport.client is not None:
            self._sentinels = tuple(
                (url.hostname, url.port or transport.default_port)
                for url in map(urlsplit, transport.client.alt)
                if url.scheme == "sentinel"
            )
        params = {k: v for k, v in self._connparams(asynchronous).items()
                  if k not in ("host", "port")}  # fmt: skip
        sentinels = list(self._sentinels) or [(params.get("host"), params.get("port"))]
        manager = redis_sentinel.Sentinel(
            sentinels,
            min_other_sentinels=getattr(self, "min_other_sentinels", 0),
            sentinel_kwargs=getattr(self, "sentinel_kwargs", None),
            **params,
        )
        if asynchronous:
            self._async_sentinel_manager = manager  # closed with the channel's pools
        else:
            self._sentinel_manager = manager
        master = getattr(self, "master_name", None)
        if master is None:
            raise ValueError("'master_name' transport option must be specified.")
        login = {k: params[k] for k in ("username", "password") if k in params}
        return manager.master_for(master, redis.Redis, **login).connection_pool


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def use_for_sentinel_urls() -> None:
    """Makes sentinel:// name SentinelTransport in this process. A sentinel:// URL lists
    several Sentinels, and on losing its connection Celery moves on to the next one, with the
    transport its scheme names: kombu's own, which lacks the fixes above (the worker would exit
    at the reconnect after a failover)."""
    TRANSPORT_ALIASES["sentinel"] = f"{__name__}:SentinelTransport"
    _transport_cache.pop("sentinel", None)
