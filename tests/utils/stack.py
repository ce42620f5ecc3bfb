"""The whole stack as real processes (redis-server, `python -m worker`, uvicorn), and a client
that submits jobs the way users do (`POST /transfer?async=true`) and reads their answers
(`GET /jobs/{id}`).

    with running_stack(tmp, model_dir, worker=dict(soft_time_limit=3), api={}) as stack:
        job_id = stack.submit()
        answers = stack.answers([job_id], timeout=30)   # every job ends, or the test fails

`worker=None` starts no worker (start them with tests.utils.worker_process). `stack.sender` is
a Celery client for what the API does not offer (the fault tasks).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
from celery import Celery

from tests.utils import images
from tests.utils.api_process import ApiProcess, running_api
from tests.utils.redis_server import RedisServer, running_redis
from tests.utils.worker_process import WorkerProcess, celery_client, running_worker

FINAL = ("succeeded", "failed")


@dataclass
class Stack:
    redis: RedisServer
    worker: WorkerProcess | None
    api: ApiProcess
    http: httpx.Client
    sender: Celery

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url)

    def submit_raw(self, seed: int = 0) -> httpx.Response:
        """`POST /transfer?async=true` with two small images that differ by seed."""
        image = images.png((32, 32), ((seed * 37) % 256, 90, 200))
        attributes = images.png((32, 32), (20, (seed * 91) % 256, 60))
        return self.http.post(
            "/transfer?async=true",
            files={"image": ("a.png", image), "attributes": ("b.png", attributes)},
        )

    def submit(self, seed: int = 0) -> str:
        """An accepted asynchronous transfer (202); its job id."""
        answer = self.submit_raw(seed)
        assert answer.status_code == 202, (answer.status_code, answer.text)
        return answer.json()["job_id"]

    def answers(self, job_ids: list[str], timeout: float) -> dict[str, dict]:
        """Polls `GET /jobs/{id}` until every job has ended; fails if one is unknown (lost, or
        its record expired) or has not ended in time. 503s (an outage) are waited out."""
        done: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while True:
            for job_id in job_ids:
                if job_id in done:
                    continue
                with contextlib.suppress(httpx.TransportError):
                    answer = self.http.get(f"/jobs/{job_id}")
                    assert answer.status_code != 404, f"job {job_id} is unknown: lost"
                    if answer.status_code == 200 and answer.json()["status"] in FINAL:
                        done[job_id] = answer.json()
            if len(done) == len(job_ids):
                return done
            if time.monotonic() > deadline:
                missing = sorted(set(job_ids) - set(done))
                raise TimeoutError(f"{len(missing)} job(s) did not end in {timeout} s: {missing}")
            time.sleep(0.05)


@contextlib.contextmanager
def running_stack(
    root: Path, model_dir: Path, *, worker: dict | None, api: dict, redis_args: tuple = ()
) -> Iterator[Stack]:
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(running_redis(root, *redis_args))
        process = None
        if worker is not None:
            process = stack.enter_context(running_worker(server.url, model_dir, root, **worker))
        api_process = stack.enter_context(running_api(server.url, root, **api))
        http = stack.enter_context(httpx.Client(base_url=api_process.url, timeout=30))
        sender = celery_client(server.url)
        stack.callback(sender.close)
        yield Stack(server, process, api_process, http, sender)
