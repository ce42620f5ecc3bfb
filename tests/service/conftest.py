from __future__ import annotations

import base64
import io
import math

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from contract.tasks import RAW_RGB_PREFIX
from service.api.deps import get_jobs, get_workers
from service.core.config import Settings
from service.main import create_app
from tests.service.fakes import FakeJobs, FakeWorkers
from tests.utils import images
from tests.utils.redis_server import running_redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A real redis-server per test module (test_results.py keeps one per test)."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def small_settings(**overrides) -> Settings:
    """Limits small enough to cross in a test without large buffers."""
    values = dict(
        redis_url="redis://127.0.0.1:1/0",  # nothing listens: any real Redis use fails fast
        default_model="digits",  # the model FakeWorkers holds
        max_upload_bytes=256 * 1024,
        max_request_bytes=600 * 1024,
        max_pixels=1_000_000,
        job_timeout_s=2.0,
        redis_timeout_s=0.5,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


@pytest.fixture
def workers() -> FakeWorkers:
    return FakeWorkers()


@pytest.fixture
def settings() -> Settings:
    return small_settings()


@pytest.fixture
def client(settings, jobs, workers):
    app = create_app(settings)
    app.dependency_overrides[get_jobs] = lambda: jobs
    app.dependency_overrides[get_workers] = lambda: workers
    with TestClient(app) as c:
        yield c


@pytest.fixture
def png():
    return images.png()


JSON = {"Accept": "application/json"}


def decode_b64(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


def sent_image(jobs: FakeJobs, field: str = "image") -> Image.Image:
    """The picture the route queued for the worker (raw RGB pixels, contract.tasks.ImageB64)."""
    _, payload = jobs.sent[-1]
    data = getattr(payload, field)
    assert data.startswith(RAW_RGB_PREFIX)
    pixels = base64.b64decode(data[len(RAW_RGB_PREFIX) :])
    side = math.isqrt(len(pixels) // 3)
    return Image.frombytes("RGB", (side, side), pixels)
