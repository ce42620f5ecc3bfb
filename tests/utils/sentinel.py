"""A Sentinel-managed Redis as real processes on loopback: a primary, a replica of it, and
three Sentinels (`redis-server <conf> --sentinel`) that watch it under one name.

    with running_sentinels(tmp) as group:
        url = group.url                      # sentinel://127.0.0.1:p1;...;sentinel://...:p3/0
        group.primary_port()                 # the port the Sentinels name now
        group.kill(port)                     # SIGKILL a data node (no append-only flush)
        group.start(port)                    # the same node again: its Sentinels reconfigure it

Failure detection is quick for tests (down after 1 s); a production group keeps Redis's
defaults (docker/sentinel.sh).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from scripts.processes import Child, accepts_connections, free_port, redis_argv
from scripts.serve import find_redis_server

MASTER_NAME = "srbvae"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def _wait_listening(child: Child, port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not accepts_connections(port):
        if (rc := child.exited()) is not None:
            raise RuntimeError(f"{child.name} exited with {rc}:\n{child.log()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} did not listen on {port} within {timeout} s")
        time.sleep(0.05)


@dataclass
class SentinelGroup:
    root: Path
    nodes: dict[int, Child] = field(default_factory=dict)  # data nodes by port
    sentinels: dict[int, Child] = field(default_factory=dict)
    first_primary: int = 0

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{p}" for p in self.sentinels) + "/0"

    def _binary(self) -> str:
        return find_redis_server(install=False)

    def start(self, port: int, *extra: str) -> None:
        """Starts (or restarts) the data node on `port`, with its own directory."""
        directory = self.root / f"redis-{port}"
        directory.mkdir(exist_ok=True)
        argv = redis_argv(self._binary(), port, directory, *extra)
        child = Child(f"redis-{port}", argv, dict(os.environ), directory / "log", stop_timeout=5)
        child.start()
        self.nodes[port] = child
        _wait_listening(child, port)

    def kill(self, port: int) -> None:
        """SIGKILL: the host is gone, with whatever it had not yet replicated."""
        child = self.nodes.pop(port)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
        child.stop()

    def start_sentinel(self, primary: int) -> None:
        port = free_port()
        directory = self.root / f"sentinel-{port}"
        directory.mkdir()
        conf = directory / "sentinel.conf"  # Sentinel rewrites it with what it learns
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
        )
        argv = [self._binary(), str(conf), "--sentinel"]
        child = Child(f"sentinel-{port}", argv, dict(os.environ), directory / "log", 5)
        child.start()
        self.sentinels[port] = child
        _wait_listening(child, port)

    def sentinel_client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2, decode_responses=True)

    def primary_port(self) -> int | None:
        """The primary's port as most Sentinels name it now (None without a majority)."""
        votes: dict[int, int] = {}
        for port in self.sentinels:
            with contextlib.suppress(redis.RedisError):
                reply = self.sentinel_client(port).sentinel_get_master_addr_by_name(MASTER_NAME)
                if reply:
                    votes[int(reply[1])] = votes.get(int(reply[1]), 0) + 1
        best = max(votes.items(), key=lambda kv: kv[1], default=None)
        return best[0] if best and best[1] >= 2 else None

    def failovers(self) -> int:
        """How many failovers the group has made: the highest configuration epoch a Sentinel
        reports (each failover's leader takes a new one; the group starts at 0)."""
        epochs = [0]
        for port in self.sentinels:
            with contextlib.suppress(redis.RedisError):
                epochs.append(
                    int(self.sentinel_client(port).sentinel_master(MASTER_NAME)["config-epoch"])
                )
        return max(epochs)

    def wait_settled(self, primary: int, replicas: int, timeout: float = 30) -> None:
        """Until every Sentinel names `primary`, knows `replicas` replicas of it in sync and
        the two other Sentinels (a failover needs their votes)."""
        deadline = time.monotonic() + timeout
        while True:
            ready = 0
            for port in self.sentinels:
                with contextlib.suppress(redis.RedisError):
                    s = self.sentinel_client(port)
                    addr = s.sentinel_get_master_addr_by_name(MASTER_NAME)
                    known = s.sentinel_slaves(MASTER_NAME)
                    peers = s.sentinel_sentinels(MASTER_NAME)
                    synced = [r for r in known if "s_down" not in r["flags"]
                              and r.get("master-link-status") == "ok"]  # fmt: skip
                    if (addr and int(addr[1]) == primary and len(synced) >= replicas
                            and len(peers) >= len(self.sentinels) - 1):  # fmt: skip
                        ready += 1
            if ready == len(self.sentinels):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Sentinels did not settle on {primary} in {timeout} s")
            time.sleep(0.2)

    def stop(self) -> None:
        for child in [*self.sentinels.values(), *self.nodes.values()]:
            child.stop()
        self.sentinels.clear()
        self.nodes.clear()


@contextlib.contextmanager
def running_sentinels(root: Path) -> Iterator[SentinelGroup]:
    """A primary, one replica of it, and three Sentinels that agree on both."""
    group = SentinelGroup(root)
    try:
        primary, replica = free_port(), free_port()
        group.start(primary)
        group.start(replica, "--replicaof", "127.0.0.1", str(primary))
        group.first_primary = primary
        for _ in range(3):
            group.start_sentinel(primary)
        group.wait_settled(primary, replicas=1)
        yield group
    finally:
        group.stop()
