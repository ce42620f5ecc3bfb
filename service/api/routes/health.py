"""What operators and orchestrators ask: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import JobsDep, MetricsDep, SettingsDep, WorkersDep
from service.core.errors import Unavailable
from service.schemas.responses import ErrorPublic, Health, Readiness

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up (no dependency is checked)."""
    return Health()


@router.get("/readyz", responses={503: {"model": ErrorPublic}})
async def readyz(workers: WorkersDep, jobs: JobsDep, settings: SettingsDep) -> Readiness:
    """200 only when Redis answers and a live worker, still consuming its queue, holds the
    default model; 503 with Retry-After otherwise."""
    await jobs.ping()  # now, not from the registry's cache: a Redis outage is 503 at once
    live = await workers.workers()
    consuming = [w for w in live if w.consuming]
    models = await workers.models()
    if settings.default_model not in models:
        stalled = len(live) - len(consuming)
        reason = f"no consuming worker holds model {settings.default_model!r}"
        if stalled:
            reason += f" ({stalled} worker(s) stopped consuming their queue)"
        raise Unavailable(reason, settings.retry_after_s)
    return Readiness(workers=len(consuming), models=sorted(models))


@router.get("/metrics", response_class=Response)
async def metrics(collected: MetricsDep, jobs: JobsDep) -> Response:
    """Prometheus text format: requests and latencies by route and status, queue depth, jobs."""
    try:
        collected.queue_depth.set(await jobs.queue_depth())
    except Unavailable:
        # Scrapes go on during an outage; the gauge keeps its last value.
        log.debug("queue depth unavailable for /metrics")
    return Response(generate_latest(collected.registry), media_type=CONTENT_TYPE_LATEST)
