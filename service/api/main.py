"""All routers: the job routes behind the optional API key, the rest open."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.api.deps import require_api_key
from service.api.routes import (
    encode,
    generate,
    health,
    jobs,
    metrics,
    models,
    page,
    sample,
    transfer,
)

api_router = APIRouter()
for module in (transfer, sample, encode, generate, jobs):
    api_router.include_router(module.router, dependencies=[Depends(require_api_key)])
for module in (models, health, metrics, page):
    api_router.include_router(module.router)
