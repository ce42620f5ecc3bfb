"""Uploaded bytes -> a clean RGB PNG at the model's resolution, with Pillow only.

The conversion is `contract.images.fit`, the one the model was trained with (`model/images.py`
re-exports it): RGB, 16/32-bit greys scaled rather than clipped, transparency over black,
shorter side resized with LANCZOS and centre-cropped. Added here for untrusted input: an
explicit format allow-list checked on the bytes (not the filename), a pixel cap checked before
decoding, EXIF orientation, the first frame of animations, and outputs rebuilt from raw pixels
so no metadata survives. `strip` puts a job's PNGs side by side for a PNG answer.

Large pictures are decoded at the size the model needs, not in full: a JPEG in libjpeg's draft
mode (decoded directly at 1/2, 1/4 or 1/8 scale), any other format reduced by an integer factor
(box filter) right after decoding, in both cases to no less than `REDUCING_GAP` times the model's
resolution on the shorter side, before the usual LANCZOS fit. Pictures smaller than that are
converted exactly as before; at most one full-size copy of an image is ever held, and
`decode_cost` tells from the header alone how much memory its decoding will take.

A photo for a faces model is not decoded here at all: `photo_size` checks its format and pixel
count from the header, and the route forwards its bytes to the worker, which finds the face.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from contract.images import fit, to_rgb  # the rules the model was trained with

# Decode or reduce large pictures to at least this multiple of the model's resolution before
# the LANCZOS fit: Pillow's own choice for thumbnails is 2; at 3 the result differs from a
# full-size fit by about one level in 255 (tests/service/test_images.py measures it).
REDUCING_GAP = 3
# Modes Image.reduce handles in place (RGBA and LA through premultiplied alpha); palettes are
# expanded to RGBA first, the rest (1-bit, 16-bit greys) converted to RGB at full size.
_REDUCIBLE = ("L", "RGB", "RGBA", "LA", "CMYK", "I", "F")
# Peak bytes per full-size pixel while decoding and reducing: Pillow stores RGB, CMYK, I and F
# in 4 bytes; RGBA also needs its premultiplied copy, a palette its RGBA expansion; the other
# modes go through to_rgb at full size (a 16-bit grey: I, F, F, I, L and RGB copies).
_BYTES_PER_PIXEL = {"L": 2, "P": 10, "RGB": 5, "CMYK": 5, "I": 5, "F": 5, "RGBA": 9, "LA": 9}
_DEFAULT_BYTES_PER_PIXEL = 24

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


def _open_checked(data: bytes, limits: Limits, label: str) -> tuple[Image.Image, str]:
    """The upload opened lazily (header read, no pixels) and its format, after the checks made
    before decompressing anything: not empty, an allowed format, not too many pixels."""
    if not data:
        raise ImageRejected(400, f"{label}: empty file")
    fmt = sniff_format(data, label)
    if fmt is None:
        raise ImageRejected(400, f"{label}: not a decodable image (PNG, JPEG, WebP, BMP, GIF)")
    try:
        image: Image.Image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(413, f"{label}: too many pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(400, f"{label}: cannot decode the {fmt} image ({exc})") from exc
    width, height = image.size
    if width * height > limits.max_pixels:
        image.close()
        raise ImageRejected(
            413, f"{label}: {width}x{height} pixels is over the limit of {limits.max_pixels}"
        )
    if width < 1 or height < 1:
        image.close()
        raise ImageRejected(400, f"{label}: empty image")
    return image, fmt


def decode(
    data: bytes, limits: Limits, label: str = "image", resolution: int | None = None
) -> Image.Image:
    """Validated bytes -> the first frame, decoded, EXIF orientation applied; with a
    `resolution`, decoded or reduced to no less than `REDUCING_GAP` times it."""
    image, fmt = _open_checked(data, limits, label)
    try:
        if resolution is not None and fmt == "JPEG":
            side = REDUCING_GAP * resolution
            image.draft(None, (side, side))  # picks the largest scale that keeps both >= side
        # Frame 0 is the one open() positions on; counting frames would decode them all.
        image.load()
        if resolution is not None:
            image = _reduce(image, resolution)
        image = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(413, f"{label}: too many pixels") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(400, f"{label}: truncated or corrupt {fmt} image ({exc})") from exc
    return image


def _reduce(image: Image.Image, resolution: int) -> Image.Image:
    """The decoded picture, reduced by the largest integer factor that keeps its shorter side
    at least `REDUCING_GAP` times the resolution (itself when that factor is 1)."""
    factor = min(image.size) // (REDUCING_GAP * resolution)
    if factor < 2:
        return image
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")  # reduce would not average palette indices
    elif image.mode not in _REDUCIBLE:
        image = to_rgb(image)
    return image.reduce(factor)


def photo_size(data: bytes, limits: Limits, label: str = "image") -> tuple[int, int]:
    """(width, height) of an upload as stored (before any EXIF turn), from its header alone:
    the checks `decode` makes before decompressing (format, pixel count), and none of its
    pixel work."""
    image, _ = _open_checked(data, limits, label)
    with image:
        width, height = image.size
    return width, height


def decode_cost(data: bytes, resolution: int, limits: Limits) -> int:
    """Bytes that decoding this upload for `resolution` holds at its peak, read from the header
    only; 0 for what `decode` refuses before decompressing (unknown formats, too many pixels),
    which takes no pixel memory."""
    try:
        if sniff_format(data) is None:
            return 0
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            width, height = image.size
            mode = image.mode
            fmt = image.format
    except (ImageRejected, Image.DecompressionBombError, UnidentifiedImageError, OSError):
        return 0
    except (SyntaxError, ValueError, EOFError):
        return 0
    if width * height > limits.max_pixels or width < 1 or height < 1:
        return 0
    if fmt == "JPEG":
        side = REDUCING_GAP * resolution
        scale = min(width // side, height // side)
        scale = next(s for s in (8, 4, 2, 1) if scale >= s) if scale >= 1 else 1
        width, height = -(-width // scale), -(-height // scale)
    per_pixel = _BYTES_PER_PIXEL.get(mode, _DEFAULT_BYTES_PER_PIXEL)
    return width * height * per_pixel


def to_png(image: Image.Image) -> bytes:
    """PNG bytes of the pixels alone: rebuilt from raw data so no EXIF, ICC or text chunk
    of an upload can reach an output."""
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    out = io.BytesIO()
    clean.save(out, format="PNG")
    return out.getvalue()


def prepare(data: bytes, resolution: int, limits: Limits, label: str = "image") -> bytes:
    """Upload bytes -> PNG bytes of an RGB (resolution x resolution) picture for the worker."""
    image = decode(data, limits, label, resolution)
    try:
        return to_png(fit(image, resolution))
    except (OSError, ValueError) as exc:
        raise ImageRejected(415, f"{label}: cannot convert its colour mode {image.mode}") from exc


def prepare_pixels(data: bytes, resolution: int, limits: Limits, label: str = "image") -> bytes:
    """Upload bytes -> the raw (resolution, resolution, 3) RGB pixels, row by row, as
    `prepare` would store them in a PNG: what the API queues for the worker (no encoding here,
    no decoding there; and no metadata can travel)."""
    image = decode(data, limits, label, resolution)
    try:
        return fit(image, resolution).tobytes()
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
