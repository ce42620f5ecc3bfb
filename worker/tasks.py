"""The tasks (encode, generate, transfer, sample, neutralize, interpolate) and their base class.

Each takes its request's fields as keyword arguments (contract.tasks.REQUESTS), names its
model, and returns its result schema as JSON. Pre- and post-processing (PNG, latents) run in
the task's thread; forward passes go through the runtime's batcher, and the edits between them
are model.inference's, the same functions `ReferenceVAE.transfer` and the others run. A photo
for a faces model (transfer, sample, neutralize) is read and its face aligned before the model
sees it, and the edit is pasted back into it (worker/photo.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from typing import Any, NamedTuple, cast

import numpy as np
import redis
import torch
from celery import Task, signals
from celery.exceptions import Ignore
from celery.worker.control import inspect_command
from pydantic import BaseModel

from contract.errors import InvalidPayload, JobError, JobTimeout
from contract.tasks import (
    MAX_SEED,
    PHOTO_KEY_PREFIX,
    PHOTO_PREFIX,
    PHOTO_REF_PREFIX,
    Box,
    DomainCheck,
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
from model import images as imageio
from model.domain import reconstruction_error
from model.inference import (
    interpolate_latents,
    neutral_latents,
    reconstruction_latents,
    sample_latents,
    transfer_latents,
)
from worker import payload, photo, trace
from worker.app import app
from worker.runtime import ServedModel, get_runtime

log = logging.getLogger(__name__)


# --- the base class: what every model task does around its own work --------------------------


class Job(NamedTuple):
    id: str
    deadline: float  # monotonic time of the soft limit


# The gate a job holds in its thread until Celery has stored its result (task_postrun).
_held = threading.local()


class _Place(contextlib.ExitStack):
    """A job's hold on the gate; `alone` for a job started before."""

    def __init__(self, alone: bool = False) -> None:
        super().__init__()
        self.alone = alone


class ModelTask(Task):
    """Admits the job (its place beside or apart from the others, deliveries, already
    finished?) and times it; unexpected errors become a JobError with a short message instead
    of a traceback from inside torch."""

    typing = False  # the schemas validate the payload, with clearer messages
    throws = (JobError,)  # expected failures: logged in one line, without a traceback
    # A success is stored by `__call__` in one round trip (JobTracker.store_success); Celery's
    # backend would read the key first. Failures are stored by Celery as before. Celery's
    # tracer gets None back: it would otherwise repr the result (its images) for its log line.
    ignore_result = True
    store_errors_even_if_ignored = True

    def __call__(self, *args, **kwargs):
        job_id = self.request.id or "local"
        trace.mark(job_id, "w_task_start")
        rt = get_runtime()
        _release_gate()  # a hold is left over only if a postrun signal was missed
        held = self._take_place(rt, job_id)
        started_before = held.alone
        if self.request.called_directly:  # no worker, no stored result: a plain scope
            with held:
                return self.run_admitted(rt, job_id, started_before, args, kwargs)
        _held.stack = held
        result = self.run_admitted(rt, job_id, started_before, args, kwargs)
        trace.mark(job_id, "w_task_end")
        rt.jobs.store_success(job_id, result)
        return None

    @staticmethod
    def _take_place(rt, job_id: str) -> _Place:
        """A place beside the other jobs, where a first start is counted (one round trip to
        Redis); a job started before gives it up and waits to run alone."""
        held = _Place()
        held.enter_context(rt.jobs.gate(alone=False))
        try:
            first = rt.jobs.first_start(job_id)
        except BaseException:
            held.close()
            raise
        if not first:
            held.close()
            held = _Place(alone=True)
            held.enter_context(rt.jobs.gate(alone=True))
        return held

    def run_admitted(self, rt, job_id: str, started_before: bool, args, kwargs):
        """The job's run once it holds its place (the gate): a group's jobs too."""
        rt.jobs.admitted(job_id, started_before=started_before)
        trace.mark(job_id, "w_admitted")
        with rt.jobs.running(job_id) as deadline:
            try:
                return self.run(Job(job_id, deadline), *args, **kwargs)
            except (JobError, Ignore):
                raise
            except Exception as exc:
                log.exception("job %s (%s) failed", job_id, self.name)
                raise JobError(f"internal error in {self.name}: {type(exc).__name__}") from None


