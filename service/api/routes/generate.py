from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError

from contract.registry import ModelInfo
from contract.tasks import GenerateRequest, TaskName
from service.api.deps import (
    JobRunnerDep,
    RegistryDep,
    SettingsDep,
    held_model,
)
from service.api.docs import job_responses
from service.schemas.requests import GenerateBody
from service.schemas.responses import ImagesPublic

router = APIRouter(tags=["latents"])


@router.post(
    "/generate",
    response_model=ImagesPublic,
    responses=job_responses("with Accept: image/png, the images side by side", uploads=False),
)
async def generate(
    body: GenerateBody,
    request: Request,
    settings: SettingsDep,
    registry: RegistryDep,
    runner: JobRunnerDep,
) -> Response:
    """Images from latents: z (B, z_dim) with e (B, e_dim), or with the reference e^r.
    JSON unless the client asks for `image/png`."""
    model = await held_model(registry, body.model, settings)
    _check_shapes(body, model)
    payload = GenerateRequest(model=model.name, z=body.z, e=body.e)
    return await runner.answer(
        "generate", TaskName.GENERATE, payload, as_json=not _asks_png(request)
    )


def _asks_png(request: Request) -> bool:
    return "image/png" in request.headers.get("accept", "").lower()


def _check_shapes(body: GenerateBody, model: ModelInfo) -> None:
    errors = [
        _error(("z", i), f"expected {model.z_dim} values for model {model.name!r}")
        for i, row in enumerate(body.z)
        if len(row) != model.z_dim
    ]
    if body.e is not None:
        if len(body.e) != len(body.z):
            errors.append(_error(("e",), f"expected {len(body.z)} rows, one per row of z"))
        errors += [
            _error(("e", i), f"expected {model.e_dim} values for model {model.name!r}")
            for i, row in enumerate(body.e)
            if len(row) != model.e_dim
        ]
    if errors:
        raise RequestValidationError(errors)


def _error(loc: tuple, msg: str) -> dict:
    return {"type": "value_error", "loc": ("body", *loc), "msg": msg, "input": None}
