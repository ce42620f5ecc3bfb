"""Redis at its memory limit (maxmemory, noeviction), and results that expire: memory does
not grow with the number of jobs served."""

from __future__ import annotations

import time

import pytest
import redis
from celery import states

from contract.tasks import DELIVERIES_PREFIX, QUEUE
from service.core.journal import JOURNAL_KEY
from tests.resilience.conftest import API, WORKER
from tests.utils.faults import FaultTask, assert_all_succeeded, wait_for
from tests.utils.stack import running_stack

pytestmark = pytest.mark.slow  # real processes and fault timeouts: seconds per test

HOLD_S = 4.0  # the worker is busy this long while Redis is full, so it stores nothing then
JOB_PREFIXES = ("celery-task-meta-", "srbvae:api:job:", "srbvae:api:payload:")


def job_keys(r: redis.Redis) -> list[bytes]:
    """Results, job records, payloads and the journal: what each job adds for a while."""
    keys = [k for p in JOB_PREFIXES for k in r.scan_iter(match=f"{p}*")]
    return keys + ([JOURNAL_KEY.encode()] if r.exists(JOURNAL_KEY) else [])


def fill(r: redis.Redis, target: int, start: int = 0) -> int:
    """Writes 64 kB keys until Redis uses `target` bytes, or refuses; returns the next index."""
    i = start
    while int(r.info("memory")["used_memory"]) < target:
        try:
            r.set(f"filler:{i}", b"x" * 65536)
        except redis.exceptions.OutOfMemoryError:
            break
        i += 1
    return i


def test_full_redis_refuses_new_jobs_with_503_and_evicts_no_queued_job(model_dir, tmp_path):
    worker = dict(WORKER, soft_time_limit=8, hard_time_limit=9, visibility_timeout=12,
                  concurrency=1)  # fmt: skip
    redis_args = ("--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
    with running_stack(tmp_path, model_dir, worker=worker, api=API, redis_args=redis_args) as stack:
        r = stack.client()
        hold = stack.sender.send_task(str(FaultTask.SLEEP), kwargs={"seconds": HOLD_S})
        wait_for(lambda: hold.state == states.STARTED, 20, "the slow job did not start")
        held_since = time.monotonic()
        accepted = [stack.submit(i) for i in range(3)]  # queued behind the slow job
        queued = r.lrange(QUEUE, 0, -1)
        assert len(queued) == 3
        limit = int(r.info("memory")["maxmemory"])

        n = fill(r, int(0.92 * limit))  # past the API's 90 %, below Redis's own limit
        start = time.monotonic()
        refused = stack.submit_raw(9)
        assert refused.status_code == 503 and "nearly full" in refused.json()["detail"]
        assert time.monotonic() - start < 1.0
        n = fill(r, 2 * limit, n)  # up to Redis's limit: now Redis refuses writes itself
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            r.set("one-more", b"x" * 65536)
        assert stack.submit_raw(10).status_code == 503
        assert r.lrange(QUEUE, 0, -1) == queued  # noeviction: every queued job is still there
        assert int(r.info("stats")["evicted_keys"]) == 0
        assert time.monotonic() - held_since < HOLD_S, "too slow: the worker met a full Redis"

        r.delete(*(f"filler:{i}" for i in range(n)))
        assert_all_succeeded(stack.answers(accepted, 30))
        assert_all_succeeded(stack.answers([stack.submit(11)], 30))


def test_results_expire_and_memory_plateaus_over_rounds_of_jobs(model_dir, tmp_path):
    ttl = 3
    worker = dict(WORKER, concurrency=2, result_expires=ttl)
    api = dict(API, result_ttl_s=ttl, resend_after_s=1)
    with running_stack(tmp_path, model_dir, worker=worker, api=api) as stack:
        r = stack.client()
        memory, permanent = [], []
        for round_ in range(3):
            jobs = [stack.submit(8 * round_ + i) for i in range(8)]
            assert_all_succeeded(stack.answers(jobs, 20))
            for job_id in jobs:  # everything a job wrote expires
                for key in [p + job_id for p in (*JOB_PREFIXES, DELIVERIES_PREFIX)]:
                    assert r.ttl(key) != -1, key  # -2: already gone, fine
            wait_for(lambda: not job_keys(r), 20, "results or journal entries did not expire")
            # What Redis stores, without its per-connection buffers: the stack's connection
            # pools grow and shrink between rounds, and that is not a leak.
            memory.append(int(r.info("memory")["used_memory_dataset"]))
            permanent.append({k for k in r.scan_iter() if r.ttl(k) == -1})
        assert permanent[-1] == permanent[0]  # no key without a TTL appeared
        assert memory[-1] <= memory[0] + 64 * 1024, memory
