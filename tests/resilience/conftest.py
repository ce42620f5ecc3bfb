"""Faults through the whole stack: real redis-server, worker processes and uvicorn. Every
test accepts jobs through the API (`POST /transfer?async=true`) and asserts that each one is
answered (`GET /jobs/{id}`): none is lost.

Limits are short so that timeouts and redeliveries happen within seconds; the journal
(service/core/journal.py) looks for lost jobs after 3 s and sends them again 4 s later."""

from __future__ import annotations

import pytest

from tests.utils.checkpoints import make_model_dir

# soft < hard < visibility, as the settings require; the fault tasks hold or kill a worker.
WORKER = dict(
    soft_time_limit=3, hard_time_limit=4.5, visibility_timeout=6, restore_interval=0.5,
    torch_threads=1, fault_tasks=True,
)  # fmt: skip
API = dict(
    redis_timeout_s=1, job_timeout_s=20, resend_after_s=3, journal_confirm_s=4, journal_sweep_s=0.5,
)  # fmt: skip


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("models"))
