"""The picture pre-processing that the API, the worker, training and evaluation all apply, so a
model sees uploads exactly as it saw its training data. Pillow only: the API image has no numpy
or torch."""

from __future__ import annotations

from typing import cast

from PIL import Image, ImageOps

RESAMPLE = Image.Resampling.LANCZOS


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB. 16/32-bit greys are scaled, not clipped; transparent pixels
    become black, the background of the digits and the padding used elsewhere."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        grey = image.convert("F") if mode == "F" else image.convert("I")
        # A one-band image's extrema are (min, max) numbers; Pillow's return type also covers the
        # per-band pairs of multi-band images, which "F" and "I" are not.
        _, top = cast(tuple[float, float], grey.getextrema())
        if mode.startswith("I;16") or (mode == "I" and top > 255):
            scale = 1 / 257  # 0..65535 -> 0..255
        elif mode == "F" and top <= 1.0:
            scale = 255.0
        else:
            scale = 1.0
        # + 0.5 then the integer conversion's truncation rounds to nearest; L clips to 0..255.
        levels = grey.convert("F").point(lambda v: v * scale + 0.5)
        return levels.convert("I").convert("L").convert("RGB")
    if mode in ("P", "PA", "LA", "La", "RGBA", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return image.convert("RGB")


def fit(image: Image.Image, resolution: int) -> Image.Image:
    """RGB, shorter side resized to `resolution`, centre-cropped to a square."""
    image = to_rgb(image)
    if image.size != (resolution, resolution):
        image = ImageOps.fit(image, (resolution, resolution), RESAMPLE, centering=(0.5, 0.5))
    return image
