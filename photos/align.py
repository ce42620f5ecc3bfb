"""Alignment as in the paper's preprocessing (A.3.2): a similarity transform (rotation, uniform
scale, shift) that puts the two eyes level, at a fixed distance and at fixed positions in the
crop, then the crop at the model's resolution.

The fixed positions are those of the synthetic faces the served faces model trains on, rendered at
TIGHT_ZOOM (training/data/faces/render.py, `--zoom 1.8`, data/faces-32-tight): the renderer draws
the eyes at (0.5 -+ h, EYE_Y) of an upright canvas with h = 0.10 + 0.04 * eye_spacing (0.12 on
average) and zooms about (0.5, HEAD_Y), so in the crop they lie at 0.5 -+ zoom * 0.12 across and
0.5 + zoom * (EYE_Y - HEAD_Y) down, as fractions of the side. A real photo aligned here is framed
brows to chin like those faces (tests/photos checks the renderer against these numbers).

A transform is a (2, 3) float64 matrix M in OpenCV's convention (pixel centres at integers): photo
point p maps to crop point M @ (p, 1). `invert(M)` maps the crop back into the photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from photos.detect import Face
from photos.geometry import sample

TIGHT_ZOOM = 1.8  # training/data/faces/render.py TIGHT_ZOOM: brows to chin
MEAN_EYE_HALF_SPACING = 0.12  # renderer: 0.10 + 0.04 * eye_spacing, eye_spacing ~ U[0, 1]
EYE_RAISE = 0.03  # renderer: HEAD_Y - EYE_Y, the eyes above the centre of the zoom


@dataclass(frozen=True)
class Aligned:
    """An aligned face crop and the transform that made it."""

    crop: np.ndarray  # (R, R, 3) uint8
    matrix: np.ndarray  # (2, 3) float64, photo pixels -> crop pixels
    face: Face


def eye_targets(resolution: int, zoom: float = TIGHT_ZOOM) -> np.ndarray:
    """(2, 2) float64: where the left and right eye go in a crop of `resolution` pixels."""
    half, y = zoom * MEAN_EYE_HALF_SPACING, 0.5 - zoom * EYE_RAISE
    fractions = np.array([[0.5 - half, y], [0.5 + half, y]])
    return fractions * resolution - 0.5  # fraction f of the side is pixel f * R - 0.5


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) rotation + uniform scale + shift taking the two points src (2, 2) onto dst (2, 2)."""
    s, d = src[1] - src[0], dst[1] - dst[0]
    scale = math.hypot(*d) / math.hypot(*s)
    angle = math.atan2(d[1], d[0]) - math.atan2(s[1], s[0])
    a, b = scale * math.cos(angle), scale * math.sin(angle)
    linear = np.array([[a, -b], [b, a]])
    return np.hstack([linear, (dst[0] - linear @ src[0])[:, None]])


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine matrix."""
    return np.asarray(cv2.invertAffineTransform(np.asarray(matrix, np.float64)), np.float64)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points through a (2, 3) matrix."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    return points @ matrix[:, :2].T + matrix[:, 2]


def face_matrix(face: Face, resolution: int, zoom: float = TIGHT_ZOOM) -> np.ndarray:
    """The alignment transform of one detected face."""
    eyes = np.array([face.left_eye, face.right_eye], np.float64)
    return similarity(eyes, eye_targets(resolution, zoom))


def warp(photo: np.ndarray, matrix: np.ndarray, resolution: int) -> np.ndarray:
    """(R, R, 3) uint8 crop of `photo` through `matrix`, anti-aliased: where the face is larger
    in the photo than in the crop, the part of the photo the crop reads is first shrunk by area
    averaging (to about one photo pixel per crop pixel), then resampled bilinearly."""
    return sample(np.ascontiguousarray(photo), invert(matrix), (resolution, resolution))


def align_face(photo: np.ndarray, face: Face, resolution: int, zoom: float = TIGHT_ZOOM) -> Aligned:
    """The face's crop at the model's resolution, eyes level at the training framing."""
    matrix = face_matrix(face, resolution, zoom)
    return Aligned(warp(photo, matrix, resolution), matrix, face)
