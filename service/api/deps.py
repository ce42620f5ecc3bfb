"""What handlers need, as `Annotated` aliases: each signature shows its dependencies."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from contract.registry import ModelInfo
from service.api.answers import JobRunner
from service.core import images
from service.core.config import Settings, get_settings
from service.core.errors import ApiError, Unavailable
from service.core.jobs import JobQueue
from service.core.metrics import Metrics
from service.core.registry import WorkerRegistry
from service.core.uploads import Form, Upload, UploadLimits, read_multipart

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_jobs(request: Request) -> JobQueue:
    return request.app.state.backends.jobs


def get_registry(request: Request) -> WorkerRegistry:
    return request.app.state.backends.registry


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


JobsDep = Annotated[JobQueue, Depends(get_jobs)]
RegistryDep = Annotated[WorkerRegistry, Depends(get_registry)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def require_api_key(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header(description="needed when the service has one")] = None,
) -> None:
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), expected):
        raise ApiError(401, "missing or wrong X-API-Key", headers={"WWW-Authenticate": "ApiKey"})


AsyncFlag = Annotated[
    bool,
    Query(alias="async", description="answer 202 with a job id at once; poll GET /jobs/{id}"),
]


def get_job_runner(
    request: Request,
    settings: SettingsDep,
    jobs: JobsDep,
    metrics: MetricsDep,
    run_async: AsyncFlag = False,
) -> JobRunner:
    return JobRunner(request, settings, jobs, metrics, run_async)


JobRunnerDep = Annotated[JobRunner, Depends(get_job_runner)]


def wants_json(accept: Annotated[str | None, Header()] = None) -> bool:
    """JSON when the client asks for it and not for PNG; PNG otherwise (browsers send */*)."""
    accept = (accept or "").lower()
    return "application/json" in accept and "image/png" not in accept


WantsJson = Annotated[bool, Depends(wants_json)]


async def multipart_form(request: Request, settings: SettingsDep) -> Form:
    limits = UploadLimits(
        max_upload_bytes=settings.max_upload_bytes,
        max_files=settings.max_files,
        max_fields=settings.max_fields,
        max_field_bytes=settings.max_field_bytes,
    )
    return await read_multipart(request, limits)


FormDep = Annotated[Form, Depends(multipart_form)]


async def held_model(registry: WorkerRegistry, name: str | None, settings: Settings) -> ModelInfo:
    """The model a request names (or the default), as a live worker holds it: 404 for a name no
    worker has, 503 when no worker is up at all."""
    name = name or settings.default_model
    models = await registry.models()
    if name in models:
        return models[name]
    if not models:
        raise Unavailable("no worker is serving models", settings.retry_after_s)
    raise ApiError(404, f"unknown model {name!r}; available: {', '.join(sorted(models))}")


async def prepare_images(uploads: list[Upload], resolution: int, settings: Settings) -> list[bytes]:
    """Uploads -> clean PNGs at the model's resolution, decoded off the event loop."""
    limits = images.Limits(max_pixels=settings.max_pixels)

    def work() -> list[bytes]:
        return [
            images.prepare(u.data, resolution, limits, label=f"{u.field} ({u.filename[:100]!r})")
            for u in uploads
        ]

    try:
        return await run_in_threadpool(work)
    except images.ImageRejected as exc:
        raise ApiError(exc.status, exc.detail) from exc
