"""Affine resampling shared by detection and alignment. A (2, 3) matrix maps points (x, y) in
OpenCV's pixel convention (pixel centres at integers)."""

from __future__ import annotations

import math

import cv2
import numpy as np


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) affine maps: outer after inner."""
    return np.hstack(
        [outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]]
    )


def sample(image: np.ndarray, to_image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(size[1], size[0]) or (size[1], size[0], C), the image's dtype: output pixel r is the
    image at to_image @ (r, 1), bilinear, the border replicated. Where an output pixel spans
    several image pixels, the part of the image it reads is first shrunk by area averaging, so
    the samples do not alias."""
    step = math.sqrt(abs(np.linalg.det(to_image[:, :2])))  # image pixels per output pixel
    if step > 1.5:
        w, h = size
        corners = np.array([[-1, -1], [w, -1], [-1, h], [w, h]], np.float64)
        pts = corners @ to_image[:, :2].T + to_image[:, 2]
        x0, y0 = (math.floor(v) - 1 for v in pts.min(axis=0))
        x1, y1 = (math.ceil(v) + 2 for v in pts.max(axis=0))
        gh, gw = image.shape[:2]
        crop = cv2.copyMakeBorder(
            image[max(y0, 0) : max(min(y1, gh), 0), max(x0, 0) : max(min(x1, gw), 0)],
            max(-y0, 0),
            max(y1 - gh, 0),
            max(-x0, 0),
            max(x1 - gw, 0),
            cv2.BORDER_REPLICATE,
        )  # crop pixel j is image pixel x0 + j
        shrunk = cv2.resize(
            crop,
            (max(1, round(crop.shape[1] / step)), max(1, round(crop.shape[0] / step))),
            interpolation=cv2.INTER_AREA,
        )
        fx, fy = shrunk.shape[1] / crop.shape[1], shrunk.shape[0] / crop.shape[0]
        # Image pixel p is shrunk pixel f (p - x0 + 0.5) - 0.5.
        to_shrunk = np.array([[fx, 0.0, fx * (0.5 - x0) - 0.5], [0.0, fy, fy * (0.5 - y0) - 0.5]])
        image, to_image = shrunk, compose(to_shrunk, to_image)
    return cv2.warpAffine(
        image,
        to_image,
        size,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
