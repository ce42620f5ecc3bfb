"""Photos for the faces models, in the worker: a photo as uploaded (its bytes from Redis, or
inline: contract.tasks.PHOTO_REF_PREFIX, PHOTO_PREFIX) -> its face aligned at the model's
resolution (what the model sees) -> the edited crop pasted back into the photo at the photo's
own size, encoded as the answer.

The steps are kept apart so that anything else that wants the model's input (the crop) takes it
from the first: `read_photo` (decode, EXIF orientation, detect, select, align), then `pasted`
and `encode` (or `strip` for several edits). The photo bytes are untrusted: formats are
allow-listed and the pixel count is checked from the header before anything is decompressed.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from contract.errors import InvalidPayload, NoFaceFound, UnreadableImage
from contract.images import to_rgb
from contract.tasks import Box, FaceBox, PhotoFaces
from photos import Aligned, Face, NoFaceError, align_face, detect_faces, paste_back, select_face

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")  # as the API's allow-list
# The worker's own bounds on a message's photo, above the API's defaults (10 MiB files, 25
# megapixels): a photo holds about 3 bytes a pixel several times over while it is edited.
MAX_PHOTO_BYTES = 32 * 1024 * 1024
MAX_PHOTO_PIXELS = 50_000_000
# A /sample strip of n edited photos is made smaller than this, each frame alike, rather than
# refused: 8 variations of a 12-megapixel photo would be 96 megapixels.
MAX_STRIP_PIXELS = 48_000_000
JPEG_MAX_SIDE = 65_500  # libjpeg's limit is 65,535 pixels a side
JPEG_QUALITY = 95
# Photos edited at once per process: one 12-megapixel JPEG read, pasted into and encoded took
# 138 MiB at its peak (measured), and detection is CPU-bound.
PHOTO_SLOTS = threading.BoundedSemaphore(2)


@dataclass(frozen=True)
class Photo:
    """One uploaded photo, read: upright pixels, the faces found, the one aligned."""

    field: str  # the upload's form field, named in errors and in the answer
    pixels: np.ndarray  # (H, W, 3) uint8 RGB, EXIF orientation applied
    faces: list[Face]  # largest first
    used: int
    aligned: Aligned  # .crop (R, R, 3) uint8: the model's input
    jpeg: bool  # uploaded as JPEG: answered as JPEG

    def described(self) -> PhotoFaces:
        h, w = self.pixels.shape[:2]
        faces = [FaceBox.model_validate(f.to_dict()) for f in self.faces]
        return PhotoFaces(width=w, height=h, faces=faces, used=self.used)


def photo_bytes(data: str, field: str) -> bytes:
    """The base64 after PHOTO_PREFIX -> the file's bytes, within MAX_PHOTO_BYTES."""
    if len(data) > MAX_PHOTO_BYTES * 4 // 3 + 4:
        raise InvalidPayload(f"{field}: the photo is over {MAX_PHOTO_BYTES} bytes")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPayload(f"{field}: not valid base64") from None


def decode_photo(raw: bytes, field: str) -> tuple[np.ndarray, bool]:
    """File bytes -> ((H, W, 3) uint8 RGB upright, whether it is a JPEG)."""
    if len(raw) > MAX_PHOTO_BYTES:
        raise InvalidPayload(f"{field}: the photo is over {MAX_PHOTO_BYTES} bytes")
    try:
        with Image.open(io.BytesIO(raw), formats=ALLOWED_FORMATS) as opened:
            w, h = opened.size
            if w * h > MAX_PHOTO_PIXELS:
                raise InvalidPayload(f"{field}: {w}x{h} pixels is over {MAX_PHOTO_PIXELS}")
            jpeg = opened.format == "JPEG"
            opened.load()
            upright = ImageOps.exif_transpose(opened)
            return np.asarray(to_rgb(upright), np.uint8), jpeg
    except InvalidPayload:
        raise
    except Image.DecompressionBombError:
        raise InvalidPayload(f"{field}: too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnreadableImage(f"{field}: truncated or corrupt image ({exc})") from None


def read_photo(raw: bytes, field: str, resolution: int, zoom: float, face: int | Box = 0) -> Photo:
    """A photo file's bytes -> the photo with one face aligned at `resolution` with the
    training framing `zoom`: face number `face` (largest first), or the one whose box overlaps
    the box `face` (x, y, width, height) most. 422 when no face is found, fewer than asked
    for, or none in the box."""
    pixels, jpeg = decode_photo(raw, field)
    faces = detect_faces(pixels)
    if not faces:
        raise NoFaceFound(f"no face was found in the photo uploaded as {field!r}")
    if isinstance(face, tuple):
        box = face
        try:
            face = faces.index(select_face(faces, box=box))
        except NoFaceError:
            raise NoFaceFound(
                f"no face was found inside the box {list(box)} in the photo uploaded as {field!r}"
            ) from None
    elif face >= len(faces):
        raise InvalidPayload(
            f"{field}: face {face} was asked for, but {len(faces)} were found (0 is the largest)"
        )
    aligned = align_face(pixels, faces[face], resolution, zoom)
    return Photo(field, pixels, faces, face, aligned, jpeg)


def pasted(photo: Photo, edited: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the photo with its aligned face replaced by `edited` (R, R, 3)."""
    return paste_back(photo.pixels, photo.aligned.matrix, edited)


def strip(frames: Iterable[np.ndarray], n: int, max_pixels: int = MAX_STRIP_PIXELS) -> np.ndarray:
    """n frames of one size side by side, each made smaller (area average) as it comes where
    the strip would be over `max_pixels` or wider than a JPEG can be."""
    placed: list[np.ndarray] = []
    for frame in frames:
        h, w = frame.shape[:2]
        scale = min(1.0, math.sqrt(max_pixels / (n * w * h)), JPEG_MAX_SIDE / (n * w))
        if scale < 1.0:
            size = (max(1, math.floor(w * scale)), max(1, math.floor(h * scale)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        placed.append(frame)
    return np.concatenate(placed, axis=1)


def encode(array: np.ndarray, jpeg: bool) -> tuple[str, str]:
    """(H, W, 3) uint8 -> (base64 of the file, its media type): JPEG (quality 95, no chroma
    subsampling) for a JPEG upload, PNG otherwise; no metadata, the pixels upright."""
    out = io.BytesIO()
    image = Image.fromarray(array)
    if jpeg and max(array.shape[:2]) <= JPEG_MAX_SIDE:
        image.save(out, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        media_type = "image/jpeg"
    else:
        image.save(out, format="PNG", compress_level=1)  # speed over size: lossless either way
        media_type = "image/png"
    return base64.b64encode(out.getvalue()).decode("ascii"), media_type
