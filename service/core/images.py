"""Uploaded bytes -> a clean RGB PNG at the model's resolution, with Pillow only.

The conversion is `contract.images.fit`, the one the model was trained with (`model/images.py`
re-exports it): RGB, 16/32-bit greys scaled rather than clipped, transparency over black,
shorter side resized with LANCZOS and centre-cropped. Added here for untrusted input: an
explicit format allow-list checked on the bytes (not the filename), a pixel cap checked before
decoding, EXIF orientation, the first frame of animations, and outputs rebuilt from raw pixels
so no metadata survives. `strip` puts a job's PNGs side by side for a PNG answer.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from contract.images import fit  # the rules the model was trained with

# Pillow format names; only these plugins are ever asked to open an upload, so EPS (which
# would run Ghostscript on load), TIFF, PSD and the rest are never parsed.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")

_ALLOWED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
# Recognised so that the answer can name them (415) instead of calling them garbage (400).
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"8BPS", "PSD"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xffO\xffQ", "JPEG 2000"),
    (b"qoif", "QOI"),
    (b"<?xml", "XML/SVG"),
    (b"<svg", "SVG"),
)


# Pillow inflates a PNG's text chunks on open and keeps up to 64 MiB of them per image: 80
# zTXt chunks of 1 MiB of zeros fit in an 85 KB upload, so each request in flight could hold
# 64 MiB. The text is never used (outputs are rebuilt from pixels), so this process allows
# 1 MiB (Pillow's own cap on one chunk); more is a decoding error (400).
PngImagePlugin.MAX_TEXT_MEMORY = PngImagePlugin.MAX_TEXT_CHUNK


class ImageRejected(Exception):
    """An upload the service refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    max_pixels: int


def sniff_format(data: bytes, label: str = "image") -> str | None:
    """The allowed format the bytes start with, or None; raises 415 for a known other one."""
    for magic, name in _ALLOWED_MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        raise ImageRejected(415, f"{label}: {_unsupported('HEIF/AVIF')}")
    for magic, name in _OTHER_MAGIC:
        if data.startswith(magic):
            raise ImageRejected(415, f"{label}: {_unsupported(name)}")
    return None


def _unsupported(name: str) -> str:
    return f"{name} images are not accepted; send PNG, JPEG, WebP, BMP or GIF"


def decode(data: bytes, limits: Limits, label: str = "image") -> Image.Image:
    """Validated bytes -> the first frame, decoded, EXIF orientation applied."""
    if not data:
        raise ImageRejected(400, f"{label}: empty file")
    fmt = sniff_format(data, label)
    if fmt is None:
        raise ImageRejected(400, f"{label}: not a decodable image (PNG, JPEG, WebP, BMP, GIF)")
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(413, f"{label}: too many pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(400, f"{label}: cannot decode the {fmt} image ({exc})") from exc
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageRejected(
            413, f"{label}: {width}x{height} pixels is over the limit of {limits.max_pixels}"
        )
    if width < 1 or height < 1:
        raise ImageRejected(400, f"{label}: empty image")
    try:
        # Frame 0 is the one open() positions on; counting frames would decode them all.
        image.load()
        image = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(413, f"{label}: too many pixels") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(400, f"{label}: truncated or corrupt {fmt} image ({exc})") from exc
    return image


def to_png(image: Image.Image) -> bytes:
    """PNG bytes of the pixels alone: rebuilt from raw data so no EXIF, ICC or text chunk
    of an upload can reach an output."""
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    out = io.BytesIO()
    clean.save(out, format="PNG")
    return out.getvalue()


def prepare(data: bytes, resolution: int, limits: Limits, label: str = "image") -> bytes:
    """Upload bytes -> PNG bytes of an RGB (resolution x resolution) picture for the worker."""
    image = decode(data, limits, label)
    try:
        return to_png(fit(image, resolution))
    except (OSError, ValueError) as exc:
        raise ImageRejected(415, f"{label}: cannot convert its colour mode {image.mode}") from exc


def strip(pngs: list[bytes]) -> bytes:
    """Worker PNGs of one size side by side, as one PNG."""
    frames = [Image.open(io.BytesIO(p), formats=("PNG",)).convert("RGB") for p in pngs]
    w, h = frames[0].size
    row = Image.new("RGB", (w * len(frames), h))
    for i, frame in enumerate(frames):
        row.paste(frame, (i * w, 0))
    return to_png(row)
