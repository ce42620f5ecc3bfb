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

# The Pillow-only rules shared with the API, which must not import torch: re-exported here.
from contract.images import RESAMPLE, fit, to_rgb

__all__ = [
    "RESAMPLE",
    "fit",
    "make_grid",
    "tensor_to_uint8",
    "to_pil",
    "to_rgb",
    "to_tensor",
    "uint8_to_tensor",
]


def uint8_to_tensor(array: np.ndarray) -> torch.Tensor:
    """(N, R, R, 3) uint8 -> (N, 3, R, R) float32 in [-1, 1]."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # memory-mapped datasets are read-only; torch wants to own it
        array = array.copy()
    x = torch.from_numpy(array).permute(0, 3, 1, 2).float()
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
