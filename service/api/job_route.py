"""What every job route does around its own payload: read the upload (validated fields, the
model it names as a live worker holds it, clean PNGs at that model's resolution), then queue
the job and answer it: 202 with `?async=true`, else the result as PNG (reproducibility in
headers) or JSON (in fields). Also the OpenAPI description of those requests and answers (the
form is parsed by hand, so FastAPI cannot derive it from the signature).

    async def neutralize(form: FormDep, job: JobRouteDep, as_json: WantsJson) -> Response:
        upload = await job.read(form, NeutralizeFields, NEUTRALIZE_FILES)
        payload = NeutralizeRequest(model=upload.model.name, image=upload.png("image"))
        return await job.answer(TaskName.NEUTRALIZE, payload, as_json=as_json)
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from contract.registry import ModelInfo
from contract.tasks import (
    PHOTO_KEY_PREFIX,
    PHOTO_REF_PREFIX,
    RAW_RGB_PREFIX,
    EncodeResult,
    ImagesResult,
    TaskName,
    TaskResult,
)
from service.api.deps import AsyncFlag, JobsDep, MetricsDep, SettingsDep, WorkersDep
from service.core import images, trace
from service.core.config import Settings
from service.core.errors import ApiError, Unavailable
from service.core.groups import Arrival
from service.core.jobs import JobQueue, JobState
from service.core.metrics import Metrics
from service.core.uploads import Form, Upload
from service.core.workers import LiveWorkers
from service.schemas.requests import FileSpec, UploadFields
from service.schemas.responses import (
    EncodePublic,
    ErrorPublic,
    ImagePublic,
    ImagesPublic,
    JobAccepted,
    JobResultPublic,
)

F = TypeVar("F", bound=UploadFields)
M = TypeVar("M", bound=BaseModel)

ONE_IMAGE = (TaskName.TRANSFER, TaskName.NEUTRALIZE)  # answered as `image`, not `images`
# Uploads converted on the event loop rather than in the thread pool: each file at most this
# many bytes (its header, text chunks included, is read on the loop) and the largest decode
# at most INLINE_DECODE_BYTES (images.decode_cost: 256x256 RGB is 320 KiB), about a
# millisecond of work in all.
INLINE_UPLOAD_BYTES = 64 * 1024
INLINE_DECODE_BYTES = 512 * 1024


@dataclass(frozen=True)
class JobUpload(Generic[F]):
    """A route's upload, read and checked: its fields, the model, and each file as the worker
    takes it (contract.tasks.ImageB64: raw pixels at the model's resolution) by field name."""

    fields: F
    model: ModelInfo
    pngs: dict[str, list[str]]

    def png(self, name: str) -> str:
        (one,) = self.pngs[name]
        return one


class JobRoute:
    """Built by `job_route` for each job request (`JobRouteDep`)."""

    def __init__(
        self,
        request: Request,
        settings: Settings,
        jobs: JobQueue,
        workers: LiveWorkers,
        metrics: Metrics,
        run_async: bool = False,
    ) -> None:
        self.request = request
        self.settings = settings
        self.jobs = jobs
        self.workers = workers
        self.metrics = metrics
        self.run_async = run_async
        # Photos, stored beside the job when it is queued: Redis key -> the file's bytes; and
        # the form that holds their share of the memory budget until then.
        self._photos: dict[str, bytes] = {}
        self._form: Form | None = None

    async def model(self, name: str | None) -> ModelInfo:
        """The model a request names (or the default), as a live worker holds it: 404 for a
        name no worker has, 503 when no worker is up at all."""
        return await self.workers.model(name or self.settings.default_model)

    async def read(
        self,
        form: Form,
        fields: type[F],
        files: FileSpec,
        max_many: int = 1,
        photos: bool = False,
    ) -> JobUpload[F]:
        """The form's fields and files (422 naming each problem), the model, and the files as
        clean PNGs, decoded off the event loop (400, 413, 415 for a refused image) within the
        image memory budget (503 when it stays full); the uploads' bytes are dropped after.
        With `photos`, for a faces model, an upload whose size is not the model's resolution
        is a photo: checked from its header and forwarded undecoded, stored in Redis beside the
        job (PHOTO_REF_PREFIX), its upload's budget held until the job is queued."""
        params = fields_of(fields, form)
        uploads = files_of(form, files, max_many)
        model = await self.model(params.model)
        limits = images.Limits(max_pixels=self.settings.max_pixels)
        square = (model.resolution, model.resolution)
        takes_photos = photos and model.face_zoom is not None

        def label(u: Upload) -> str:
            return f"{u.field} ({u.filename[:100]!r})"

        def is_photo(u: Upload) -> bool:
            return takes_photos and images.photo_size(u.data, limits, label(u)) != square

        stored: dict[str, bytes] = {}  # the photos, by the Redis key they go under

        def prepare(u: Upload, photo: bool) -> str:
            if photo:
                key = f"{PHOTO_KEY_PREFIX}{uuid.uuid4().hex}"
                stored[key] = u.data
                return PHOTO_REF_PREFIX + key
            pixels = images.prepare_pixels(u.data, model.resolution, limits, label(u))
            return RAW_RGB_PREFIX + base64.b64encode(pixels).decode()

        kinds: dict[int, bool] = {}  # id of each upload -> taken as a photo

        def decode_cost() -> int:
            """The largest decode (one image is decoded at a time); a photo is not decoded,
            and its bytes go to Redis as they are (redis-py writes large values uncopied)."""
            every = [u for found in uploads.values() for u in found]
            kinds.update((id(u), is_photo(u)) for u in every)
            decoded = [
                images.decode_cost(u.data, model.resolution, limits)
                for u in every
                if not kinds[id(u)]
            ]
            return max(decoded, default=0)

        def prepare_all() -> dict[str, list[str]]:
            return {
                name: [prepare(u, kinds[id(u)]) for u in found] for name, found in uploads.items()
            }

        # Small pictures (a few hundred microseconds each) are converted on the event loop: a
        # hop to the thread pool and back costs about as much. Larger ones go to the pool.
        small = all(len(u.data) <= INLINE_UPLOAD_BYTES for u in form.files)
        try:
            cost = decode_cost() if small else await run_in_threadpool(decode_cost)
            await form.reserve_decoding(cost)
            if small and cost <= INLINE_DECODE_BYTES:
                pngs = prepare_all()
            else:
                pngs = await run_in_threadpool(prepare_all)
        except images.ImageRejected as exc:
            form.release()
            raise ApiError(exc.status, exc.detail) from exc
        if stored:  # sent with the job, and released then
            self._photos, self._form = stored, form
        else:
            form.release()  # the uploads are PNGs at the model's resolution from here on
        trace.mark("api_converted")
        return JobUpload(params, model, pngs)

    async def answer(self, task: TaskName, payload: BaseModel, *, as_json: bool) -> Response:
        """Queues the job; 202 at once with `?async=true`, else its answer once it is done."""
        jobs, metrics, settings = self.jobs, self.metrics, self.settings
        start = time.perf_counter()
        if self.run_async:
            job_id, _ = await jobs.submit(
                task, payload, settings.result_ttl_s, journal=True, photos=self._photos,
                arrival=self._arrival(),
            )  # fmt: skip
            self._queued()
            metrics.jobs.labels(task, "submitted").inc()
            url = str(self.request.url_for("read_job", job_id=job_id).path)
            return JSONResponse(
                JobAccepted(job_id=job_id, status_url=url).model_dump(),
                status_code=202,
                headers={"Location": url},
            )
        async with jobs.watch() as watch:
            # A synchronous job nobody waits for after the timeout is dropped by the worker.
            job_id, record = await jobs.submit(
                task, payload, settings.job_timeout_s, watch=watch, photos=self._photos,
                arrival=self._arrival(),
            )  # fmt: skip
            self._queued()
            metrics.jobs.labels(task, "submitted").inc()
            try:
                state = await jobs.wait(watch, record, settings.job_timeout_s)
                trace.mark("api_woke")
            except ApiError as exc:
                metrics.jobs.labels(task, "timeout" if exc.status_code == 504 else "error").inc()
                raise
        metrics.job_seconds.labels(task).observe(time.perf_counter() - start)
        metrics.jobs.labels(task, state.state).inc()
        self._raise_for_failure(state)
        assert state.result is not None
        metrics.worker_seconds.labels(task).observe(state.result.elapsed_ms / 1000)
        return await render(public_result(task, job_id, state.result), as_json)

    def _arrival(self) -> Arrival | None:
        """The request's arrival, opened as its form was read (service/api/deps.py)."""
        return getattr(self.request.state, "job_arrival", None)

    def _queued(self) -> None:
        """The photos are in Redis: the request holds none of their bytes from now on."""
        self._photos = {}
        if self._form is not None:
            self._form.release()

    def _raise_for_failure(self, state: JobState) -> None:
        if state.error is None:
            return
        if state.error.status == 503:
            raise Unavailable(state.error.detail, self.settings.retry_after_s)
        raise ApiError(state.error.status, state.error.detail, headers={"X-Job-Id": state.job_id})


async def job_route(
    request: Request,
    settings: SettingsDep,
    jobs: JobsDep,
    workers: WorkersDep,
    metrics: MetricsDep,
    run_async: AsyncFlag = False,
) -> JobRoute:
    # A coroutine: FastAPI would build the class itself in its thread pool (service/api/deps.py).
    return JobRoute(request, settings, jobs, workers, metrics, run_async)


JobRouteDep = Annotated[JobRoute, Depends(job_route)]


# --- the multipart form: validated fields and files --------------------------------------------


def fields_of(model: type[M], form: Form) -> M:
    """The form's text fields as `model`; 422 in FastAPI's shape for bad ones."""
    # An empty field is what a browser sends for a blank input: treat it as omitted.
    given = {k: v for k, v in form.fields.items() if v.strip() != ""}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc


def files_of(form: Form, spec: FileSpec, max_many: int) -> dict[str, list[Upload]]:
    """The files each name of `spec` must have: exactly one, or 1..max_many for a `many` name."""
    known = {name for name, _, _ in spec}
    errors = []
    found: dict[str, list[Upload]] = {}
    for upload in form.files:
        if upload.field not in known:
            errors.append(_error(upload.field, "extra_forbidden", "unexpected file"))
    for name, _, many in spec:
        found[name] = form.files_named(name)
        count = len(found[name])
        if count == 0:
            errors.append(_error(name, "missing", "Field required"))
        elif not many and count > 1:
            errors.append(_error(name, "too_long", "send exactly one file"))
        elif count > max_many:
            errors.append(_error(name, "too_long", f"send at most {max_many} files"))
    if errors:
        raise RequestValidationError(errors)
    return found


def _error(name: str, kind: str, msg: str) -> dict:
    return {"type": kind, "loc": ("body", name), "msg": msg, "input": None}


# --- the answer: a job's result as the public schema, PNG or JSON ------------------------------


def public_result(task: TaskName, job_id: str, result: TaskResult) -> JobResultPublic:
    common = dict(
        job_id=job_id,
        model=result.model,
        checkpoint_sha256=result.checkpoint_sha256,
        elapsed_ms=result.elapsed_ms,
        domain=None if result.domain is None else result.domain.model_dump(),
    )
    if isinstance(result, EncodeResult):
        return EncodePublic(**common, z=result.z, e=result.e)
    assert isinstance(result, ImagesResult)
    pictures = dict(
        seed=result.seed,
        rendering=result.rendering,
        media_type=result.media_type,
        photos={k: v.model_dump() for k, v in result.photos.items()},
    )
    if task in ONE_IMAGE:
        return ImagePublic(**common, **pictures, image=result.images[0])
    return ImagesPublic(**common, **pictures, images=result.images)


def reproducibility_headers(public: JobResultPublic) -> dict[str, str]:
    headers = {
        "X-Job-Id": public.job_id,
        "X-Model": public.model,
        "X-Checkpoint-SHA256": public.checkpoint_sha256,
        "X-Elapsed-Ms": f"{public.elapsed_ms:.1f}",
    }
    if public.seed is not None:
        headers["X-Seed"] = str(public.seed)
    if not isinstance(public, EncodePublic) and public.rendering is not None:
        headers["X-Rendering"] = public.rendering
    if public.domain is not None:  # one value per input image, in the request's order
        headers["X-Domain-Percentile"] = ", ".join(f"{p:g}" for p in public.domain.percentiles)
        headers["X-Out-Of-Domain"] = ", ".join(str(o).lower() for o in public.domain.out_of_domain)
    return headers


async def render(public: JobResultPublic, as_json: bool) -> Response:
    headers = reproducibility_headers(public)
    if as_json or isinstance(public, EncodePublic):
        return JSONResponse(public.model_dump(mode="json"), headers=headers)
    if isinstance(public, ImagePublic):
        png = base64.b64decode(public.image)
    elif len(public.images) == 1:  # a photo's strip comes whole from the worker
        png = base64.b64decode(public.images[0])
    else:
        pngs = [base64.b64decode(i) for i in public.images]
        png = await run_in_threadpool(images.strip, pngs)
    return Response(png, media_type=public.media_type, headers=headers)


# --- OpenAPI: the job routes' request bodies, error contract and PNG answers --------------------


def multipart_body(model: type[BaseModel], spec: FileSpec) -> dict:
    """The OpenAPI request body of an upload route (the form is parsed by hand, so FastAPI
    cannot derive it from the signature)."""
    schema = model.model_json_schema()
    properties: dict = {}
    for name, description, many in spec:
        one = {"type": "string", "format": "binary"}
        properties[name] = (
            {"type": "array", "items": one, "description": description}
            if many
            else {**one, "description": description}
        )
    properties.update(schema.get("properties", {}))
    body_schema = {
        "type": "object",
        "properties": properties,
        "required": [name for name, _, _ in spec],
    }
    if "$defs" in schema:
        body_schema["$defs"] = schema["$defs"]
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": body_schema}},
        }
    }


