"""Digit style (paper 5.1, A.3.1): MNIST edge images, and their width/colour/size transforms.

Every digit is upscaled to 64x64 and reduced to its boundaries. The reference set is half of the
MNIST training images untransformed (white edges on black); the unlabelled set is the other half,
each image transformed twice with a random stroke width k, colour c_hat and scale s; the two
evaluation splits are disjoint halves of the MNIST test set, transformed once each. Builds at
other resolutions resize the 64x64 result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.cache import DatasetWriter, Item
from training.data.mnist import MNIST_MD5, load_mnist
from training.data.parallel import ordered_map

log = logging.getLogger(__name__)

SIZE = 64  # paper A.3.1: digits are upscaled to 64x64 before edge detection
MAX_KERNEL = 10  # dilation kernel side k ~ U{1..10}
MIN_SCALE = 0.5  # downscale factor s ~ U[0.5, 1]
EDGE_GAIN = 2.0  # Sobel magnitude of a 0-to-1 step is 1 at most; x2 makes strokes solid white
FACTOR_NAMES = ["width", "scale", "colour_r", "colour_g", "colour_b"]
CLASS_NAMES = [str(d) for d in range(10)]
# Factors of an untransformed digit: k = 1, s = 1, achromatic. The reference images are white
# (c = (1, 1, 1)), unlike an unlabelled digit with c_hat = (1/3, 1/3, 1/3), which is grey.
REFERENCE_FACTORS = np.array([0.0, 1.0, 1 / 3, 1 / 3, 1 / 3], np.float32)


@dataclass(frozen=True)
class Style:
    kernel: int  # k in {1, ..., 10}
    colour: tuple[float, float, float]  # c_hat, on the simplex (sums to 1)
    scale: float  # s in [0.5, 1]

    def factors(self) -> np.ndarray:
        """(5,) float32 in [0, 1]: width (k-1)/9, scale (s-0.5)/0.5, c_hat."""
        width = (self.kernel - 1) / (MAX_KERNEL - 1)
        scale = (self.scale - MIN_SCALE) / (1 - MIN_SCALE)
        return np.array([width, scale, *self.colour], np.float32)


def sample_styles(rng: np.random.Generator, n: int) -> list[Style]:
    kernels = rng.integers(1, MAX_KERNEL + 1, n)
    c = rng.uniform(0.0, 1.0, (n, 3))
    c_hat = c / np.maximum(c.sum(axis=1, keepdims=True), 1e-12)
    scales = rng.uniform(MIN_SCALE, 1.0, n)
    return [
        Style(int(k), (float(r), float(g), float(b)), float(s))
        for k, (r, g, b), s in zip(kernels, c_hat, scales, strict=True)
    ]


def edges(digit: np.ndarray) -> np.ndarray:
    """(28, 28) uint8 MNIST digit -> (64, 64) float32 in [0, 1]: Sobel magnitude of the
    bicubic upscale, i.e. the digit's outline."""
    up = Image.fromarray(digit).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    a = np.pad(np.asarray(up, np.float32) / 255.0, 1, mode="edge")
    gx = (a[:-2, 2:] + 2 * a[1:-1, 2:] + a[2:, 2:]) - (a[:-2, :-2] + 2 * a[1:-1, :-2] + a[2:, :-2])
    gy = (a[2:, :-2] + 2 * a[2:, 1:-1] + a[2:, 2:]) - (a[:-2, :-2] + 2 * a[:-2, 1:-1] + a[:-2, 2:])
    return np.clip(np.hypot(gx, gy) * (EDGE_GAIN / 4.0), 0.0, 1.0)


