"""Task payloads in and out: pydantic validation, image decoding (raw pixels or base64 PNG),
PNG encoding (written here: the answers' pictures are tiny, and Pillow's set-up was most of
the cost).

The API has already decoded, validated and resized uploads, but a message on the queue is
still untrusted input: decoding accepts PNG only, at exactly the model's resolution, checked
from the header before any pixel is decompressed, no larger in bytes than such a picture can
be, and with at most 1 MiB of text chunks. So one image holds at most a few times its pixels
in memory, and a task's image work is bounded by its batch size and the model's resolution.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, PngImagePlugin, UnidentifiedImageError
from pydantic import BaseModel, ValidationError

from contract.errors import InvalidPayload
from contract.tasks import RAW_RGB_PREFIX
from model import images as imageio

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 2 * 1024 * 1024  # whatever the resolution
# Pillow keeps up to 64 MiB of a PNG's inflated text chunks per image (a 100 KB zTXt bomb
# fills it); pictures here have no use for text, so 1 MiB (one chunk's worth) is the cap, as
# in the API.
PngImagePlugin.MAX_TEXT_MEMORY = PngImagePlugin.MAX_TEXT_CHUNK


def max_png_bytes(resolution: int) -> int:
    """The largest PNG of a (resolution x resolution) picture: 16-bit RGBA stored without
    compression (8 bytes a pixel and a filter byte a row), plus 64 KiB for other chunks."""
    return min(MAX_PNG_BYTES, resolution * (resolution * 8 + 1) + 64 * 1024)


def parse(schema: type[BaseModel], args: tuple, kwargs: dict) -> BaseModel:
    """kwargs -> the request schema, or InvalidPayload naming each bad field."""
    if args:
        raise InvalidPayload("the payload must be sent as keyword arguments, not positionally")
    try:
        return schema.model_validate(kwargs)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise InvalidPayload(f"invalid {schema.__name__}: {problems}") from None


def decode_image(data: str, resolution: int, field: str = "image") -> np.ndarray:
    """A payload's image (contract.tasks.ImageB64: raw pixels or base64 PNG) -> (R, R, 3)
    uint8."""
    if data.startswith(RAW_RGB_PREFIX):
        return decode_raw(data[len(RAW_RGB_PREFIX) :], resolution, field)
    return decode_png(data, resolution, field)


def _unbase64(data: str, field: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPayload(f"{field}: not valid base64") from None


def decode_raw(data: str, resolution: int, field: str = "image") -> np.ndarray:
    """base64 of (R, R, 3) uint8 pixels -> that array; its length must be exactly that."""
    size = resolution * resolution * 3
    if len(data) != 4 * -(-size // 3):
        raise InvalidPayload(
            f"{field}: raw pixels must be {resolution}x{resolution}x3 bytes, base64-encoded"
        )
    raw = _unbase64(data, field)
    return np.frombuffer(raw, dtype=np.uint8).reshape(resolution, resolution, 3)


def decode_png(data: str, resolution: int, field: str = "image") -> np.ndarray:
    """base64 PNG -> (R, R, 3) uint8."""
    limit = max_png_bytes(resolution)
    if len(data) > limit * 4 // 3 + 4:
        raise InvalidPayload(
            f"{field}: larger than {limit} bytes, more than a {resolution}x{resolution} PNG takes"
        )
    raw = _unbase64(data, field)
    if not raw.startswith(PNG_SIGNATURE):
        raise InvalidPayload(f"{field}: not a PNG image")
    try:
        with Image.open(io.BytesIO(raw), formats=["PNG"]) as im:
            if im.size != (resolution, resolution):
                raise InvalidPayload(
                    f"{field}: {im.size[0]}x{im.size[1]} image, the model takes "
                    f"{resolution}x{resolution} (the API resizes uploads)"
                )
            im.load()
            rgb = imageio.to_rgb(im)
    except InvalidPayload:
        raise
    except Image.DecompressionBombError:
        raise InvalidPayload(
            f"{field}: far larger than the model's {resolution}x{resolution}"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InvalidPayload(f"{field}: undecodable or truncated PNG") from None
    return np.asarray(rgb, dtype=np.uint8)


def decode_batch(images: Sequence[str], resolution: int, field: str = "images") -> torch.Tensor:
    """Payload images -> (B, 3, R, R) in [-1, 1]."""
    arrays = [decode_image(d, resolution, f"{field}[{i}]") for i, d in enumerate(images)]
    return imageio.uint8_to_tensor(np.stack(arrays))


def decode_fields(images: dict[str, str], resolution: int) -> torch.Tensor:
    """{field name: payload image} -> (B, 3, R, R) in [-1, 1], in the dict's order."""
    arrays = [decode_image(data, resolution, field) for field, data in images.items()]
    return imageio.uint8_to_tensor(np.stack(arrays))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(rows: np.ndarray) -> str:
    """(H, 1 + 3W) uint8 rows, each a filter byte (0) and its RGB pixels -> base64 PNG."""
    h, w = rows.shape[0], (rows.shape[1] - 1) // 3
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, not interlaced
    # Level 1: these images are tiny and speed matters more.
    data = zlib.compress(rows.tobytes(), 1)
    png = PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    return base64.b64encode(png).decode("ascii")


def _rows(arrays: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, H, 1 + 3W): PNG's rows, filter type 0 (none)."""
    b, h, w, _ = arrays.shape
    rows = np.zeros((b, h, 1 + 3 * w), np.uint8)
    rows[:, :, 1:] = arrays.reshape(b, h, 3 * w)
    return rows


def encode_png(array: np.ndarray) -> str:
    """(H, W, 3) uint8 -> base64 PNG. Written here, not by Pillow, whose encoder costs three
    times as much for a model's 32x32 picture (59 against 21 us), most of it set-up. The
    file is no larger: unfiltered rows at level 1 made the digits' answers 10% smaller."""
    return _png(_rows(array[None])[0])


def encode_batch(x: torch.Tensor) -> list[str]:
    """(B, 3, R, R) in [-1, 1] -> base64 PNGs."""
    return [_png(rows) for rows in _rows(imageio.tensor_to_uint8(x))]


def latents(rows: list[list[float]], dim: int, field: str) -> torch.Tensor:
    """JSON rows -> (B, dim) float32, every row the right length and finite."""
    bad = [i for i, r in enumerate(rows) if len(r) != dim]
    if bad:
        raise InvalidPayload(f"{field}: every row must have {dim} values (rows {bad[:5]} do not)")
    t = torch.tensor(rows, dtype=torch.float32)
    if not torch.isfinite(t).all():
        raise InvalidPayload(f"{field}: contains NaN or infinite values")
    return t
