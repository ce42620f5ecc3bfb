"""Where Redis is: one URL that the API and the workers read alike, in either of two forms.

    redis://[:password@]host:port/db                     one Redis
    sentinel://[:password@]host:port/db;sentinel://host:port;...
                                                          Sentinels, which name the primary

The second is Celery's and kombu's own form for a Sentinel-managed Redis: each part names one
Sentinel; the password and database of the first part are the primary's (Sentinels are asked
without a password). With it goes the name under which the Sentinels monitor the primary
(`redis_master_name` in both settings classes). Every connection, Celery's included, asks the
Sentinels for the primary when it connects, so after a failover a reconnect finds the new one.

    client = sync_client(url, master_name, socket_timeout=5)   # redis.Redis either way
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "sentinel"
SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: list[tuple[str, int]]
    db: int
    username: str | None
    password: str | None


def is_sentinel(url: str) -> bool:
    return url.strip().lower().startswith(f"{SENTINEL_SCHEME}://")


def parse_sentinel_url(url: str) -> SentinelUrl:
    """ValueError, saying what is wrong, for anything but `sentinel://host:port[/db]` parts."""
    parts = [p.strip() for p in url.split(";") if p.strip()]
    if not parts:
        raise ValueError("empty Redis URL")
    sentinels: list[tuple[str, int]] = []
    first = None
    for part in parts:
        split = urlsplit(part)
        if split.scheme.lower() != SENTINEL_SCHEME:
            raise ValueError(
                f"every part of a Sentinel URL must be sentinel://host:port, got {part!r}"
            )
        if not split.hostname:
            raise ValueError(f"no host in {part!r}")
        try:
            port = split.port or SENTINEL_PORT
        except ValueError:
            raise ValueError(f"bad port in {part!r}") from None
        sentinels.append((split.hostname, port))
        first = first or split
    assert first is not None
    path = first.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the database must be a number, got {path!r}")
    return SentinelUrl(
        sentinels=sentinels,
        db=int(path or 0),
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
    )


def check_url(url: str, master_name: str) -> str:
    """The URL, if it is one of the two forms (and a Sentinel URL has a primary's name)."""
    if is_sentinel(url):
        parse_sentinel_url(url)
        if not master_name.strip():
            raise ValueError("a sentinel:// Redis URL needs the primary's name (master_name)")
        return url
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"the Redis URL must be redis://... or sentinel://..., got {url!r}")
    return url


def sentinel_for(url: str, sentinel_class: type = Sentinel, **kwargs) -> tuple[Sentinel, dict]:
    """A redis-py Sentinel (or `sentinel_class`, the asyncio one) for a Sentinel URL, and the
    keyword arguments for its `master_for`. `kwargs` are the primary's connection options;
    the Sentinels get its socket options only."""
    parsed = parse_sentinel_url(url)
    sentinel = sentinel_class(
        parsed.sentinels,
        sentinel_kwargs={k: v for k, v in kwargs.items() if k.startswith("socket_")},
        **kwargs,
    )
    master = {"db": parsed.db, "username": parsed.username, "password": parsed.password}
    return sentinel, master


def sync_client(url: str, master_name: str, **kwargs) -> redis.Redis:
    """A client of the primary: `redis.Redis.from_url` for one Redis; for Sentinels, one
    whose connections ask them where the primary is."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **kwargs)
    sentinel, master = sentinel_for(url, **kwargs)
    return sentinel.master_for(master_name, redis_class=redis.Redis, **master)
