"""The models the live workers hold, with their cards."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import SettingsDep, WorkersDep
from service.schemas.responses import ErrorPublic, ModelPublic, ModelsPublic

router = APIRouter(tags=["models"])


@router.get("/models", responses={503: {"model": ErrorPublic}})
async def list_models(workers: WorkersDep, settings: SettingsDep) -> ModelsPublic:
    """Each model a live worker holds, with its model card (data, training, metrics)."""
    models = await workers.models()
    return ModelsPublic(
        default=settings.default_model,
        models=[
            ModelPublic.model_validate(info.model_dump(include=set(ModelPublic.model_fields)))
            for _, info in sorted(models.items())
        ],
    )
