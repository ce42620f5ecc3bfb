"""Pictures of what a model makes, for people to look at during and after training.

- reconstructions: originals; G(z, e) of their posterior means; G(z, e^r), the neutralised image;
- samples: each row one image's z, each column one e drawn as /sample draws it, from a Gaussian
  fitted to the encoded e of unlabelled training images, shared down the column (Fig. 4);
  during training the fit is redone at each grid on fewer images (training/prior.py);
- transfers: top row gives e (attributes A), left column gives z (image B), cell = G(z_B, e_A)
  (Fig. 5), or that edit rendered onto B (`render="input"`, model/rendering.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from model.images import make_grid, to_pil, uint8_to_tensor
from model.inference import ReferenceVAE
from model.rendering import RenderMode


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


def transfers(
    model: ReferenceVAE,
    images: np.ndarray,
    attributes: np.ndarray,
    render: RenderMode = "generator",
) -> Image.Image:
    x_b, x_a = uint8_to_tensor(images), uint8_to_tensor(attributes)
    z_b, e_b = model.encode_tensor(x_b)
    _, e_a = model.encode_tensor(x_a)
    n_a = len(attributes)
    # Every row's edits in one batch: row i is z of image i under each attributes' e.
    base = torch.arange(len(images)).repeat_interleave(n_a)
    edits = model.render_edit(x_b, z_b, e_b, (z_b[base], e_a.repeat(len(images), 1)), base, render)
    cells = [_blank(model.resolution), *to_pil(x_a)]
    for i in range(len(images)):
        cells += to_pil(x_b[i : i + 1]) + to_pil(edits[i * n_a : (i + 1) * n_a])
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


def main(argv: list[str] | None = None) -> None:
    """`python -m training.grids models/faces --render input --out F.png`: the transfer grid of
    a checkpoint on held-out images (`eval_score`, the first 8 as B, the next 8 as A)."""
    import argparse

    from model import load_model
    from model.rendering import RENDER_MODES
    from training.data import PreparedDataset
    from training.examples import SPLIT, data_dir

    parser = argparse.ArgumentParser(prog="python -m training.grids", description=main.__doc__)
    parser.add_argument("checkpoint", type=Path, help="an inference checkpoint directory")
    parser.add_argument("--render", choices=RENDER_MODES, default="generator")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--scale", type=int, default=1, help="enlarge by this factor (nearest)")
    args = parser.parse_args(argv)
    model = load_model(args.checkpoint)
    images = np.asarray(PreparedDataset.open(data_dir(args.checkpoint))[SPLIT].images[:16])
    picture = transfers(model, images[:8], images[8:16], args.render)
    if args.scale > 1:
        picture = picture.resize(
            (picture.width * args.scale, picture.height * args.scale), Image.Resampling.NEAREST
        )
    picture.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
