from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import JobsDep, RegistryDep, SettingsDep
from service.core.errors import Unavailable
from service.schemas.responses import ErrorPublic, Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up (no dependency is checked)."""
    return Health()


@router.get("/readyz", responses={503: {"model": ErrorPublic}})
async def readyz(registry: RegistryDep, jobs: JobsDep, settings: SettingsDep) -> Readiness:
    """200 only when Redis answers and a live worker, still consuming its queue, holds the
    default model; 503 with Retry-After otherwise."""
    await jobs.ping()  # now, not from the registry's cache: a Redis outage is 503 at once
    workers = await registry.workers()
    consuming = [w for w in workers if w.consuming]
    models = await registry.models()
    if settings.default_model not in models:
        stalled = len(workers) - len(consuming)
        reason = f"no consuming worker holds model {settings.default_model!r}"
        if stalled:
            reason += f" ({stalled} worker(s) stopped consuming their queue)"
        raise Unavailable(reason, settings.retry_after_s)
    return Readiness(workers=len(consuming), models=sorted(models))