def dilate(image: np.ndarray, k: int) -> np.ndarray:
    """Grey dilation (max filter) with a k x k square kernel; even k extends one pixel further
    down/right than up/left. (H, W) -> (H, W)."""
    if k <= 1:
        return image
    before, after = (k - 1) // 2, k // 2
    padded = np.pad(image, ((before, after), (before, after)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, k, axis=0).max(axis=-1)
    return np.lib.stride_tricks.sliding_window_view(windows, k, axis=1).max(axis=-1)


def downscale(image: np.ndarray, s: float) -> np.ndarray:
    """Shrink an (H, W) float image by s and zero-pad it back, centred."""
    h, w = image.shape
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    if (nh, nw) == (h, w):
        return image
    small = Image.fromarray(image.astype(np.float32), "F").resize(
        (nw, nh), Image.Resampling.BILINEAR, reducing_gap=None
    )
    out = np.zeros_like(image)
    top, left = (h - nh) // 2, (w - nw) // 2
    out[top : top + nh, left : left + nw] = np.clip(np.asarray(small), 0.0, 1.0)
    return out


def transform(edge: np.ndarray, style: Style) -> np.ndarray:
    """(64, 64) float edge image -> (64, 64, 3) float in [0, 1]: width, then size, then colour.
    Scaling before colouring gives the same image as the paper's order and keeps every pixel
    exactly proportional to c_hat."""
    grey = downscale(dilate(edge, style.kernel), style.scale)
    return grey[..., None] * np.asarray(style.colour, np.float32)


def to_uint8(image: np.ndarray, resolution: int) -> np.ndarray:
    """(64, 64) or (64, 64, 3) float in [0, 1] -> (resolution, resolution, 3) uint8."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    out = Image.fromarray(np.round(image * 255).astype(np.uint8), "RGB")
    if resolution != out.width:
        out = out.resize((resolution, resolution), Image.Resampling.BOX)
    return np.asarray(out)


@dataclass(frozen=True)
class DigitJob:
    digit: np.ndarray  # (28, 28) uint8
    label: int
    style: Style | None  # None: a reference digit, untransformed
    resolution: int


def render_digit(job: DigitJob) -> Item:
    edge = edges(job.digit)
    if job.style is None:
        return Item(to_uint8(edge, job.resolution), REFERENCE_FACTORS, job.label)
    image = to_uint8(transform(edge, job.style), job.resolution)
    return Item(image, job.style.factors(), job.label)


@dataclass(frozen=True)
class DigitSizes:
    reference: int = 30_000  # paper 5.1: half of the MNIST training images
    unlabelled: int = 60_000  # the other half, each transformed twice
    eval_fit: int = 5_000  # two disjoint halves of the MNIST test set
    eval_score: int = 5_000

    def limited(self, limit: int | None) -> DigitSizes:
        if limit is None:
            return self
        return DigitSizes(
            *(
                min(n, limit)
                for n in (self.reference, self.unlabelled, self.eval_fit, self.eval_score)
            )
        )


def plan_digits(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    resolution: int,
    sizes: DigitSizes,
) -> dict[str, list[DigitJob]]:
    """Assign MNIST images and sampled styles to the four splits; all randomness is drawn here,
    from `seed`, so the jobs fully determine the dataset."""
    (train_x, train_y), (test_x, test_y) = train, test
    half = len(train_x) // 2
    if sizes.reference > half or sizes.unlabelled > 2 * (len(train_x) - half):
        raise ValueError(f"{sizes} needs more than the {len(train_x)} MNIST training images")
    if sizes.eval_fit + sizes.eval_score > len(test_x):
        raise ValueError(f"{sizes} needs more than the {len(test_x)} MNIST test images")
    split_rng, style_rng, eval_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    order = split_rng.permutation(len(train_x))
    reference_idx = order[:half][: sizes.reference]
    unlabelled_idx = np.repeat(order[half:], 2)[: sizes.unlabelled]  # each source image twice
    test_order = eval_rng.permutation(len(test_x))
    fit_idx = test_order[: sizes.eval_fit]
    score_idx = test_order[sizes.eval_fit : sizes.eval_fit + sizes.eval_score]

    def jobs(x, y, idx, styles):
        return [
            DigitJob(x[i], int(y[i]), style, resolution)
            for i, style in zip(idx, styles, strict=True)
        ]

    return {
        "reference": jobs(train_x, train_y, reference_idx, [None] * len(reference_idx)),
        "unlabelled": jobs(
            train_x, train_y, unlabelled_idx, sample_styles(style_rng, len(unlabelled_idx))
        ),
        "eval_fit": jobs(test_x, test_y, fit_idx, sample_styles(eval_rng, len(fit_idx))),
        "eval_score": jobs(test_x, test_y, score_idx, sample_styles(eval_rng, len(score_idx))),
    }


def build_digits(
    out: str | Path,
    *,
    mnist_dir: str | Path | None = None,
    resolution: int = SIZE,
    seed: int = 0,
    sizes: DigitSizes = DigitSizes(),
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    default_mnist_dir: str | Path = "data/mnist",
    mnist_checksums: dict[str, str] = MNIST_MD5,
) -> Path:
    """Build the digit-style dataset into `out` (see cache.py for the layout)."""
    mnist = load_mnist(mnist_dir, default_dir=default_mnist_dir, checksums=mnist_checksums)
    plan = plan_digits(
        (mnist.train_images, mnist.train_labels),
        (mnist.test_images, mnist.test_labels),
        seed=seed,
        resolution=resolution,
        sizes=sizes,
    )
    writer = DatasetWriter(
        out, resolution=resolution, factor_names=FACTOR_NAMES, overwrite=overwrite
    )
    try:
        for split, jobs in plan.items():
            items = ordered_map(render_digit, jobs, workers=workers, desc=split, progress=progress)
            writer.write_split(split, items, len(jobs))
    except BaseException:
        writer.abort()
        raise
    return writer.finish(
        source="digits",
        seed=seed,
        class_names=CLASS_NAMES,
        label_name="digit",
        reference_factors=REFERENCE_FACTORS.tolist(),
        mnist_md5=mnist.md5,
    )
