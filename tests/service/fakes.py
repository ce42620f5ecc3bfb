"""Stand-ins for the two things the routes talk to, for unit tests of the routes alone: the
job queue (answers at once, echoing the images it was sent) and the live workers."""

from __future__ import annotations

import base64
import contextlib
import io
import math
import time
import uuid

from PIL import Image
from pydantic import BaseModel

from contract.registry import ModelInfo, WorkerInfo
from contract.tasks import (
    PHOTO_REF_PREFIX,
    RAW_RGB_PREFIX,
    DomainCheck,
    EncodeResult,
    ImagesResult,
    TaskName,
)
from service.core.groups import Arrival, GroupCommit
from service.core.jobs import JobError, JobRecord, JobState, JobWatch
from service.core.workers import LiveWorkers

SHA = "ab" * 32


def model_info(name: str = "digits", resolution: int = 32) -> ModelInfo:
    return ModelInfo(
        name=name, resolution=resolution, z_dim=8, e_dim=4, variant="srbvae", method="sRb-VAE",
        checkpoint_sha256=SHA, card={"data": {"source": "test"}, "metrics": {}},
    )  # fmt: skip


def worker_info(worker_id: str = "w1", models: dict[str, ModelInfo] | None = None) -> WorkerInfo:
    """A registry entry as a worker writes it, heartbeat now."""
    now = time.time()
    return WorkerInfo(worker_id=worker_id, hostname="test", pid=1, device="cpu",
                      models={"digits": model_info()} if models is None else models,
                      started_at=now, heartbeat_at=now)  # fmt: skip


class FakeWorkers(LiveWorkers):
    """One consuming worker holding `_models` (none: no worker), without Redis."""

    def __init__(self, models: dict[str, ModelInfo] | None = None) -> None:
        super().__init__(redis=None, cache_s=0, retry_after_s=5)
        self._models = {"digits": model_info()} if models is None else models

    async def workers(self) -> list[WorkerInfo]:
        if not self._models:
            return []
        return [worker_info("w1", self._models)]


def _as_png(image: str) -> str:
    """A payload image (raw pixels, as the routes send them) as the base64 PNG a worker
    answers with."""
    if not image.startswith(RAW_RGB_PREFIX):
        return image
    pixels = base64.b64decode(image[len(RAW_RGB_PREFIX) :])
    side = math.isqrt(len(pixels) // 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def _echo_photo(data: bytes) -> tuple[str, str]:
    media_type = "image/jpeg" if data.startswith(b"\xff\xd8") else "image/png"
    return base64.b64encode(data).decode(), media_type


def _blank(resolution: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (resolution, resolution), (5, 5, 5)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


class FakeJobs:
    """Records every payload; `fail` makes the next jobs fail with that error; `hold` keeps
    them queued (for the async path); `domain` goes into every result."""

    def __init__(self) -> None:
        self.sent: list[tuple[TaskName, BaseModel]] = []
        self.photos: dict[str, bytes] = {}  # stored with the jobs, by Redis key
        self.jobs: dict[str, tuple[JobRecord, BaseModel]] = {}
        self.fail: JobError | None = None
        self.hold = False
        self.domain: DomainCheck | None = None

    async def queue_depth(self) -> int:
        return 0

    def _echo(self, image: str) -> tuple[str, str]:
        """A payload image as the worker's answer: (base64, media type); a photo as sent."""
        if image.startswith(PHOTO_REF_PREFIX):
            return _echo_photo(self.photos[image[len(PHOTO_REF_PREFIX) :]])
        return _as_png(image), "image/png"

    async def ping(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def watch(self):
        yield JobWatch(str(uuid.uuid4()), results=None)

    def arrival(self) -> Arrival:
        return Arrival(GroupCommit(self._never_sent, max_items=1, gather_s=0))

    @staticmethod
    async def _never_sent(items) -> None:
        raise AssertionError("FakeJobs sends nothing")

    async def submit(
        self, task, payload, expires_s, *, journal=False, watch=None, photos=None, arrival=None
    ):
        if arrival is not None:
            arrival.close()
        self.photos.update(photos or {})
        job_id = watch.job_id if watch is not None else str(uuid.uuid4())
        record = JobRecord(task, time.time())
        self.sent.append((task, payload))
        self.jobs[job_id] = (record, payload)
        return job_id, record

    async def wait(self, watch, record, timeout_s):
        return self._state(watch.job_id)

    async def state(self, job_id):
        return self._state(job_id) if job_id in self.jobs else None

    def _state(self, job_id: str) -> JobState:
        record, payload = self.jobs[job_id]
        if self.hold:
            return JobState(job_id, record, "queued")
        if self.fail is not None:
            return JobState(job_id, record, "failed", error=self.fail)
        common = dict(
            model=payload.model, checkpoint_sha256=SHA, elapsed_ms=1.5, domain=self.domain
        )
        if record.task is TaskName.ENCODE:
            n = len(payload.images)
            result = EncodeResult(**common, z=[[0.0] * 8] * n, e=[[0.0] * 4] * n)
        elif record.task in (TaskName.TRANSFER, TaskName.NEUTRALIZE):
            image, media_type = self._echo(payload.image)  # echo what was sent
            rendering = payload.render or "generator"  # as a worker names it
            result = ImagesResult(
                **common, images=[image], media_type=media_type, rendering=rendering
            )
        elif record.task is TaskName.SAMPLE:
            images = [self._echo(payload.image)[0]] * payload.n
            result = ImagesResult(**common, images=images, seed=payload.seed)
        elif record.task is TaskName.INTERPOLATE:
            images = [_as_png(payload.a)] * (payload.steps - 1) + [_as_png(payload.b)]
            result = ImagesResult(**common, images=images)
        else:
            result = ImagesResult(**common, images=[_blank(32)] * len(payload.z))
        return JobState(job_id, record, "succeeded", result=result)