def hold_until_stored(place: contextlib.ExitStack) -> None:
    """Keeps `place` (a hold on the gate) until Celery's task_postrun in this thread."""
    _release_gate()
    _held.stack = place


@signals.task_postrun.connect
def _release_gate(**_) -> None:
    """Sent by Celery in the job's thread once its result (or failure) is stored, or when it
    was skipped: the next job, which may be a poison job, can only now take the gate."""
    held = getattr(_held, "stack", None)
    if held is not None:
        _held.stack = None
        held.close()


# --- the tasks ---------------------------------------------------------------------------------


def _forget(client: redis.Redis, key: str) -> None:
    """Deletes a job's stored photo; should Redis be away, the key expires by itself."""
    with contextlib.suppress(redis.RedisError):
        client.delete(key)


def _task(name: str):
    return app.task(name=str(name), base=ModelTask, bind=True)


class _Inputs(NamedTuple):
    x: torch.Tensor  # (B, 3, R, R): the inputs as the model saw them (a photo's aligned face)
    z: torch.Tensor
    e: torch.Tensor
    names: list[str]


def domain_check(m: ServedModel, inputs: _Inputs, reconstructions: torch.Tensor) -> DomainCheck:
    """Each input's reconstruction error placed among the held-out images' (model/domain.py)."""
    ref = m.vae.domain
    assert ref is not None
    errors = reconstruction_error(inputs.x, reconstructions)
    return DomainCheck(
        inputs=inputs.names,
        percentiles=ref.percentile(errors),
        out_of_domain=ref.out_of_domain(errors),
        threshold=ref.threshold,
        trained_on=ref.trained_on,
    )


