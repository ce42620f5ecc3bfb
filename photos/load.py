"""Reading a photo: EXIF orientation applied, any Pillow mode converted to RGB."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from contract.images import to_rgb


def load_photo(source: str | Path | bytes | BinaryIO, max_side: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB, upright as its EXIF orientation tag says. With max_side, a JPEG is
    decoded at the smallest power-of-two reduction whose longer side is still >= max_side."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    with Image.open(source) as opened:
        if max_side is not None:
            opened.draft("RGB", _draft_size(opened.size, max_side))
        upright = ImageOps.exif_transpose(opened)
        return np.asarray(to_rgb(upright), np.uint8)


def _draft_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    w, h = size
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))
