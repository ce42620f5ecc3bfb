"""The FastAPI app: `uvicorn service.main:app` (settings from SRBVAE_API_* variables).

The job routes (`service/api/routes/images.py`, `latents.py`, `jobs.py`) sit behind the
optional API key; the rest are open."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig

from service.api.deps import require_api_key
from service.api.routes import health, images, jobs, latents, models, page
from service.core import trace
from service.core.budget import MemoryBudget
from service.core.config import Settings, get_settings
from service.core.connections import Connections
from service.core.metrics import Metrics, MetricsMiddleware
from service.core.uploads import BodyLimitMiddleware

log = logging.getLogger(__name__)

_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    """`settings` given (tests): they replace `get_settings()` for this app."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.connections = Connections.open(settings)
        sweeper = asyncio.create_task(app.state.connections.jobs.journal.run())
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await app.state.connections.close()

    app = FastAPI(
        title="sRb-VAE service",
        summary="Attribute transfer and conditional synthesis with reference-based VAEs",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
    )
    # Read by the dependencies (service/api/deps.py) rather than overridden: with any
    # override set, FastAPI rebuilds every dependency of every request from its signature
    # (about a quarter of the API's CPU per request, measured).
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.budget = MemoryBudget(
        settings.image_memory_bytes, settings.image_memory_wait_s, settings.retry_after_s
    )
    for module in (images, latents, jobs):
        app.include_router(module.router, dependencies=[Depends(require_api_key)])
    for module in (models, health, page):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    app.add_exception_handler(Exception, _internal_error)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Accept", "Content-Type", "X-API-Key"],
            expose_headers=[
                "X-Model",
                "X-Checkpoint-SHA256",
                "X-Seed",
                "X-Rendering",
                "X-Job-Id",
                "X-Domain-Percentile",
                "X-Out-Of-Domain",
            ],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: sees all
    if trace.ENABLED:  # SRBVAE_TRACE_TIMINGS=1 (bench/request_timeline.py) only
        app.add_middleware(trace.TraceMiddleware)
    return app


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


app = create_app()
