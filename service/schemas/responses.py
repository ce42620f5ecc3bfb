"""What clients get back. Every result carries what makes it reproducible: the model, the
checkpoint's SHA-256 and the seed used (null where no randomness is involved)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from contract.tasks import Render
from service.core.jobs import JobKind, JobStatus


class DomainPublic(BaseModel):
    inputs: list[str] = Field(description="the request's image fields, in order")
    percentiles: list[float] = Field(
        description="each input's reconstruction error |x - G(z, e)| as a percentile (0-100) "
        "of held-out images of the model's training data; 100: worse than all of them"
    )
    out_of_domain: list[bool] = Field(description="each input's percentile above `threshold`")
    threshold: float = Field(description="the percentile above which an input is out of domain")
    trained_on: str = Field(description="the model's training images, e.g. 'synthetic faces'")


class _Reproducible(BaseModel):
    job_id: str
    model: str
    checkpoint_sha256: str
    seed: int | None = None
    elapsed_ms: float = Field(description="time the worker spent on the job")
    domain: DomainPublic | None = Field(
        None,
        description="how far the input images lie from the model's training data; null for "
        "/generate (no image) or a checkpoint without a stored reference",
    )


class FacePublic(BaseModel):
    box: list[float] = Field(description="x, y, width, height in the upright photo's pixels")
    left_eye: list[float]
    right_eye: list[float]
    eyes_found: bool = Field(description="false: the eyes were placed from the box")
    angle: float = Field(description="degrees of tilt of the detector pass that found it")


class PhotoFacesPublic(BaseModel):
    width: int = Field(description="the photo's size, EXIF orientation applied")
    height: int
    faces: list[FacePublic] = Field(description="every face found, largest first")
    used: int = Field(description="the index of the face edited (or read from)")


class _Pictures(_Reproducible):
    rendering: Render | None = Field(
        None,
        description="how the edit was rendered (generator or input: the request's `render`, else "
        "the model's default); null for /generate",
    )
    media_type: str = Field(
        "image/png", description="of the images: image/png, or image/jpeg for a JPEG photo"
    )
    photos: dict[str, PhotoFacesPublic] = Field(
        {}, description="by upload field, for each upload taken as a photo: the faces found"
    )


class ImagePublic(_Pictures):
    image: str = Field(
        description="base64 PNG at the model's resolution; for a photo with output=photo, the "
        "photo with the face edited, at its own size (media_type)"
    )


class ImagesPublic(_Pictures):
    images: list[str] = Field(
        description="base64 PNGs at the model's resolution; for a photo with output=photo, one "
        "image: the variations pasted into the photo, side by side (media_type)"
    )


class EncodePublic(_Reproducible):
    z: list[list[float]] = Field(description="posterior means of the common factors, (B, z_dim)")
    e: list[list[float]] = Field(description="posterior means of the target factors, (B, e_dim)")


JobResultPublic = ImagePublic | ImagesPublic | EncodePublic


class JobAccepted(BaseModel):
    job_id: str
    status_url: str


class JobErrorPublic(BaseModel):
    status: int = Field(description="the HTTP status the synchronous request would have had")
    detail: str


class JobStatusPublic(BaseModel):
    job_id: str
    kind: JobKind
    status: JobStatus
    result: JobResultPublic | None = None
    error: JobErrorPublic | None = None


class ModelPublic(BaseModel):
    name: str
    resolution: int
    z_dim: int
    e_dim: int
    variant: str
    method: str = Field(description="how it was trained, e.g. 'sRb-VAE' or "
                        "'Rb-VAE + latent domain adversary'")  # fmt: skip
    checkpoint_sha256: str
    face_zoom: float | None = Field(
        None,
        description="a faces model's framing, which faces found in photos are aligned to; null: "
        "the model takes pictures at its own framing only (no photos)",
    )
    rendering: Render = Field(
        "generator",
        description="how edits are rendered when a request does not say (`render`): generator, "
        "the model's picture; input, the uploaded picture with the edit's change",
    )
    card: dict = Field(description="training data, command and metrics from the model card")


class ModelsPublic(BaseModel):
    default: str
    models: list[ModelPublic]


class ExamplePublic(BaseModel):
    label: str = Field(description="its class in the dataset: an expression, a digit")
    url: str = Field(description="the PNG, at the model's resolution")
    index: int = Field(description="its row in the held-out split")


class ExamplesPublic(BaseModel):
    model: str
    source: str = Field(description="the dataset, e.g. 'faces'")
    split: str = Field(description="the held-out split the images come from, e.g. 'eval_score'")
    description: str
    examples: list[ExamplePublic]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    workers: int
    models: list[str]


class ErrorPublic(BaseModel):
    detail: str | list = Field(description="a message, or pydantic's list of field errors")
