"""A real Redis and a real worker process (`python -m worker`), shared by a test module."""

from __future__ import annotations

import base64
import contextlib
import io

import numpy as np
import pytest
from PIL import Image

from model import load_model
from tests.utils.checkpoints import make_model_dir
from tests.utils.redis_server import running_redis
from tests.utils.worker_process import celery_client, running_worker

RESOLUTION = 32  # of the test checkpoints


def png_b64(array: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def random_png(seed: int, size: int = RESOLUTION) -> str:
    rng = np.random.default_rng(seed)
    return png_b64(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def decode(b64: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(b64)), formats=["PNG"]) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def assert_same_images(got: list[str], want: list[Image.Image]) -> None:
    """Equal up to one grey level: a batch's composition moves float rounding (~1e-6)."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        diff = np.abs(decode(g) - np.asarray(w, dtype=np.int16))
        assert diff.max() <= 1, f"images differ by up to {diff.max()} levels"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def models(model_dir):
    """The same checkpoints loaded in-process: what the worker's answers must equal."""
    return {name: load_model(model_dir / name) for name in ("digits", "faces")}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def client(redis_server):
    app = celery_client(redis_server.url)
    yield app
    app.close()


@pytest.fixture(scope="module")
def worker(redis_server, model_dir, tmp_path_factory):
    with running_worker(
        redis_server.url,
        model_dir,
        tmp_path_factory.mktemp("worker-log"),
        soft_time_limit=20,
        hard_time_limit=30,
        visibility_timeout=60,
        concurrency=8,
        torch_threads=1,
    ) as w:
        yield w


@contextlib.contextmanager
def fault_worker(redis_url: str, model_dir, log_dir):
    """A worker with the fault tasks loaded, short time limits and a redelivery cap of 2: the
    fault tests' and the group tests'."""
    with running_worker(
        redis_url,
        model_dir,
        log_dir,
        soft_time_limit=3,
        hard_time_limit=4.5,
        visibility_timeout=6,
        restore_interval=0.5,
        max_deliveries=2,
        concurrency=4,
        torch_threads=1,
        fault_tasks=True,
    ) as w:
        yield w
