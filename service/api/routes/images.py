"""The picture routes: transfer, sample, neutralise, interpolate. Each takes uploads and answers
pictures (one PNG, or a strip of them side by side; JSON with `Accept: application/json`).
Transfer, sample and neutralise also take photos for a faces model: the answer is the photo
with the face edited (docs/photos.md)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Response

from contract.tasks import (
    MAX_SEED,
    InterpolateRequest,
    NeutralizeRequest,
    SampleRequest,
    TaskName,
    TransferRequest,
)
from service.api.deps import FormDep, WantsJson
from service.api.job_route import JobRouteDep, job_responses, multipart_body
from service.schemas.requests import (
    INTERPOLATE_FILES,
    NEUTRALIZE_FILES,
    SAMPLE_FILES,
    TRANSFER_FILES,
    InterpolateFields,
    PhotoFields,
    SampleFields,
    TransferFields,
)
from service.schemas.responses import ImagePublic, ImagesPublic

router = APIRouter(tags=["images"])


@router.post(
    "/transfer",
    response_model=ImagePublic,
    responses=job_responses(
        "the edited image as PNG (a photo: JPEG for a JPEG upload)", photos=True
    ),
    openapi_extra=multipart_body(TransferFields, TRANSFER_FILES),
)
async def transfer(form: FormDep, job: JobRouteDep, as_json: WantsJson) -> Response:
    """`image` with the target factors e (expression, style) of `attributes`."""
    upload = await job.read(form, TransferFields, TRANSFER_FILES, photos=True)
    params = upload.fields
    payload = TransferRequest(
        model=upload.model.name,
        image=upload.png("image"),
        attributes=upload.png("attributes"),
        strength=params.strength,
        face=params.face,
        attributes_face=params.attributes_face,
        face_box=params.face_box,
        attributes_face_box=params.attributes_face_box,
        output=params.output,
        render=params.render,
    )
    return await job.answer(TaskName.TRANSFER, payload, as_json=as_json)


@router.post(
    "/sample",
    response_model=ImagesPublic,
    responses=job_responses(
        "the n variations side by side, as one PNG strip (photos: JPEG for a JPEG upload)",
        photos=True,
    ),
    openapi_extra=multipart_body(SampleFields, SAMPLE_FILES),
)
async def sample(form: FormDep, job: JobRouteDep, as_json: WantsJson) -> Response:
    """n variations of `image`: its z kept, e drawn with the given temperature."""
    upload = await job.read(form, SampleFields, SAMPLE_FILES, photos=True)
    params = upload.fields
    # Drawn here rather than by the worker, so the job is repeatable if redelivered and the
    # answer can always name its seed.
    seed = params.seed if params.seed is not None else secrets.randbelow(MAX_SEED + 1)
    payload = SampleRequest(
        model=upload.model.name,
        image=upload.png("image"),
        n=params.n,
        seed=seed,
        temperature=params.temperature,
        face=params.face,
        face_box=params.face_box,
        output=params.output,
        render=params.render,
    )
    return await job.answer(TaskName.SAMPLE, payload, as_json=as_json)


@router.post(
    "/neutralize",
    response_model=ImagePublic,
    responses=job_responses(
        "the neutralised image as PNG (a photo: JPEG for a JPEG upload)", photos=True
    ),
    openapi_extra=multipart_body(PhotoFields, NEUTRALIZE_FILES),
)
async def neutralize(form: FormDep, job: JobRouteDep, as_json: WantsJson) -> Response:
    """`image` with the reference target factors e^r: a neutral face, a plain digit."""
    upload = await job.read(form, PhotoFields, NEUTRALIZE_FILES, photos=True)
    params = upload.fields
    payload = NeutralizeRequest(
        model=upload.model.name,
        image=upload.png("image"),
        face=params.face,
        face_box=params.face_box,
        output=params.output,
        render=params.render,
    )
    return await job.answer(TaskName.NEUTRALIZE, payload, as_json=as_json)


@router.post(
    "/interpolate",
    response_model=ImagesPublic,
    responses=job_responses("the steps side by side, as one PNG strip"),
    openapi_extra=multipart_body(InterpolateFields, INTERPOLATE_FILES),
)
async def interpolate(form: FormDep, job: JobRouteDep, as_json: WantsJson) -> Response:
    """`a`'s z with e moving in `steps` from `a`'s own to `b`'s (both ends included)."""
    upload = await job.read(form, InterpolateFields, INTERPOLATE_FILES)
    payload = InterpolateRequest(
        model=upload.model.name,
        a=upload.png("a"),
        b=upload.png("b"),
        steps=upload.fields.steps,
        render=upload.fields.render,
    )
    return await job.answer(TaskName.INTERPOLATE, payload, as_json=as_json)
