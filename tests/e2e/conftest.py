"""The real stack, started once for the e2e tests: redis-server, a worker process holding
the tiny `digits` and `faces` checkpoints, and uvicorn serving the API."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.utils.api_process import running_api
from tests.utils.checkpoints import make_model_dir
from tests.utils.redis_server import running_redis
from tests.utils.worker_process import running_worker

REPO = Path(__file__).resolve().parents[2]

# Small limits, so that the e2e bad-input tests cross them with small bodies; digits is the
# default the route tests expect when they name no model (the page tests run the product's).
API_SETTINGS = dict(
    max_upload_bytes=128 * 1024, max_request_bytes=512 * 1024, max_pixels=1_000_000,
    job_timeout_s=20, default_model="digits",
)  # fmt: skip


def with_shipped_examples(model_dir: Path) -> Path:
    """The served models' examples/ (held-out images, 32 px) beside the test checkpoints."""
    for examples in sorted(REPO.glob("models/*/examples")):
        if (model_dir / examples.parent.name).is_dir():
            shutil.copytree(examples, model_dir / examples.parent.name / "examples")
    return model_dir


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    model_dir = with_shipped_examples(make_model_dir(root / "models"))
    with (
        running_redis(root) as redis,
        running_worker(redis.url, model_dir, root) as worker,
        running_api(redis.url, root, model_dir=model_dir, **API_SETTINGS) as api,
    ):
        yield {"redis": redis, "worker": worker, "api": api, "models": model_dir}


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack["api"].url, timeout=30) as client:
        yield client
