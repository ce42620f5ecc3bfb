"""The latent routes: pictures to posterior means (`/encode`) and latents to pictures
(`/generate`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError

from contract.registry import ModelInfo
from contract.tasks import MAX_BATCH, EncodeRequest, GenerateRequest, TaskName
from service.api.deps import FormDep
from service.api.job_route import JobRouteDep, job_responses, multipart_body
from service.schemas.requests import ENCODE_FILES, GenerateBody, UploadFields
from service.schemas.responses import EncodePublic, ImagesPublic

router = APIRouter(tags=["latents"])


@router.post(
    "/encode",
    response_model=EncodePublic,
    responses=job_responses(None),
    openapi_extra=multipart_body(UploadFields, ENCODE_FILES),
)
async def encode(form: FormDep, job: JobRouteDep) -> Response:
    """Posterior means of z and e for 1 to 64 `images`."""
    upload = await job.read(form, UploadFields, ENCODE_FILES, max_many=MAX_BATCH)
    payload = EncodeRequest(model=upload.model.name, images=upload.pngs["images"])
    return await job.answer(TaskName.ENCODE, payload, as_json=True)


@router.post(
    "/generate",
    response_model=ImagesPublic,
    responses=job_responses("with Accept: image/png, the images side by side", uploads=False),
)
async def generate(body: GenerateBody, request: Request, job: JobRouteDep) -> Response:
    """Images from latents: z (B, z_dim) with e (B, e_dim), or with the reference e^r.
    JSON unless the client asks for `image/png`."""
    model = await job.model(body.model)
    _check_shapes(body, model)
    payload = GenerateRequest(model=model.name, z=body.z, e=body.e)
    as_json = "image/png" not in request.headers.get("accept", "").lower()
    return await job.answer(TaskName.GENERATE, payload, as_json=as_json)


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
