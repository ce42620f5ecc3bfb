"""Photo files to upload to a faces model: scenes with rendered faces at known places
(tests/utils/face_scenes.py), scikit-image's astronaut, a scene with no face, and the same
pictures as EXIF-rotated JPEGs."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from tests.utils.bursts import jpeg, photo_pixels
from tests.utils.face_scenes import RENDER, RENDER_ZOOM, Scene, astronaut, background, compose
from training.data.faces import align, render_face, sample_common, sample_expression

ORIENTATION = 0x0112


def one_face_scene() -> Scene:
    """480x360, one rendered face about 150 px across, which the detector finds."""
    return compose(np.random.default_rng(0), size=(360, 480), faces=1, face_px=(150, 180),
                   max_rotation=5)  # fmt: skip


def two_face_scene() -> Scene:
    """560x360, two rendered faces of different sizes, both found."""
    return compose(np.random.default_rng(101), size=(360, 560), faces=2, face_px=(110, 170),
                   max_rotation=5)  # fmt: skip


def no_face() -> np.ndarray:
    """320x240 textured background: no face in it."""
    return background(np.random.default_rng(0), 240, 320)


def phone_photo(seed: int = 0, size: tuple[int, int] = (4000, 3000), face_px: int = 700) -> bytes:
    """A phone-sized JPEG (12 megapixels, ~8 MiB, as tests.utils.bursts.photo_jpeg) with one
    rendered face `face_px` across in it, which the detector finds."""
    rng = np.random.default_rng(seed)
    pixels = photo_pixels(seed, size)
    face = render_face(align(sample_common(rng)), sample_expression(rng, 0), RENDER, RENDER_ZOOM)
    face = cv2.resize(face, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
    x, y = size[0] // 3, size[1] // 4
    pixels[y : y + face_px, x : x + face_px] = face
    return jpeg(pixels)


def astronaut_photo() -> np.ndarray:
    return astronaut()


def encode(pixels: np.ndarray, fmt: str = "PNG", orientation: int | None = None) -> bytes:
    """(H, W, 3) uint8 as a file. With `orientation` 6 (turn 90 degrees clockwise to display)
    the pixels are stored turned the other way, so the file displays as `pixels`."""
    image = Image.fromarray(pixels)
    params: dict = {"quality": 95} if fmt == "JPEG" else {}
    if orientation == 6:
        image = Image.fromarray(np.ascontiguousarray(np.rot90(pixels, 1)))  # counter-clockwise
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        params["exif"] = exif.tobytes()
    elif orientation is not None:
        raise ValueError("only orientation 6 is made here")
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), np.uint8)
