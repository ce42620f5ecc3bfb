"""The models the live workers hold, with their cards; and each model's example images."""

from __future__ import annotations

import json
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from service.api.deps import SettingsDep, WorkersDep
from service.core.config import Settings
from service.core.errors import ApiError
from service.schemas.responses import (
    ErrorPublic,
    ExamplePublic,
    ExamplesPublic,
    ModelPublic,
    ModelsPublic,
)

router = APIRouter(tags=["models"])

# Names of model directories and example files: no separators, no leading dot.
NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
ModelName = Annotated[str, Path(pattern=NAME, description="a model's name, as /models lists")]
FileName = Annotated[str, Path(pattern=NAME, description="a file the listing names")]


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


def _listing(settings: Settings, name: str) -> tuple[FilePath, dict]:
    """The model's examples/ directory and its examples.json (written by training.examples)."""
    directory = settings.model_dir / name / "examples"
    try:
        return directory, json.loads((directory / "examples.json").read_text())
    except (OSError, ValueError):
        raise ApiError(404, f"model {name!r} has no examples here") from None


@router.get("/models/{name}/examples", responses={404: {"model": ErrorPublic}})
def list_examples(name: ModelName, settings: SettingsDep) -> ExamplesPublic:
    """A few held-out images of the model's own data (never seen in training), one per class,
    at its resolution: inputs to try it with. Files shipped beside the checkpoint."""
    _, listing = _listing(settings, name)
    return ExamplesPublic(
        model=name,
        source=listing.get("source", ""),
        split=listing.get("split", ""),
        description=listing.get("description", ""),
        examples=[
            ExamplePublic(
                label=e["label"], index=e["index"], url=f"/models/{name}/examples/{e['file']}"
            )  # fmt: skip
            for e in listing.get("examples", [])
        ],
    )


@router.get(
    "/models/{name}/examples/{file}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorPublic}},
)
def example_image(name: ModelName, file: FileName, settings: SettingsDep) -> FileResponse:
    """One example image (PNG), as the listing names it."""
    directory, listing = _listing(settings, name)
    if file not in {e["file"] for e in listing.get("examples", [])}:
        raise ApiError(404, f"model {name!r} has no example {file!r}")
    return FileResponse(
        directory / file, media_type="image/png", headers={"Cache-Control": "max-age=300"}
    )
