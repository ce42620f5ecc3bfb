from __future__ import annotations

import base64

from fastapi import APIRouter, Response

from contract.tasks import TaskName, TransferRequest
from service.api import forms
from service.api.deps import (
    FormDep,
    JobRunnerDep,
    RegistryDep,
    SettingsDep,
    WantsJson,
    held_model,
    prepare_images,
)
from service.api.docs import job_responses
from service.schemas.requests import TRANSFER_FILES, TransferFields
from service.schemas.responses import TransferPublic

router = APIRouter(tags=["images"])


@router.post(
    "/transfer",
    response_model=TransferPublic,
    responses=job_responses("the edited image as PNG"),
    openapi_extra=forms.multipart_body(TransferFields, TRANSFER_FILES),
)
async def transfer(
    form: FormDep,
    settings: SettingsDep,
    registry: RegistryDep,
    as_json: WantsJson,
    runner: JobRunnerDep,
) -> Response:
    """`image` with the target factors e (expression, style) of `attributes`."""
    params = forms.fields(TransferFields, form)
    files = forms.files(form, TRANSFER_FILES, 1)
    model = await held_model(registry, params.model, settings)
    image, attributes = await prepare_images(
        files["image"] + files["attributes"], model.resolution, settings
    )
    payload = TransferRequest(
        model=model.name,
        image=base64.b64encode(image).decode(),
        attributes=base64.b64encode(attributes).decode(),
        strength=params.strength,
    )
    return await runner.answer("transfer", TaskName.TRANSFER, payload, as_json=as_json)
