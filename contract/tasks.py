"""Task names, the queue, and the JSON payloads of every task (pydantic schemas).

Images travel at the model's resolution, as the API sends them: raw pixels, `RAW_RGB_PREFIX`
and the base64 of the (R, R, 3) uint8 array, row by row (no codec at either end); or
base64-encoded PNG bytes, as other senders may. The API decodes, validates and resizes uploads
before queuing, so the worker never sees an arbitrary file.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

QUEUE = "srbvae"
# + job id: how many times a worker started the job (worker/tracker.py); the API reports a job
# whose key exists and that has no result yet as "running".
DELIVERIES_PREFIX = "srbvae:deliveries:"
MAX_BATCH = 64  # images per encode/generate call, and variations per sample call
MAX_SEED = 2**63 - 1


class TaskName(StrEnum):
    ENCODE = "srbvae.encode"
    GENERATE = "srbvae.generate"
    TRANSFER = "srbvae.transfer"
    SAMPLE = "srbvae.sample"
    NEUTRALIZE = "srbvae.neutralize"
    INTERPOLATE = "srbvae.interpolate"


RAW_RGB_PREFIX = "rgb8:"  # not in the base64 alphabet: no PNG's base64 starts with it
ImageB64 = Annotated[
    str,
    Field(
        min_length=1,
        description="an image at the model's resolution: 'rgb8:' and the base64 of its "
        "(R, R, 3) uint8 RGB pixels, row by row; or a base64-encoded PNG",
    ),
]
PngB64 = Annotated[str, Field(min_length=1, description="base64-encoded PNG")]
ModelName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
Latents = Annotated[list[list[float]], Field(min_length=1, max_length=MAX_BATCH)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- requests: the keyword arguments of each task --------------------------------------------


class EncodeRequest(_Payload):
    model: ModelName
    images: Annotated[list[ImageB64], Field(min_length=1, max_length=MAX_BATCH)]


class GenerateRequest(_Payload):
    model: ModelName
    z: Latents
    e: Latents | None = None  # None: the reference e^r (neutral face, plain digit)


class TransferRequest(_Payload):
    model: ModelName
    image: ImageB64  # keeps its common factors z
    attributes: ImageB64  # gives its target factors e
    strength: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0


class SampleRequest(_Payload):
    model: ModelName
    image: ImageB64
    n: Annotated[int, Field(ge=1, le=MAX_BATCH)] = 8
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    temperature: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0


class NeutralizeRequest(_Payload):
    model: ModelName
    image: ImageB64


class InterpolateRequest(_Payload):
    model: ModelName
    a: ImageB64
    b: ImageB64
    steps: Annotated[int, Field(ge=2, le=MAX_BATCH)] = 8


# --- results ---------------------------------------------------------------------------------


class TaskResult(_Payload):
    model: str
    checkpoint_sha256: str  # of the weights that produced it: what makes an answer reproducible
    elapsed_ms: float


class EncodeResult(TaskResult):
    z: list[list[float]]  # posterior means, (B, z_dim)
    e: list[list[float]]  # (B, e_dim)


class ImagesResult(TaskResult):
    images: list[PngB64]
    seed: int | None = None  # the seed used, for sample


REQUESTS: dict[TaskName, type[_Payload]] = {
    TaskName.ENCODE: EncodeRequest,
    TaskName.GENERATE: GenerateRequest,
    TaskName.TRANSFER: TransferRequest,
    TaskName.SAMPLE: SampleRequest,
    TaskName.NEUTRALIZE: NeutralizeRequest,
    TaskName.INTERPOLATE: InterpolateRequest,
}
RESULTS: dict[TaskName, type[TaskResult]] = {
    TaskName.ENCODE: EncodeResult,
    **{name: ImagesResult for name in TaskName if name is not TaskName.ENCODE},
}
