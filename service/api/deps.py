"""What handlers need, as `Annotated` aliases: each signature shows its dependencies.

Every dependency here is a coroutine: FastAPI runs a plain function dependency in its thread
pool, and that hop (a thread woken, a future, a wake-up of the event loop) costs far more than
the call, once per dependency and request."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from service.core import trace
from service.core.config import Settings
from service.core.errors import ApiError
from service.core.jobs import JobQueue
from service.core.metrics import Metrics
from service.core.uploads import Form, UploadLimits, read_multipart
from service.core.workers import LiveWorkers


async def app_settings(request: Request) -> Settings:
    """The app's settings (`create_app`'s: `get_settings()` unless a test gave others)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def get_jobs(request: Request) -> JobQueue:
    return request.app.state.connections.jobs


async def get_workers(request: Request) -> LiveWorkers:
    return request.app.state.connections.workers


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


JobsDep = Annotated[JobQueue, Depends(get_jobs)]
WorkersDep = Annotated[LiveWorkers, Depends(get_workers)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def require_api_key(
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


async def wants_json(accept: Annotated[str | None, Header()] = None) -> bool:
    """JSON when the client asks for it and not for PNG; PNG otherwise (browsers send */*)."""
    accept = (accept or "").lower()
    return "application/json" in accept and "image/png" not in accept


WantsJson = Annotated[bool, Depends(wants_json)]


async def multipart_form(
    request: Request, settings: SettingsDep, jobs: JobsDep
) -> AsyncIterator[Form]:
    """The form, holding its share of the image memory budget until the route releases it
    (`JobRoute.read`, once the images are converted) or, at the latest, the request ends.
    Every job route reads one: from here on the request is on its way to submit a job, which
    the group about to be sent waits for (`JobQueue.arrival`, kept in `request.state`)."""
    arrival = request.state.job_arrival = jobs.arrival()
    limits = UploadLimits(
        max_upload_bytes=settings.max_upload_bytes,
        max_files=settings.max_files,
        max_fields=settings.max_fields,
        max_field_bytes=settings.max_field_bytes,
        max_request_bytes=settings.max_request_bytes,
    )
    try:
        form = await read_multipart(request, limits, getattr(request.app.state, "budget", None))
        trace.mark("api_upload_parsed")
        try:
            yield form
        finally:
            form.release()
    finally:
        arrival.close()


FormDep = Annotated[Form, Depends(multipart_form)]
