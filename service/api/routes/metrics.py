from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import JobsDep, MetricsDep
from service.core.errors import Unavailable

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/metrics", response_class=Response)
async def metrics(collected: MetricsDep, jobs: JobsDep) -> Response:
    """Prometheus text format: requests and latencies by route and status, queue depth, jobs."""
    try:
        collected.queue_depth.set(await jobs.queue_depth())
    except Unavailable:
        # Scrapes go on during an outage; the gauge keeps its last value.
        log.debug("queue depth unavailable for /metrics")
    return Response(generate_latest(collected.registry), media_type=CONTENT_TYPE_LATEST)
