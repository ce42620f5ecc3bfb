"""Pictures of what a model makes, for people to look at during and after training.

- reconstructions: originals; G(z, e) of their posterior means; G(z, e^r), the neutralised image;
- samples: each row one image's z, each column one e ~ N(0, I) shared down the column (Fig. 4);
- transfers: top row gives e (attributes A), left column gives z (image B), cell = G(z_B, e_A)
  (Fig. 5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from model.images import make_grid, to_pil, uint8_to_tensor
from model.inference import ReferenceVAE


def _blank(resolution: int) -> Image.Image:
    return Image.new("RGB", (resolution, resolution), (255, 255, 255))


def reconstructions(model: ReferenceVAE, images: np.ndarray) -> Image.Image:
    x = uint8_to_tensor(images)
    z, e = model.encode_tensor(x)
    rows = [to_pil(x), to_pil(model.generate_tensor(z, e)), to_pil(model.generate_tensor(z, None))]
    return make_grid([im for row in rows for im in row], columns=len(images))


def samples(
    model: ReferenceVAE, images: np.ndarray, columns: int = 8, seed: int = 0
) -> Image.Image:
    x = uint8_to_tensor(images)
    z, _ = model.encode_tensor(x)
    e = model.prior.draw(columns, torch.Generator().manual_seed(seed))  # as /sample draws e
    cells: list[Image.Image] = []
    for i in range(len(images)):
        cells += to_pil(x[i : i + 1])
        cells += to_pil(model.generate_tensor(z[i : i + 1].expand(columns, -1), e))
    return make_grid(cells, columns=columns + 1)


def transfers(model: ReferenceVAE, images: np.ndarray, attributes: np.ndarray) -> Image.Image:
    x_b, x_a = uint8_to_tensor(images), uint8_to_tensor(attributes)
    z_b, _ = model.encode_tensor(x_b)
    _, e_a = model.encode_tensor(x_a)
    n_a = len(attributes)
    cells = [_blank(model.resolution), *to_pil(x_a)]
    for i in range(len(images)):
        cells += to_pil(x_b[i : i + 1])
        cells += to_pil(model.generate_tensor(z_b[i : i + 1].expand(n_a, -1), e_a))
    return make_grid(cells, columns=n_a + 1)


def write_grids(model: ReferenceVAE, images: np.ndarray, out_dir: Path, tag: str) -> list[Path]:
    """All three grids from the first 16 of `images` (8 as B, 8 as A), as PNG files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    b, a = np.asarray(images[:8]), np.asarray(images[8:16])
    paths = []
    for kind, picture in (
        ("reconstructions", reconstructions(model, b)),
        ("samples", samples(model, b)),
        ("transfers", transfers(model, b, a)),
    ):
        path = out_dir / f"{kind}-{tag}.png"
        picture.save(path)
        paths.append(path)
    return paths