_ERRORS = {
    400: "undecodable or truncated image, malformed multipart body",
    401: "missing or wrong X-API-Key (only when the service has a key)",
    404: "unknown model",
    413: "a file, field or body over its size limit, too many files, or too many pixels",
    415: "an image format outside PNG, JPEG, WebP, BMP and GIF, or not multipart/form-data",
    422: "missing or out-of-range fields; no face found in a photo (faces models)",
    503: "Redis or the workers unavailable, or the queue full; see Retry-After",
    504: "the job outlived its time limit",
}


def job_responses(png: str | None, uploads: bool = True, photos: bool = False) -> dict:
    skip = set() if uploads else {400, 413, 415}
    responses: dict = {
        status: {"model": ErrorPublic, "description": text}
        for status, text in _ERRORS.items()
        if status not in skip
    }
    responses[202] = {"model": JobAccepted, "description": "with ?async=true: the job id"}
    if png:
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses[200] = {
            "description": f"{png}; JSON with `Accept: application/json`. Headers X-Model, "
            "X-Checkpoint-SHA256, X-Seed (when sampled), X-Rendering (edits), X-Job-Id, X-Elapsed-Ms, X-Domain-Percentile "
            "and X-Out-Of-Domain (one value per input image)",
            "content": {"image/png": binary, **({"image/jpeg": binary} if photos else {})},
        }
    return responses
