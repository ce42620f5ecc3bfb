"""The tasks (encode, generate, transfer, sample, neutralize, interpolate) and their base class.

Each takes its request's fields as keyword arguments (contract.tasks.REQUESTS), names its
model, and returns its result schema as JSON. Pre- and post-processing (PNG, latents) run in
the task's thread; forward passes go through the runtime's batcher, and the edits between them
are model.inference's, the same functions `ReferenceVAE.transfer` and the others run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from typing import NamedTuple

import torch
from celery import Task, signals
from celery.exceptions import Ignore

from contract.errors import JobError
from contract.tasks import (
    MAX_SEED,
    EncodeRequest,
    EncodeResult,
    GenerateRequest,
    ImagesResult,
    InterpolateRequest,
    NeutralizeRequest,
    SampleRequest,
    TaskName,
    TransferRequest,
)
from model.inference import (
    interpolate_latents,
    neutral_latents,
    sample_latents,
    transfer_latents,
)
from worker import payload
from worker.app import app
from worker.runtime import ServedModel, get_runtime

log = logging.getLogger(__name__)


# --- the base class: what every model task does around its own work --------------------------


class Job(NamedTuple):
    id: str
    deadline: float  # monotonic time of the soft limit


# The gate a job holds in its thread until Celery has stored its result (task_postrun).
_held = threading.local()


class ModelTask(Task):
    """Admits the job (its place beside or apart from the others, deliveries, already
    finished?) and times it; unexpected errors become a JobError with a short message instead
    of a traceback from inside torch."""

    typing = False  # the schemas validate the payload, with clearer messages
    throws = (JobError,)  # expected failures: logged in one line, without a traceback

    def __call__(self, *args, **kwargs):
        job_id = self.request.id or "local"
        rt = get_runtime()
        _release_gate()  # a hold is left over only if a postrun signal was missed
        started_before = rt.jobs.started_before(job_id)
        held = contextlib.ExitStack()
        held.enter_context(rt.jobs.gate(alone=started_before))
        if self.request.called_directly:  # no worker, no stored result: a plain scope
            with held:
                return self._admitted_run(rt, job_id, started_before, args, kwargs)
        _held.stack = held
        return self._admitted_run(rt, job_id, started_before, args, kwargs)

    def _admitted_run(self, rt, job_id: str, started_before: bool, args, kwargs):
        rt.jobs.admitted(job_id, started_before=started_before)
        with rt.jobs.running(job_id) as deadline:
            try:
                return self.run(Job(job_id, deadline), *args, **kwargs)
            except (JobError, Ignore):
                raise
            except Exception as exc:
                log.exception("job %s (%s) failed", job_id, self.name)
                raise JobError(f"internal error in {self.name}: {type(exc).__name__}") from None


@signals.task_postrun.connect
def _release_gate(**_) -> None:
    """Sent by Celery in the job's thread once its result (or failure) is stored, or when it
    was skipped: the next job, which may be a poison job, can only now take the gate."""
    held = getattr(_held, "stack", None)
    if held is not None:
        _held.stack = None
        held.close()


# --- the tasks -------------------------------------------------------------------------------


def _task(name: str):
    return app.task(name=str(name), base=ModelTask, bind=True)


def _images_result(m: ServedModel, t0: float, x: torch.Tensor, seed: int | None = None) -> dict:
    return ImagesResult(
        model=m.name,
        checkpoint_sha256=m.info.checkpoint_sha256,
        elapsed_ms=(time.perf_counter() - t0) * 1000,
        images=payload.encode_batch(x),
        seed=seed,
    ).model_dump(mode="json")


@_task(TaskName.ENCODE)
def encode(self, job: Job, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    req = payload.parse(EncodeRequest, args, kwargs)
    rt = get_runtime()
    m = rt.model(req.model)
    x = payload.decode_batch(req.images, m.vae.resolution)
    z, e = rt.encode(m, x, job.id, job.deadline)
    return EncodeResult(
        model=m.name,
        checkpoint_sha256=m.info.checkpoint_sha256,
        elapsed_ms=(time.perf_counter() - t0) * 1000,
        z=z.tolist(),
        e=e.tolist(),
    ).model_dump(mode="json")


@_task(TaskName.GENERATE)
def generate(self, job: Job, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    req = payload.parse(GenerateRequest, args, kwargs)
    rt = get_runtime()
    m = rt.model(req.model)
    z = payload.latents(req.z, m.vae.z_dim, "z")
    e = None
    if req.e is not None:
        e = payload.latents(req.e, m.vae.e_dim, "e")
        if e.shape[0] != z.shape[0]:
            raise payload.InvalidPayload(f"z has {z.shape[0]} rows but e has {e.shape[0]}")
    return _images_result(m, t0, rt.generate(m, z, e, job.id, job.deadline))


@_task(TaskName.TRANSFER)
def transfer(self, job: Job, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    req = payload.parse(TransferRequest, args, kwargs)
    rt = get_runtime()
    m = rt.model(req.model)
    x = payload.decode_fields({"image": req.image, "attributes": req.attributes}, m.vae.resolution)
    z, e = rt.encode(m, x, job.id, job.deadline)
    out = rt.generate(m, *transfer_latents(z, e, req.strength), job.id, job.deadline)
    return _images_result(m, t0, out)


def seed_for(job_id: str) -> int:
    """A seed derived from the job id: a redelivered job without a seed draws the same e."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big") & MAX_SEED


@_task(TaskName.SAMPLE)
def sample(self, job: Job, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    req = payload.parse(SampleRequest, args, kwargs)
    rt = get_runtime()
    m = rt.model(req.model)
    x = payload.decode_one(req.image, m.vae.resolution, "image")
    seed = seed_for(job.id) if req.seed is None else req.seed
    z, _ = rt.encode(m, x, job.id, job.deadline)
    latents = sample_latents(z, m.vae.prior, req.n, seed, req.temperature)
    return _images_result(m, t0, rt.generate(m, *latents, job.id, job.deadline), seed)


@_task(TaskName.NEUTRALIZE)
def neutralize(self, job: Job, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    req = payload.parse(NeutralizeRequest, args, kwargs)
    rt = get_runtime()
    m = rt.model(req.model)
    x = payload.decode_one(req.image, m.vae.resolution, "image")
    z, _ = rt.encode(m, x, job.id, job.deadline)
    return _images_result(m, t0, rt.generate(m, *neutral_latents(z), job.id, job.deadline))


@_task(TaskName.INTERPOLATE)
def interpolate(self, job: Job, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    req = payload.parse(InterpolateRequest, args, kwargs)
    rt = get_runtime()
    m = rt.model(req.model)
    x = payload.decode_fields({"a": req.a, "b": req.b}, m.vae.resolution)
    z, e = rt.encode(m, x, job.id, job.deadline)
    out = rt.generate(m, *interpolate_latents(z, e, req.steps), job.id, job.deadline)
    return _images_result(m, t0, out)
