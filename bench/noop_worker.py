"""A Celery worker with the service worker's Celery settings (`worker.app.celery_config`:
threads pool, late acknowledgement, Redis broker and backend, kombu's transport as the worker
patches it) and tasks that do nothing: the floor of a job's round trip through Celery, for
bench/request_timeline.py.

    SRBVAE_WORKER_REDIS_URL=redis://127.0.0.1:6379/1 python -m bench.noop_worker

- `bench.noop`: returns None; Celery's Redis backend stores the result (a read of the key,
  then SET and PUBLISH), as for any Celery task.
- `bench.noop_stored`: stores its result itself in one MULTI (SET with expiry and PUBLISH),
  as the service's tasks do (worker/tracker.py `store_success`).

No model is loaded: the service worker's start-up and shutdown hooks are disconnected.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from functools import cache

import redis
from celery import Celery, signals

import worker.app as service_worker
from contract.tasks import QUEUE
from worker.settings import get_settings

NOOP = "bench.noop"
NOOP_STORED = "bench.noop_stored"

signals.worker_init.disconnect(service_worker._on_worker_init)
signals.worker_shutdown.disconnect(service_worker._on_worker_shutdown)

app = Celery("bench-noop")
app.add_defaults(lambda: service_worker.celery_config(get_settings()))


@signals.worker_init.connect
def _quiet_receipts(**_) -> None:
    # As the service worker: no log line per message received.
    logging.getLogger("celery.worker.strategy").setLevel(logging.WARNING)


@app.task(name=NOOP)
def noop(**_) -> None:
    return None


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url)


@app.task(name=NOOP_STORED, bind=True, ignore_result=True)
def noop_stored(self, **_) -> None:
    job_id = self.request.id
    meta = {"status": "SUCCESS", "result": None, "traceback": None, "children": [],
            "date_done": datetime.now(UTC).isoformat(), "task_id": job_id}  # fmt: skip
    key, value = app.backend.get_key_for_task(job_id), json.dumps(meta)
    pipe = _client().pipeline()
    pipe.set(key, value, ex=get_settings().result_expires)
    pipe.publish(key, value)
    pipe.execute()


def argv() -> list[str]:
    """The service worker's `celery worker` options (worker/process.py)."""
    s = get_settings()
    return ["worker", f"--pool={s.pool}", f"--concurrency={s.concurrency}", f"--queues={QUEUE}",
            f"--loglevel={s.loglevel}", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--hostname=bench-noop@%h"]  # fmt: skip


if __name__ == "__main__":
    app.worker_main(argv() + sys.argv[1:])
