"""From a queued job to an HTTP answer: 202 for async requests, else wait and render the
result as PNG (reproducibility in headers) or JSON (in fields)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from contract.tasks import EncodeResult, ImagesResult, TaskName
from service.core import images
from service.core.config import Settings
from service.core.errors import ApiError, Unavailable
from service.core.jobs import JobQueue, JobState
from service.core.metrics import Metrics
from service.schemas.responses import (
    EncodePublic,
    ImagesPublic,
    JobAccepted,
    JobResultPublic,
    TransferPublic,
)


def public_result(kind: str, job_id: str, result: BaseModel) -> JobResultPublic:
    common = dict(
        job_id=job_id,
        model=result.model,
        checkpoint_sha256=result.checkpoint_sha256,
        elapsed_ms=result.elapsed_ms,
    )
    if isinstance(result, EncodeResult):
        return EncodePublic(**common, z=result.z, e=result.e)
    assert isinstance(result, ImagesResult)
    if kind == "transfer":
        return TransferPublic(**common, seed=result.seed, image=result.images[0])
    return ImagesPublic(**common, seed=result.seed, images=result.images)


def reproducibility_headers(public: JobResultPublic) -> dict[str, str]:
    headers = {
        "X-Job-Id": public.job_id,
        "X-Model": public.model,
        "X-Checkpoint-SHA256": public.checkpoint_sha256,
        "X-Elapsed-Ms": f"{public.elapsed_ms:.1f}",
    }
    if public.seed is not None:
        headers["X-Seed"] = str(public.seed)
    return headers


async def render(public: JobResultPublic, as_json: bool) -> Response:
    headers = reproducibility_headers(public)
    if as_json or isinstance(public, EncodePublic):
        return JSONResponse(public.model_dump(mode="json"), headers=headers)
    if isinstance(public, TransferPublic):
        png = base64.b64decode(public.image)
    elif len(public.images) == 1:
        png = base64.b64decode(public.images[0])
    else:
        pngs = [base64.b64decode(i) for i in public.images]
        png = await run_in_threadpool(images.strip, pngs)
    return Response(png, media_type="image/png", headers=headers)


def raise_for_failure(state: JobState, settings: Settings) -> None:
    if state.error is None:
        return
    if state.error.status == 503:
        raise Unavailable(state.error.detail, settings.retry_after_s)
    raise ApiError(state.error.status, state.error.detail, headers={"X-Job-Id": state.job_id})


async def answer_job(
    *,
    request: Request,
    kind: str,
    task: TaskName,
    payload: BaseModel,
    run_async: bool,
    as_json: bool,
    jobs: JobQueue,
    metrics: Metrics,
    settings: Settings,
) -> Response:
    start = time.perf_counter()
    if run_async:
        job_id, _ = await jobs.submit(kind, task, payload, settings.result_ttl_s, journal=True)
        metrics.jobs.labels(task, "submitted").inc()
        url = str(request.url_for("read_job", job_id=job_id).path)
        return JSONResponse(
            JobAccepted(job_id=job_id, status_url=url).model_dump(),
            status_code=202,
            headers={"Location": url},
        )
    async with jobs.watch() as watch:
        # A synchronous job nobody waits for after the timeout is dropped by the worker.
        job_id, record = await jobs.submit(kind, task, payload, settings.job_timeout_s, watch=watch)
        metrics.jobs.labels(task, "submitted").inc()
        try:
            state = await jobs.wait(watch, record, settings.job_timeout_s)
        except ApiError as exc:
            metrics.jobs.labels(task, "timeout" if exc.status_code == 504 else "error").inc()
            raise
    metrics.job_seconds.labels(task).observe(time.perf_counter() - start)
    metrics.jobs.labels(task, state.state).inc()
    raise_for_failure(state, settings)
    assert state.result is not None
    metrics.worker_seconds.labels(task).observe(state.result.elapsed_ms / 1000)
    return await render(public_result(kind, job_id, state.result), as_json)


@dataclass(frozen=True)
class JobRunner:
    """What every job route needs to queue its job and answer it (sync or `?async=true`)."""

    request: Request
    settings: Settings
    jobs: JobQueue
    metrics: Metrics
    run_async: bool

    async def answer(
        self, kind: str, task: TaskName, payload: BaseModel, *, as_json: bool
    ) -> Response:
        return await answer_job(
            request=self.request,
            kind=kind,
            task=task,
            payload=payload,
            run_async=self.run_async,
            as_json=as_json,
            jobs=self.jobs,
            metrics=self.metrics,
            settings=self.settings,
        )
