"""The tasks: encode, generate, transfer, sample, neutralize, interpolate.

Each takes its request's fields as keyword arguments (contract.tasks.REQUESTS), names its
model, and returns its result schema as JSON. Pre- and post-processing (PNG, latents) run in
the task's thread; forward passes go through the runtime's batcher.
"""

from __future__ import annotations

import hashlib
import logging
import time

import torch

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
from worker import payload
from worker.app import app
from worker.base import Job, ModelTask
from worker.runtime import get_runtime

log = logging.getLogger(__name__)


def _task(name: str):
    return app.task(name=str(name), base=ModelTask, bind=True)


def _images_result(m, t0: float, x: torch.Tensor, seed: int | None = None) -> dict:
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
    r = m.vae.resolution
    x = torch.cat(
        [
            payload.decode_one(req.image, r, "image"),
            payload.decode_one(req.attributes, r, "attributes"),
        ]
    )
    z, e = rt.encode(m, x, job.id, job.deadline)
    e_mix = torch.lerp(e[:1], e[1:], req.strength)  # as ReferenceVAE.transfer: exact at ends
    return _images_result(m, t0, rt.generate(m, z[:1], e_mix, job.id, job.deadline))


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
    # The same draws as ReferenceVAE.sample: a seeded CPU generator, so any device agrees.
    gen = torch.Generator(device="cpu").manual_seed(seed)
    e = m.vae.prior.draw(req.n, gen, req.temperature)
    out = rt.generate(m, z.expand(req.n, -1), e, job.id, job.deadline)
    return _images_result(m, t0, out, seed)


@_task(TaskName.NEUTRALIZE)
def neutralize(self, job: Job, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    req = payload.parse(NeutralizeRequest, args, kwargs)
    rt = get_runtime()
    m = rt.model(req.model)
    x = payload.decode_one(req.image, m.vae.resolution, "image")
    z, _ = rt.encode(m, x, job.id, job.deadline)
    return _images_result(m, t0, rt.generate(m, z, None, job.id, job.deadline))


@_task(TaskName.INTERPOLATE)
def interpolate(self, job: Job, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    req = payload.parse(InterpolateRequest, args, kwargs)
    rt = get_runtime()
    m = rt.model(req.model)
    x = torch.cat(
        [
            payload.decode_one(req.a, m.vae.resolution, "a"),
            payload.decode_one(req.b, m.vae.resolution, "b"),
        ]
    )
    z, e = rt.encode(m, x, job.id, job.deadline)
    t = torch.linspace(0.0, 1.0, req.steps).unsqueeze(1)
    e_path = torch.lerp(e[:1].expand(req.steps, -1), e[1:].expand(req.steps, -1), t)
    out = rt.generate(m, z[:1].expand(req.steps, -1), e_path, job.id, job.deadline)
    return _images_result(m, t0, out)
