"""Paste an edited face crop back into its photo: the inverse alignment, a feathered elliptical
mask, the crop's colours matched to the photo's face, and (by default) the photo's own fine
detail kept, which a crop of a few dozen pixels cannot hold. Pixels where the mask is 0, which
includes everything outside the crop's square in the photo, are returned unchanged, bit for bit.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from photos.align import invert, warp

# The mask, in fractions of the crop's side: an ellipse over brows, eyes, nose, mouth and chin
# of the aligned framing, inside the square, 1 within FEATHER of its edge and falling smoothly to
# 0 at the edge.
MASK_CENTRE = (0.5, 0.53)
MASK_RADII = (0.42, 0.45)
FEATHER = 0.3  # fraction of the radii over which the mask falls from 1 to 0
MAX_GAIN = 2.0  # colour matching never stretches a channel's contrast by more than this


def crop_mask(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mask values in [0, 1] at crop fractions (u, v) (0..1 across and down the crop)."""
    d = np.hypot((u - MASK_CENTRE[0]) / MASK_RADII[0], (v - MASK_CENTRE[1]) / MASK_RADII[1])
    t = np.clip((1.0 - d) / FEATHER, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)  # smoothstep


def region(
    shape: tuple[int, ...], matrix: np.ndarray, resolution: int
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the pixels of a photo of `shape` that the crop's square covers, clipped."""
    corners = np.array(
        [
            [-0.5, -0.5],
            [resolution - 0.5, -0.5],
            [-0.5, resolution - 0.5],
            [resolution - 0.5, resolution - 0.5],
        ]
    )
    back = invert(matrix)
    pts = corners @ back[:, :2].T + back[:, 2]
    h, w = shape[:2]
    x0, y0 = (max(0, math.floor(v)) for v in pts.min(axis=0))
    x1, y1 = (min(n, math.ceil(v) + 1) for v, n in zip(pts.max(axis=0), (w, h), strict=True))
    return x0, y0, max(x0, x1), max(y0, y1)


def _local(matrix: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """The transform from pixels of the region starting at (x0, y0) to crop pixels."""
    local = np.array(matrix, np.float64)
    local[:, 2] += local[:, :2] @ np.array([x0, y0], np.float64)
    return local


def photo_mask(shape: tuple[int, ...], matrix: np.ndarray, resolution: int) -> np.ndarray:
    """(H, W) float32 mask of the pasted face in a photo of `shape`: 0 where nothing changes."""
    mask = np.zeros(shape[:2], np.float32)
    x0, y0, x1, y1 = region(shape, matrix, resolution)
    if x1 > x0 and y1 > y0:
        mask[y0:y1, x0:x1] = _region_mask(matrix, resolution, x0, y0, x1, y1)
    return mask


def _region_mask(matrix, resolution, x0, y0, x1, y1) -> np.ndarray:
    local = _local(matrix, x0, y0)
    xs, ys = np.meshgrid(np.arange(x1 - x0, dtype=np.float64), np.arange(y1 - y0, dtype=np.float64))
    cx = local[0, 0] * xs + local[0, 1] * ys + local[0, 2]
    cy = local[1, 0] * xs + local[1, 1] * ys + local[1, 2]
    return crop_mask((cx + 0.5) / resolution, (cy + 0.5) / resolution).astype(np.float32)


def match_colours(edited: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(R, R, 3) float32: `edited` with each channel's weighted mean and spread moved to those of
    `target` (both (R, R, 3)), the spread's gain clamped to [1 / MAX_GAIN, MAX_GAIN]."""
    w = weights[..., None] / max(float(weights.sum()), 1e-6)
    e, t = edited.astype(np.float32), target.astype(np.float32)
    mean_e, mean_t = (w * e).sum(axis=(0, 1)), (w * t).sum(axis=(0, 1))
    std_e = np.sqrt((w * (e - mean_e) ** 2).sum(axis=(0, 1)))
    std_t = np.sqrt((w * (t - mean_t) ** 2).sum(axis=(0, 1)))
    gain = np.clip(std_t / np.maximum(std_e, 1e-3), 1 / MAX_GAIN, MAX_GAIN)
    return (e - mean_e) * gain + mean_t


def paste_back(
    photo: np.ndarray,
    matrix: np.ndarray,
    edited: np.ndarray,
    *,
    match_colour: bool = True,
    keep_detail: bool = True,
) -> np.ndarray:
    """(H, W, 3) uint8: `photo` with the face that `matrix` aligned replaced by `edited`, the
    (R, R, 3) uint8 crop at the model's resolution. With keep_detail, the photo's detail finer
    than the crop (the photo minus its own crop mapped back) is added to the mapped-back edit,
    so an unedited crop pastes back as the photo itself, nearly."""
    resolution = edited.shape[0]
    if edited.shape != (resolution, resolution, 3):
        raise ValueError(f"edited crop must be (R, R, 3), got {edited.shape}")
    out = np.array(photo, np.uint8, copy=True)
    x0, y0, x1, y1 = region(photo.shape, matrix, resolution)
    if x1 <= x0 or y1 <= y0:
        return out
    alpha = _region_mask(matrix, resolution, x0, y0, x1, y1)
    inside = alpha > 0
    if not inside.any():
        return out
    source = edited.astype(np.float32)
    original = None
    if match_colour or keep_detail:
        original = warp(photo, matrix, resolution).astype(np.float32)
    if match_colour and original is not None:
        u = (np.arange(resolution) + 0.5) / resolution
        weights = crop_mask(u[None, :], u[:, None])
        source = match_colours(source, original, weights)
    local = _local(matrix, x0, y0)
    size = (x1 - x0, y1 - y0)

    def back(crop: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(
            np.ascontiguousarray(crop, np.float32),
            local,
            size,
            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )

    old = out[y0:y1, x0:x1].astype(np.float32)
    new = back(source)
    if keep_detail and original is not None:
        new += old - back(original)
    a = alpha[..., None]
    blended = np.clip(np.rint(a * new + (1.0 - a) * old), 0, 255).astype(np.uint8)
    patch = out[y0:y1, x0:x1]
    patch[inside] = blended[inside]
    return out
