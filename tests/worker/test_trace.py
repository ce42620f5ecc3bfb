"""Timestamps for bench/request_timeline.py (worker/trace.py): marks are made only with
tracing on."""

from __future__ import annotations

import json

import pytest
import torch

from contract.tasks import TRACE_FIELD
from worker import trace
from worker.batcher import Batcher
from worker.tracker import JobTracker


@pytest.fixture
def tracing(monkeypatch):
    monkeypatch.setattr(trace, "ENABLED", True)
    monkeypatch.setattr(trace, "_marks", {})


def test_nothing_is_noted_with_tracing_off(monkeypatch):
    monkeypatch.setattr(trace, "ENABLED", False)
    monkeypatch.setattr(trace, "_marks", {})
    trace.read_started()
    trace.received("job")
    trace.mark("job", "w_task_start")
    assert trace.take("job") is None and trace._marks == {}


def test_a_jobs_marks_are_noted_once_and_taken_once(tracing):
    trace.read_started()
    trace.received("job")
    trace.mark("job", "w_task_start", 123)
    marks = trace.take("job")
    assert marks is not None and set(marks) == {"w_read", "w_received", "w_task_start"}
    assert marks["w_read"] <= marks["w_received"] and marks["w_task_start"] == 123
    assert trace.take("job") is None  # forgotten
    trace.received("next")  # the read was the previous job's: not noted again
    assert set(trace.take("next") or {}) == {"w_received"}


def test_the_device_thread_marks_each_passes_start_and_end(tracing):
    b = Batcher(max_rows=8, wait_s=0.0).start()
    try:
        with b.job():
            b.wait(b.submit(("m", "encode"), lambda x: (x,), [torch.ones(2, 1)], "job"), 5)
    finally:
        b.stop()
    marks = trace.take("job")
    assert marks is not None and marks["w_encode_start"] <= marks["w_encode_end"]


class Pipe:
    def __init__(self, sent: list):
        self.sent = sent

    def set(self, key, value, ex):
        self.sent.append(("SET", key, value))

    def publish(self, key, value):
        self.sent.append(("PUBLISH", key, value))

    def execute(self):
        return [True, 1]


class Redis:
    def __init__(self):
        self.sent: list = []

    def pipeline(self):
        return Pipe(self.sent)


def tracker(redis) -> JobTracker:
    return JobTracker(
        redis, soft_limit=1, hard_limit=2, max_deliveries=3, counter_ttl=10, result_expires=10,
        result_key=lambda j: f"celery-task-meta-{j}", store_result=lambda *a: None,
        batcher=Batcher(max_rows=1, wait_s=0),
    )  # fmt: skip


@pytest.mark.parametrize("on", [False, True])
def test_a_stored_result_carries_the_marks_only_with_tracing_on(monkeypatch, on):
    monkeypatch.setattr(trace, "ENABLED", on)
    monkeypatch.setattr(trace, "_marks", {})
    trace.mark("job", "w_task_end", 5)
    redis = Redis()
    tracker(redis).store_success("job", {"images": []})
    stored = json.loads(redis.sent[0][2])
    assert stored["status"] == "SUCCESS" and stored["result"] == {"images": []}
    if on:
        assert stored[TRACE_FIELD] == {"w_task_end": 5}
    else:
        assert TRACE_FIELD not in stored
