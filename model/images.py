"""Image pre- and post-processing: the one place that maps pictures to tensors and back.

Tensors are (B, 3, R, R) float32 in [-1, 1] (the generator's tanh range); pictures are RGB PIL
images of any size, or (N, R, R, 3) uint8 arrays as stored by the prepared datasets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

RESAMPLE = Image.Resampling.LANCZOS


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited over black (the digits' background)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # 16-bit and float pictures: scale to 8 bits instead of clipping at 255.
        arr = np.asarray(image, dtype=np.float64)
        hi = 65535.0 if arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    return image.convert("RGB")


def fit(image: Image.Image, resolution: int) -> Image.Image:
    """RGB, shorter side resized to `resolution`, centre-cropped to a square."""
    image = to_rgb(image)
    w, h = image.size
    if (w, h) == (resolution, resolution):
        return image
    scale = resolution / min(w, h)
    new_w, new_h = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    image = image.resize((new_w, new_h), RESAMPLE)
    left, top = (new_w - resolution) // 2, (new_h - resolution) // 2
    return image.crop((left, top, left + resolution, top + resolution))


def uint8_to_tensor(array: np.ndarray) -> torch.Tensor:
    """(N, R, R, 3) uint8 -> (N, 3, R, R) float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float()
    return x.div_(127.5).sub_(1.0)


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, R, R) in [-1, 1] -> (N, R, R, 3) uint8."""
    x = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def to_tensor(images: Sequence[Image.Image], resolution: int) -> torch.Tensor:
    """Pictures of any size and mode -> (B, 3, R, R) in [-1, 1]."""
    if not images:
        raise ValueError("no images given")
    arrays = [np.asarray(fit(im, resolution), dtype=np.uint8) for im in images]
    return uint8_to_tensor(np.stack(arrays))


def to_pil(x: torch.Tensor) -> list[Image.Image]:
    """(B, 3, R, R) in [-1, 1] -> RGB pictures."""
    return [Image.fromarray(a, mode="RGB") for a in tensor_to_uint8(x)]


def make_grid(
    images: Sequence[Image.Image], columns: int | None = None, pad: int = 2
) -> Image.Image:
    """Pictures of one size tiled row by row on a grey background."""
    if not images:
        raise ValueError("no images given")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    w, h = images[0].size
    grid = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + pad) + pad), (128, 128, 128))
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        grid.paste(to_rgb(im), (pad + c * (w + pad), pad + r * (h + pad)))
    return grid
