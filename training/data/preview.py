"""Image grids of a prepared dataset, for a quick look and for the docs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.data.cache import PreparedDataset

GAP = 2  # pixels between images
LABEL_HEIGHT = 14


def tile(images: np.ndarray, cols: int, background: int = 255) -> np.ndarray:
    """(N, H, W, 3) uint8 -> one (rows*(H+GAP)-GAP, cols*(W+GAP)-GAP, 3) uint8 mosaic."""
    n, h, w, _ = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP, 3), background, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + GAP) : r * (h + GAP) + h, c * (w + GAP) : c * (w + GAP) + w] = image
    return out


def _labelled(block: np.ndarray, label: str) -> np.ndarray:
    strip = Image.new("RGB", (block.shape[1], LABEL_HEIGHT), (255, 255, 255))
    ImageDraw.Draw(strip).text((1, 1), label, fill=(0, 0, 0), font=ImageFont.load_default(11))
    return np.concatenate([np.asarray(strip), block], axis=0)


def split_grid(dataset: PreparedDataset, splits: list[str], rows: int, cols: int) -> np.ndarray:
    """`rows` rows of the first images of each split, one labelled block per split."""
    blocks = []
    for split in splits:
        images = np.asarray(dataset[split].images[: rows * cols])
        blocks.append(_labelled(tile(images, cols), f"{split} ({len(dataset[split]):,})"))
        blocks.append(np.full((GAP * 3, blocks[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(blocks[:-1], axis=0)


def class_grid(dataset: PreparedDataset, split: str, cols: int) -> np.ndarray:
    """One labelled row per class present in `split`: its first `cols` images."""
    data = dataset[split]
    labels = np.asarray(data.labels)
    blocks = []
    for index, name in enumerate(dataset.class_names):
        chosen = np.flatnonzero(labels == index)[:cols]
        if len(chosen):
            blocks.append(_labelled(tile(np.asarray(data.images[chosen]), cols), name))
    return np.concatenate(blocks, axis=0)


def save_grid(grid: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(grid)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    image.save(path, optimize=True)
    return path
