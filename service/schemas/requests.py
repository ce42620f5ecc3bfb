"""What clients send: the form fields and files of the upload routes, and the JSON body of
/generate."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from contract.tasks import MAX_BATCH, MAX_SEED, Box, FaceIndex, Latents, ModelName, Output, Render


def _split(value: object) -> object:
    return value.split(",") if isinstance(value, str) else value


# A form field "x,y,width,height" (pixels of the photo as displayed), read as contract.tasks.Box.
FormBox = Annotated[
    Box,
    BeforeValidator(_split),
    WithJsonSchema({"type": "string", "examples": ["120,40,200,200"]}),
]

ModelField = Annotated[
    ModelName | None, Field(description="a model from GET /models; the default when omitted")
]


class UploadFields(BaseModel):
    # Form fields arrive as strings; a typo in a field name is an error, not a silent default.
    model_config = ConfigDict(extra="forbid")

    model: ModelField = None


class EditFields(UploadFields):
    """For the routes that edit an uploaded picture."""

    render: Annotated[
        Render | None,
        Field(description="generator: the model's picture G(z, e); input: the uploaded picture "
              "with the edit's change, the generated pixels where the edit redraws (keeps what "
              "the model cannot draw); omitted: the model's default (`rendering` in GET /models)"),
    ] = None  # fmt: skip


class PhotoFields(EditFields):
    """For a faces model and an `image` that is a photo (not a picture at the model's
    resolution): which face to edit and what to answer (docs/photos.md)."""

    face: Annotated[
        FaceIndex, Field(description="which face of a photo to edit: 0 the largest, 1 the next")
    ] = 0
    face_box: Annotated[
        FormBox | None,
        Field(description="x,y,width,height in the photo's pixels: edit the face whose box "
              "overlaps it most (instead of `face`)"),
    ] = None  # fmt: skip
    output: Annotated[
        Output,
        Field(description="photo: the photo with the face edited, at its own size; face: the "
              "edited aligned face at the model's resolution"),
    ] = "photo"  # fmt: skip


class TransferFields(PhotoFields):
    strength: Annotated[
        float,
        Field(ge=0.0, le=1.0, description="0: the image's own e; 1: the attributes image's e"),
    ] = 1.0
    attributes_face: Annotated[
        FaceIndex, Field(description="which face of an attributes photo to read e from")
    ] = 0
    attributes_face_box: Annotated[
        FormBox | None, Field(description="as face_box, for the attributes photo")
    ] = None


class SampleFields(PhotoFields):
    n: Annotated[int, Field(ge=1, le=MAX_BATCH, description="how many variations")] = 8
    seed: Annotated[
        int | None, Field(ge=0, le=MAX_SEED, description="same seed, same images; drawn if omitted")
    ] = None
    temperature: Annotated[
        float, Field(gt=0.0, le=10.0, description="scale of the sampled target factors e")
    ] = 1.0


class InterpolateFields(EditFields):
    steps: Annotated[
        int, Field(ge=2, le=MAX_BATCH, description="images in the strip, both ends included")
    ] = 8


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelField = None
    z: Latents = Field(description="common factors, (B, z_dim)")
    e: Latents | None = Field(
        None, description="target factors, (B, e_dim); null: the reference e^r (neutral, plain)"
    )


# The files each upload route takes: (name, description, many).
FileSpec = tuple[tuple[str, str, bool], ...]

TRANSFER_FILES: FileSpec = (
    ("image", "the picture to edit; its common factors z (identity, the digit) are kept", False),
    ("attributes", "the picture whose target factors e (expression, style) are copied", False),
)
SAMPLE_FILES: FileSpec = (("image", "the picture whose z is kept while e is sampled", False),)
NEUTRALIZE_FILES: FileSpec = (
    ("image", "the picture to neutralise; its z is kept, e becomes the reference e^r", False),
)
INTERPOLATE_FILES: FileSpec = (
    ("a", "the picture whose z is kept, and where e starts", False),
    ("b", "the picture whose e is where the path ends", False),
)
ENCODE_FILES: FileSpec = (("images", f"1 to {MAX_BATCH} pictures", True),)
