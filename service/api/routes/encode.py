from __future__ import annotations

import base64

from fastapi import APIRouter, Response

from contract.tasks import MAX_BATCH, EncodeRequest, TaskName
from service.api import forms
from service.api.deps import (
    FormDep,
    JobRunnerDep,
    RegistryDep,
    SettingsDep,
    held_model,
    prepare_images,
)
from service.api.docs import job_responses
from service.schemas.requests import ENCODE_FILES, EncodeFields
from service.schemas.responses import EncodePublic

router = APIRouter(tags=["latents"])


@router.post(
    "/encode",
    response_model=EncodePublic,
    responses=job_responses(None),
    openapi_extra=forms.multipart_body(EncodeFields, ENCODE_FILES),
)
async def encode(
    form: FormDep,
    settings: SettingsDep,
    registry: RegistryDep,
    runner: JobRunnerDep,
) -> Response:
    """Posterior means of z and e for 1 to 64 `images`."""
    params = forms.fields(EncodeFields, form)
    files = forms.files(form, ENCODE_FILES, MAX_BATCH)
    model = await held_model(registry, params.model, settings)
    pngs = await prepare_images(files["images"], model.resolution, settings)
    payload = EncodeRequest(model=model.name, images=[base64.b64encode(p).decode() for p in pngs])
    return await runner.answer("encode", TaskName.ENCODE, payload, as_json=True)