class Run(contextlib.ExitStack):
    """One job's request, model and device calls: what each task body is written with. As a
    context, it holds a photo slot (worker/photo.py) from the first photo read to its end."""

    def __init__(self, job: Job, schema: type[BaseModel], args: tuple, kwargs: dict) -> None:
        super().__init__()
        self.t0 = time.perf_counter()
        self.job = job
        # Any: each task body reads the fields of its own schema (all name a `model`). A local, as
        # mypy narrows an attribute declared Any to the assigned BaseModel.
        req: Any = payload.parse(schema, args, kwargs)
        self.req: Any = req
        self.rt = get_runtime()
        self.m: ServedModel = self.rt.model(req.model)
        self.photos: dict[str, photo.Photo] = {}  # by field: the uploads read as photos
        self.inputs: _Inputs | None = None  # the encoded inputs, which edits are made of
        self.unchecked = False  # the inputs' domain check is due (in the next generate pass)
        self.domain: DomainCheck | None = None
        self.rendered: str | None = None  # how the edits were rendered, for the answer

    # What the model sees: pictures at its resolution, a photo's face aligned.

    def model_inputs(self, faces: dict[str, int | Box] | None = None, **images: str) -> np.ndarray:
        """Payload images by field name, in that order -> (B, R, R, 3) uint8. A photo
        (PHOTO_REF_PREFIX, PHOTO_PREFIX) gives the face `faces[field]` (its number, or a box it
        overlaps) aligned; it is kept in `self.photos`."""
        resolution = self.m.vae.resolution
        rows = []
        for field, data in images.items():
            if data.startswith((PHOTO_REF_PREFIX, PHOTO_PREFIX)):
                found = self._read_photo(data, field, (faces or {}).get(field, 0))
                rows.append(found.aligned.crop)
            else:
                rows.append(payload.decode_image(data, resolution, field))
        return np.stack(rows)

    def _read_photo(self, data: str, field: str, face: int | Box) -> photo.Photo:
        zoom = self.m.info.face_zoom
        if zoom is None:
            raise InvalidPayload(
                f"{field}: model {self.m.name!r} takes pictures at its own framing, not photos"
            )
        if not self.photos:  # one slot per job, held until its answer is encoded
            if not photo.PHOTO_SLOTS.acquire(
                timeout=max(0.0, self.job.deadline - time.monotonic())
            ):
                raise JobTimeout("no photo slot came free before the job's time limit")
            self.callback(photo.PHOTO_SLOTS.release)
        found = photo.read_photo(
            self._photo_file(data, field), field, self.m.vae.resolution, zoom, face
        )
        self.photos[field] = found
        return found

    def _photo_file(self, data: str, field: str) -> bytes:
        """A payload's photo -> the file's bytes: inline, or from the key the API stored them
        under (deleted once the job ends; a job redelivered after a crash still finds them)."""
        if data.startswith(PHOTO_PREFIX):
            return photo.photo_bytes(data[len(PHOTO_PREFIX) :], field)
        key = data[len(PHOTO_REF_PREFIX) :]
        if not key.startswith(PHOTO_KEY_PREFIX):
            raise InvalidPayload(f"{field}: a photo's key must start with {PHOTO_KEY_PREFIX!r}")
        raw = cast(bytes | None, self.rt.redis.get(key))  # a client without decode_responses
        if raw is None:
            raise InvalidPayload(
                f"{field}: the photo is no longer stored (it expires with its job)"
            )
        self.callback(_forget, self.rt.redis, key)
        return raw

    # Device work. Each call is one operation for the device thread (worker/batcher.py): rows
    # of concurrent jobs for the same model and kind are concatenated into one forward pass.

    def encode(
        self, x: torch.Tensor, inputs: list[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, R, R) -> posterior means z (B, z_dim), e (B, e_dim). `inputs` names the
        rows for the domain check (default images[i]), which the next generate pass runs."""
        m, job = self.m, self.job
        trace.mark(job.id, "w_encode_submit")
        done = self.rt.batcher.submit(
            (m.name, "encode"), m.vae.encode_tensor, [x], job.id, side=True
        )
        z, e = self.rt.jobs.wait(done, job.deadline)
        trace.mark(job.id, "w_encode_back")
        self.inputs = _Inputs(x, z, e, inputs or [f"images[{i}]" for i in range(len(x))])
        self.unchecked = m.vae.domain is not None
        return z, e

    def encode_pngs(
        self, faces: dict[str, int | Box] | None = None, **pngs: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Payload images by field name, in that order -> z, e (one row each)."""
        return self.encode(imageio.uint8_to_tensor(self.model_inputs(faces, **pngs)), list(pngs))

    def generate(
        self, z: torch.Tensor, e: torch.Tensor | None, base: list[int] | None = None
    ) -> torch.Tensor:
        """z (B, z_dim), e (B, e_dim) or None for e^r -> (B, 3, R, R). `base`: where the rows
        edit the encoded inputs, the input each row edits; the edits are then rendered as the
        request's `render` (or the model's default) asks (model/rendering.py)."""
        m, job, inputs = self.m, self.job, self.inputs
        e = m.e_ref.expand(z.shape[0], -1) if e is None else e
        rows, check, self.unchecked = z.shape[0], self.unchecked, False
        render = getattr(self.req, "render", None)
        # The inputs the edits are composed with, where the rendering needs them.
        onto = inputs if base is not None and m.vae.rendering.needs_reconstruction(render) else None
        if inputs is not None and (check or onto is not None):
            # The inputs' reconstructions ride along in the same pass.
            z_rec, e_rec = reconstruction_latents(inputs.z, inputs.e)
            z, e = torch.cat([z, z_rec]), torch.cat([e, e_rec])
        trace.mark(job.id, "w_generate_submit")
        done = self.rt.batcher.submit(
            (m.name, "generate"), m.generate_batch, [z, e], job.id, side=True
        )
        (x,) = self.rt.jobs.wait(done, job.deadline)
        trace.mark(job.id, "w_generate_back")
        if inputs is not None and check:
            self.domain = domain_check(m, inputs, x[rows:])
        if base is not None:
            self.rendered = render or m.vae.rendering.mode
        if onto is not None:
            rec = x[rows:][base]
            return m.vae.rendering.compose(onto.x[base].float(), x[:rows], rec, render)
        return x[:rows]

    def result(self, schema: type[BaseModel] = ImagesResult, **fields) -> dict:
        if self.unchecked:  # no edit to generate (encode): a pass of their own
            vae = self.m.vae
            self.generate(torch.empty(0, vae.z_dim), torch.empty(0, vae.e_dim))
        return schema(
            model=self.m.name,
            checkpoint_sha256=self.m.info.checkpoint_sha256,
            elapsed_ms=(time.perf_counter() - self.t0) * 1000,
            domain=self.domain,
            **fields,
        ).model_dump(mode="json")

    def images(self, x: torch.Tensor, seed: int | None = None, onto: str | None = None) -> dict:
        """The result of (B, 3, R, R) edits: PNGs at the model's resolution; or, where field
        `onto` was a photo and the request asks for `output="photo"`, the edits pasted back
        into it (side by side for B > 1) as one image."""
        described = {field: p.described() for field, p in self.photos.items()}
        target = self.photos.get(onto) if onto is not None else None
        if target is None or getattr(self.req, "output", "photo") != "photo":
            return self.result(
                images=payload.encode_batch(x), seed=seed, photos=described, rendering=self.rendered
            )
        crops = imageio.tensor_to_uint8(x)
        if len(crops) == 1:
            whole = photo.pasted(target, crops[0])
        else:
            whole = photo.strip((photo.pasted(target, c) for c in crops), len(crops))
        data, media_type = photo.encode(whole, target.jpeg)
        return self.result(
            images=[data],
            seed=seed,
            media_type=media_type,
            photos=described,
            rendering=self.rendered,
        )


@_task(TaskName.ENCODE)
def encode(self, job: Job, *args, **kwargs) -> dict:
    run = Run(job, EncodeRequest, args, kwargs)
    z, e = run.encode(payload.decode_batch(run.req.images, run.m.vae.resolution))
    return run.result(EncodeResult, z=z.tolist(), e=e.tolist())


@_task(TaskName.GENERATE)
def generate(self, job: Job, *args, **kwargs) -> dict:
    run = Run(job, GenerateRequest, args, kwargs)
    req, vae = run.req, run.m.vae
    z = payload.latents(req.z, vae.z_dim, "z")
    e = None if req.e is None else payload.latents(req.e, vae.e_dim, "e")
    if e is not None and e.shape[0] != z.shape[0]:
        raise payload.InvalidPayload(f"z has {z.shape[0]} rows but e has {e.shape[0]}")
    return run.images(run.generate(z, e))


@_task(TaskName.TRANSFER)
def transfer(self, job: Job, *args, **kwargs) -> dict:
    with Run(job, TransferRequest, args, kwargs) as run:
        req = run.req
        faces = {
            "image": req.face_box or req.face,
            "attributes": req.attributes_face_box or req.attributes_face,
        }
        z, e = run.encode_pngs(faces, image=req.image, attributes=req.attributes)
        edits = run.generate(*transfer_latents(z, e, req.strength), base=[0])
        return run.images(edits, onto="image")


def seed_for(job_id: str) -> int:
    """A seed derived from the job id: a redelivered job without a seed draws the same e."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big") & MAX_SEED


@_task(TaskName.SAMPLE)
def sample(self, job: Job, *args, **kwargs) -> dict:
    with Run(job, SampleRequest, args, kwargs) as run:
        req = run.req
        seed = seed_for(job.id) if req.seed is None else req.seed
        z, _ = run.encode_pngs({"image": req.face_box or req.face}, image=req.image)
        latents = sample_latents(z, run.m.vae.prior, req.n, seed, req.temperature)
        return run.images(run.generate(*latents, base=[0] * req.n), seed, onto="image")


@_task(TaskName.NEUTRALIZE)
def neutralize(self, job: Job, *args, **kwargs) -> dict:
    with Run(job, NeutralizeRequest, args, kwargs) as run:
        req = run.req
        z, _ = run.encode_pngs({"image": req.face_box or req.face}, image=req.image)
        return run.images(run.generate(*neutral_latents(z), base=[0]), onto="image")


@_task(TaskName.INTERPOLATE)
def interpolate(self, job: Job, *args, **kwargs) -> dict:
    run = Run(job, InterpolateRequest, args, kwargs)
    z, e = run.encode_pngs(a=run.req.a, b=run.req.b)
    steps = run.req.steps
    return run.images(run.generate(*interpolate_latents(z, e, steps), base=[0] * steps))


# --- remote control ----------------------------------------------------------------------------


@inspect_command()
def device_passes(state, **_) -> dict[str, dict[str, int]]:
    """`celery inspect device_passes`: forward passes so far by kind and rows, the batches the
    device thread formed (worker/batcher.py; bench/request_cost.py reads them)."""
    return get_runtime().batcher.pass_counts()
