"""Task names, the queue, and the JSON payloads of every task (pydantic schemas).

Images travel at the model's resolution, as the API sends them: raw pixels, `RAW_RGB_PREFIX`
and the base64 of the (R, R, 3) uint8 array, row by row (no codec at either end); or
base64-encoded PNG bytes, as other senders may. The API decodes, validates and resizes uploads
before queuing. The one exception is a photo for a faces model: transfer, sample and neutralize
take it as uploaded, its format and pixel count checked by the API, and the worker finds the
face in it, edits it and pastes it back (docs/photos.md). The API stores the file's bytes in
Redis beside the job (`PHOTO_KEY_PREFIX`, in the pipeline that queues it) and the payload names
the key (`PHOTO_REF_PREFIX`), so that megabytes of photo are not base64-encoded three times
over into the message; other senders may put the file inline (`PHOTO_PREFIX`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

QUEUE = "srbvae"
# How task messages carry their JSON body on the queue: as text (kombu's Redis transport would
# base64 it). The API writes its messages so, and both Celery apps are set to match.
BODY_ENCODING = "utf-8"
# + job id: how many times a worker started the job (worker/tracker.py); the API reports a job
# whose key exists and that has no result yet as "running".
DELIVERIES_PREFIX = "srbvae:deliveries:"
MAX_BATCH = 64  # images per encode/generate call, and variations per sample call
MAX_SEED = 2**63 - 1
# bench/request_timeline.py: with this variable at "1" in the API's and the worker's
# environment, a stored result carries the worker's stage timestamps under TRACE_FIELD.
TRACE_ENV = "SRBVAE_TRACE_TIMINGS"
TRACE_FIELD = "srbvae_trace"
# One message carrying several jobs that reached the API together (its group commit,
# docs/worker.md): the worker runs them side by side and stores each result under its job's id.
# The jobs' ids also travel in the message's headers, where the API's journal reads them.
GROUP_TASK = "srbvae.group"
GROUP_JOBS_HEADER = "srbvae_jobs"


class TaskName(StrEnum):
    ENCODE = "srbvae.encode"
    GENERATE = "srbvae.generate"
    TRANSFER = "srbvae.transfer"
    SAMPLE = "srbvae.sample"
    NEUTRALIZE = "srbvae.neutralize"
    INTERPOLATE = "srbvae.interpolate"


RAW_RGB_PREFIX = "rgb8:"  # not in the base64 alphabet: no PNG's base64 starts with it
PHOTO_PREFIX = "photo:"  # + the base64 of an uploaded photo file, for a faces model
PHOTO_REF_PREFIX = "photo-key:"  # + the Redis key holding the file's bytes, under PHOTO_KEY_PREFIX
PHOTO_KEY_PREFIX = "srbvae:photo:"
ImageB64 = Annotated[
    str,
    Field(
        min_length=1,
        description="an image at the model's resolution: 'rgb8:' and the base64 of its "
        "(R, R, 3) uint8 RGB pixels, row by row; or a base64-encoded PNG; or, for a faces "
        "model, a photo file (PNG, JPEG, WebP, BMP, GIF): 'photo:' and its base64, or "
        "'photo-key:' and the Redis key that holds it",
    ),
]
# What a photo's job answers: the photo with the face edited, or the edited aligned crop.
Output = Literal["photo", "face"]
# How an edit is rendered (model/rendering.py): the generator's picture, or the input with the
# edit's change. None: the model's default.
Render = Literal["generator", "input"]
FaceIndex = Annotated[int, Field(ge=0, le=1000)]  # among the faces found, largest first
_Coordinate = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]
_Extent = Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]
# x, y, width, height in the upright photo's pixels: the face whose box overlaps it most.
Box = tuple[_Coordinate, _Coordinate, _Extent, _Extent]
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
    # For photos only: which face of each, and what to answer.
    face: FaceIndex = 0
    attributes_face: FaceIndex = 0
    face_box: Box | None = None  # given: chooses instead of face
    attributes_face_box: Box | None = None
    output: Output = "photo"
    render: Render | None = None


class SampleRequest(_Payload):
    model: ModelName
    image: ImageB64
    n: Annotated[int, Field(ge=1, le=MAX_BATCH)] = 8
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    temperature: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0
    face: FaceIndex = 0
    face_box: Box | None = None
    output: Output = "photo"
    render: Render | None = None


class NeutralizeRequest(_Payload):
    model: ModelName
    image: ImageB64
    face: FaceIndex = 0
    face_box: Box | None = None
    output: Output = "photo"
    render: Render | None = None


class InterpolateRequest(_Payload):
    model: ModelName
    a: ImageB64
    b: ImageB64
    steps: Annotated[int, Field(ge=2, le=MAX_BATCH)] = 8
    render: Render | None = None


# --- results ---------------------------------------------------------------------------------


class DomainCheck(_Payload):
    """How far each input image, as the model saw it, lies from the model's training images
    (model/domain.py): its reconstruction error's percentile among held-out ones'."""

    inputs: list[str]  # the request's image fields, in order ("image", "attributes")
    percentiles: list[float]  # 0-100, one per input; 100: worse than every held-out image
    out_of_domain: list[bool]  # percentile above threshold
    threshold: float  # e.g. 99
    trained_on: str  # what the model's training images are, e.g. "synthetic faces"


class TaskResult(_Payload):
    model: str
    checkpoint_sha256: str  # of the weights that produced it: what makes an answer reproducible
    elapsed_ms: float
    # None where no image went in (generate) or the checkpoint stores no reference.
    domain: DomainCheck | None = None


class EncodeResult(TaskResult):
    z: list[list[float]]  # posterior means, (B, z_dim)
    e: list[list[float]]  # (B, e_dim)


class FaceBox(_Payload):
    """A face found in a photo (photos.Face.to_dict): photo pixels, EXIF orientation applied."""

    box: list[float]  # x, y, width, height
    left_eye: list[float]
    right_eye: list[float]
    eyes_found: bool  # False: the eyes were placed from the box
    angle: float  # degrees of tilt of the detector pass that found it


class PhotoFaces(_Payload):
    """The faces found in one uploaded photo, largest first, and the one edited."""

    width: int  # the photo's size, upright
    height: int
    faces: list[FaceBox]
    used: int  # index into faces


class ImagesResult(TaskResult):
    images: list[PngB64]  # PNG, or JPEG where media_type says so
    seed: int | None = None  # the seed used, for sample
    rendering: Render | None = None  # how the edits were rendered; None: /generate (no input)
    media_type: str = "image/png"
    photos: dict[str, PhotoFaces] = {}  # by field name, for each upload taken as a photo


# --- a group: several jobs in one message ----------------------------------------------------


class GroupedJob(_Payload):
    id: str  # the job's own id: its result key, deliveries counter and journal entry
    task: str  # a TaskName from the API; a worker runs only its own model tasks
    kwargs: dict  # the task's request (REQUESTS[task]), checked when the job runs
    expires_at: float  # Unix time; a worker that gets to it later stores it as revoked


class JobGroup(_Payload):
    """The keyword arguments of GROUP_TASK."""

    jobs: Annotated[list[GroupedJob], Field(min_length=1, max_length=MAX_BATCH)]


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
