"""SIGTERM (warm shutdown) while jobs run: they finish, the rest wait for the next worker."""

from __future__ import annotations

import signal

import pytest
from celery import states

from tests.resilience.conftest import API, WORKER
from tests.utils.faults import FaultTask, succeeded_lines, wait_for
from tests.utils.stack import running_stack
from tests.utils.worker_process import running_worker

pytestmark = pytest.mark.slow  # real processes and fault timeouts: seconds per test


def test_warm_shutdown_mid_job_finishes_it_and_the_next_worker_takes_the_rest(model_dir, tmp_path):
    settings = dict(WORKER, concurrency=2)
    with running_stack(tmp_path, model_dir, worker=None, api=API) as stack:
        r = stack.client()
        with running_worker(stack.redis.url, model_dir, tmp_path, **settings) as first:
            hold = stack.sender.send_task(str(FaultTask.SLEEP), kwargs={"seconds": 2.0})
            wait_for(lambda: hold.state == states.STARTED, 20, "the slow job did not start")
            jobs = [stack.submit(i) for i in range(5)]
            # Both slots busy: the slow job and a transfer waiting for the device behind it.
            wait_for(lambda: r.hlen("unacked") >= 2, 20, "the worker did not take a transfer")
            first.process.send_signal(signal.SIGTERM)
            assert first.process.wait(30) == 0  # after its running jobs, not before
        assert hold.get(timeout=5) == {"slept": 2.0}
        ran_first = [j for j in jobs if succeeded_lines(first.log(), j)]
        assert ran_first, "the transfer running at SIGTERM did not finish"
        assert r.hlen("unacked") == 0  # nothing left taken by the stopped worker

        with running_worker(stack.redis.url, model_dir, tmp_path, **settings) as second:
            answers = stack.answers(jobs, 30)
        assert all(a["status"] == "succeeded" for a in answers.values()), answers
        for job_id in jobs:
            runs = succeeded_lines(first.log(), job_id) + succeeded_lines(second.log(), job_id)
            assert runs == 1, job_id
