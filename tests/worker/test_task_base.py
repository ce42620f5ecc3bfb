"""The task base class alone: a job's place in the process (its gate) is held until its result
is stored (a success by the base class itself, a failure by Celery), so a poison job let in
next cannot kill the process before that result is written. Celery's real tracer runs the
tasks (eagerly, failures stored in memory); the runtime is a fake that records when the gate
is taken and released and what was stored."""

from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace

import pytest
from celery import Celery
from celery.exceptions import Ignore

import worker.tasks
from contract.errors import JobError
from worker.tasks import ModelTask


class FakeJobs:
    def __init__(self, events: list[str]):
        self.events = events
        self.stored: dict[str, object] = {}

    def first_start(self, job_id: str) -> bool:
        return True

    @contextlib.contextmanager
    def gate(self, *, alone: bool):
        self.events.append("gate taken")
        try:
            yield
        finally:
            self.events.append("gate released")

    def admitted(self, job_id: str, *, started_before: bool) -> int:
        return 1

    def store_success(self, job_id: str, result: object) -> None:
        self.events.append("stored SUCCESS")
        self.stored[job_id] = result

    @contextlib.contextmanager
    def running(self, job_id: str):
        yield time.monotonic() + 10


@pytest.fixture
def runtime(monkeypatch):
    runtime = SimpleNamespace(jobs=FakeJobs([]))
    monkeypatch.setattr(worker.tasks, "get_runtime", lambda: runtime)
    return runtime


@pytest.fixture
def events(runtime):
    return runtime.jobs.events


@pytest.fixture
def app(events):
    app = Celery("base-test", set_as_current=False)
    app.conf.update(result_backend="cache+memory://", task_store_eager_result=True)
    backend = app.backend
    store = backend.store_result

    def recording_store(task_id, result, state, *args, **kwargs):
        events.append(f"stored {state}")
        return store(task_id, result, state, *args, **kwargs)

    backend.store_result = recording_store
    return app


def test_the_gate_is_released_only_after_the_result_is_stored(app, events, runtime):
    @app.task(base=ModelTask, bind=True, name="base_test.ok")
    def ok(self, job):
        events.append("ran")
        return {"ok": True}

    result = ok.apply()
    assert runtime.jobs.stored == {result.id: {"ok": True}}
    assert result.get() is None  # Celery's tracer does not see (or log) the result
    assert events == ["gate taken", "ran", "stored SUCCESS", "gate released"]


def test_a_failed_job_keeps_the_gate_until_its_failure_is_stored(app, events):
    @app.task(base=ModelTask, bind=True, name="base_test.fails")
    def fails(self, job):
        events.append("ran")
        raise RuntimeError("boom")

    result = fails.apply()
    assert isinstance(result.result, JobError)  # an internal error, told in one line
    assert events == ["gate taken", "ran", "stored FAILURE", "gate released"]


def test_a_skipped_job_releases_the_gate(app, events):
    @app.task(base=ModelTask, bind=True, name="base_test.skipped")
    def skipped(self, job):
        events.append("ran")
        raise Ignore()

    skipped.apply()
    assert events == ["gate taken", "ran", "gate released"]
    skipped.apply()  # and the next job takes it again
    assert events.count("gate taken") == 2 and events[-1] == "gate released"


def test_called_as_a_function_the_gate_is_a_plain_scope(app, events):
    @app.task(base=ModelTask, bind=True, name="base_test.direct")
    def direct(self, job):
        events.append("ran")
        return 1

    assert direct() == 1
    assert events == ["gate taken", "ran", "gate released"]


class StartedBefore(FakeJobs):
    """A redelivered job: its first start was counted by the process that died under it."""

    def first_start(self, job_id: str) -> bool:
        self.events.append("counted? no")
        return False

    @contextlib.contextmanager
    def gate(self, *, alone: bool):
        self.events.append(f"gate taken{' alone' if alone else ''}")
        try:
            yield
        finally:
            self.events.append(f"gate released{' alone' if alone else ''}")

    def admitted(self, job_id: str, *, started_before: bool) -> int:
        self.events.append(f"admitted, started before: {started_before}")
        return 2


def test_a_job_started_before_gives_up_its_place_and_runs_alone(app, events, monkeypatch):
    runtime = SimpleNamespace(jobs=StartedBefore(events))
    monkeypatch.setattr(worker.tasks, "get_runtime", lambda: runtime)

    @app.task(base=ModelTask, bind=True, name="base_test.again")
    def again(self, job):
        events.append("ran")
        return 1

    result = again.apply()
    assert runtime.jobs.stored == {result.id: 1}
    assert events == [
        "gate taken", "counted? no", "gate released",
        "gate taken alone", "admitted, started before: True", "ran", "stored SUCCESS",
        "gate released alone",
    ]  # fmt: skip
