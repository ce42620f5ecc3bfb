"""Image files for the service's tests: good ones in every mode, and hostile ones."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def png(size: tuple[int, int] = (40, 30), color=(200, 30, 30), mode: str = "RGB") -> bytes:
    return encode(Image.new(mode, size, color))


def halves(size: tuple[int, int], left, right, mode: str = "RGB") -> Image.Image:
    """Left half one colour, right half another: shows a rotation or a crop."""
    image = Image.new(mode, size, left)
    image.paste(Image.new(mode, (size[0] // 2, size[1]), right), (size[0] - size[0] // 2, 0))
    return image


def jpeg_rotated(orientation: int = 6) -> bytes:
    """A 64x32 JPEG, left red, right blue, whose EXIF says to rotate it (6: 90° clockwise)."""
    image = halves((64, 32), (255, 0, 0), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif.tobytes(), quality=95)


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)  # red


def palette_with_transparency() -> bytes:
    """A palette PNG: index 0 transparent (white in the palette), index 1 opaque green."""
    image = Image.new("P", (32, 32), 0)
    image.putpalette([255, 255, 255, 0, 255, 0] + [0, 0, 0] * 254)
    image.paste(1, (16, 0, 32, 32))
    return encode(image, transparency=0)


def grey16(levels: tuple[int, ...] = (0, 1000, 30000, 65535)) -> bytes:
    """A 16-bit greyscale PNG, one column per level, 32 px high."""
    image = Image.new("I;16", (len(levels) * 8, 32))
    # putdata, not paste: pasting an int into I;16 repeats its low byte (Pillow 13).
    image.putdata([levels[x // 8] for _ in range(32) for x in range(len(levels) * 8)])
    return encode(image)


def animated_gif(colors=((255, 0, 0), (0, 255, 0), (0, 0, 255))) -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in colors]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


def with_metadata() -> bytes:
    """A PNG with a text chunk and EXIF, none of which may reach an output."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "secret-marker")
    exif = Image.Exif()
    exif[0x010E] = "secret-marker"  # ImageDescription
    return encode(Image.new("RGB", (32, 32), (10, 20, 30)), pnginfo=info, exif=exif.tobytes())


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG declaring width x height pixels: a decompression bomb as far as a decoder
    that trusts the header goes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def truncated_png() -> bytes:
    data = encode(Image.effect_noise((64, 64), 50).convert("RGB"))
    return data[: len(data) // 2]


def tiff() -> bytes:
    return encode(Image.new("RGB", (16, 16), (1, 2, 3)), "TIFF")


EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n"
    b"newpath 0 0 moveto 16 16 lineto stroke showpage\n%%EOF\n"
)


def png_b64(size: tuple[int, int] = (32, 32)) -> str:
    import base64

    return base64.b64encode(png(size)).decode()


def psd(size: tuple[int, int] = (16, 16)) -> bytes:
    """A minimal valid Photoshop file (Pillow reads it): RGB, 8 bits, raw pixel data."""
    w, h = size
    # version 1, 3 channels, height, width, 8 bits, RGB
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, h, w, 8, 3)
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, image resources, layers: empty
    return header + sections + struct.pack(">H", 0) + bytes(3 * w * h)  # compression 0: raw


def png_text_bomb(chunks: int = 1, inflated: int = 100 * 1024 * 1024) -> bytes:
    """A valid 32x32 PNG carrying `chunks` zTXt chunks, each `inflated` bytes once
    decompressed (100 MB squeezed into ~100 KB by default); several chunks of just under
    1 MiB each stay below Pillow's per-chunk cap and add up instead."""
    text = zlib.compress(b"\0" * inflated, 9)
    good = png((32, 32))
    bombs = b"".join(_chunk(b"zTXt", b"Comment%d\0\0" % i + text) for i in range(chunks))
    return good[:33] + bombs + good[33:]  # after the 8-byte signature and the 25-byte IHDR


def long_animation(frames: int = 1000) -> bytes:
    """A 32x32 GIF of `frames` distinct frames (identical neighbours would be merged)."""
    colors = [(i % 256, (i * 7) % 256, (i // 256) * 60) for i in range(frames)]
    return animated_gif(colors)
