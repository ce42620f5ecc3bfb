from __future__ import annotations

import base64
import secrets

from fastapi import APIRouter, Response

from contract.tasks import MAX_SEED, SampleRequest, TaskName
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
from service.schemas.requests import SAMPLE_FILES, SampleFields
from service.schemas.responses import ImagesPublic

router = APIRouter(tags=["images"])


@router.post(
    "/sample",
    response_model=ImagesPublic,
    responses=job_responses("the n variations side by side, as one PNG strip"),
    openapi_extra=forms.multipart_body(SampleFields, SAMPLE_FILES),
)
async def sample(
    form: FormDep,
    settings: SettingsDep,
    registry: RegistryDep,
    as_json: WantsJson,
    runner: JobRunnerDep,
) -> Response:
    """n variations of `image`: its z kept, e drawn with the given temperature."""
    params = forms.fields(SampleFields, form)
    files = forms.files(form, SAMPLE_FILES, 1)
    model = await held_model(registry, params.model, settings)
    (image,) = await prepare_images(files["image"], model.resolution, settings)
    # Drawn here rather than by the worker, so the job is repeatable if redelivered and the
    # answer can always name its seed.
    seed = params.seed if params.seed is not None else secrets.randbelow(MAX_SEED + 1)
    payload = SampleRequest(
        model=model.name,
        image=base64.b64encode(image).decode(),
        n=params.n,
        seed=seed,
        temperature=params.temperature,
    )
    return await runner.answer("sample", TaskName.SAMPLE, payload, as_json=as_json)
