"""Announces this worker process and its models in Redis (see contract/registry.py), so the
API can answer /models and /readyz; refreshed by a heartbeat, deleted on a clean exit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from contract.registry import HEARTBEAT_SECONDS, TTL_SECONDS, WorkerInfo, worker_key

log = logging.getLogger(__name__)


class Announcer:
    def __init__(self, redis, info: WorkerInfo, consuming: Callable[[], bool]):
        self.redis = redis
        self.info = info
        self.consuming = consuming
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="announce", daemon=True)
        self._healthy = True

    def start(self) -> Announcer:
        self.beat()
        self._thread.start()
        return self

    def beat(self) -> None:
        self.info.heartbeat_at = time.time()
        self.info.consuming = self.consuming()
        try:
            self.redis.set(
                worker_key(self.info.worker_id), self.info.model_dump_json(), ex=TTL_SECONDS
            )
        except Exception as exc:  # noqa: BLE001 - Redis may be restarting; keep beating
            if self._healthy:
                log.warning("cannot announce worker in Redis: %s", exc)
            self._healthy = False
            return
        if not self._healthy:
            log.info("announcing worker in Redis again")
        self._healthy = True

    def stop(self) -> None:
        self._stop.set()
        try:
            self.redis.delete(worker_key(self.info.worker_id))
        except Exception as exc:  # noqa: BLE001 - the key expires on its own
            log.warning("cannot withdraw worker from Redis: %s", exc)

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.beat()
