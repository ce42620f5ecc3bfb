"""Photos with faces at known places, and the measures of a detector and aligner against them.

Synthetic scenes: faces from the project's renderer (upright, canonical pose), each placed into a
larger textured scene by a known similarity transform (position, size, in-plane rotation), so
the true eye centres are known exactly. Real faces: scikit-image's astronaut (eyes marked by
hand) and the 100 faces of its lfw_subset (no eye positions: detection rate only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from photos.align import TIGHT_ZOOM, apply, eye_targets, similarity
from photos.detect import Face, detect_faces
from training.data.faces import NEUTRAL, align, render_face, sample_common, sample_expression
from training.data.faces.render import CENTRE_X, EYE_Y, HEAD_Y
from training.data.faces.render import _eye_half_spacing as eye_half_spacing

RENDER = 128  # pixels of the rendered face before it is placed
RENDER_ZOOM = 1.0  # the whole head, with some background around it
# scikit-image's astronaut.png: pupil centres marked by hand on a 5x enlargement.
ASTRONAUT_EYES = np.array([[203.0, 101.0], [246.5, 103.5]])


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    eyes: np.ndarray  # (F, 2, 2): true left and right eye centres of each face, photo pixels


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth colour gradient with blotches and noise: not flat, and not face-like."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(60, 200, 3).astype(np.float32)
    slope = rng.uniform(-60, 60, (2, 3)).astype(np.float32)
    image = base + xs[..., None] / width * slope[0] + ys[..., None] / height * slope[1]
    coarse = rng.normal(0, 25, (height // 32 + 2, width // 32 + 2, 3)).astype(np.float32)
    image += cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 4, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def rendered_eyes(common, resolution: int = RENDER, zoom: float = RENDER_ZOOM) -> np.ndarray:
    """(2, 2) true eye centres of an upright rendered face, pixels (centres at integers)."""
    half = eye_half_spacing(common)
    fx = np.array([CENTRE_X - half, CENTRE_X + half])
    x = CENTRE_X + zoom * (fx - CENTRE_X)
    y = HEAD_Y + zoom * (EYE_Y - HEAD_Y)
    return np.stack([x, [y, y]], axis=1) * resolution - 0.5


def compose(
    rng: np.random.Generator,
    size: tuple[int, int] = (480, 640),
    faces: int = 1,
    face_px: tuple[float, float] = (90, 180),
    max_rotation: float = 12.0,
    neutral: bool = False,
) -> Scene:
    """A (H, W) scene with `faces` rendered faces, none overlapping, each `face_px` wide (the
    rendered square's side), rotated by up to +-max_rotation degrees; with neutral, every face
    has the neutral expression, else one of the seven classes."""
    height, width = size
    image = background(rng, height, width).astype(np.float32)
    eyes, placed = [], []
    for _ in range(faces):
        common = align(sample_common(rng))
        label = int(rng.integers(7))
        expression = NEUTRAL if neutral else sample_expression(rng, label)
        face = render_face(common, expression, resolution=RENDER, zoom=RENDER_ZOOM)
        side = rng.uniform(*face_px)
        for _attempt in range(100):
            cx, cy = (
                rng.uniform(side / 2, width - side / 2),
                rng.uniform(side / 2, height - side / 2),
            )
            if all(math.hypot(cx - x, cy - y) > (side + s) * 0.75 for x, y, s in placed):
                break
        placed.append((cx, cy, side))
        angle = math.radians(rng.uniform(-max_rotation, max_rotation))
        scale = side / RENDER
        a, b = scale * math.cos(angle), scale * math.sin(angle)
        centre = np.array([RENDER / 2 - 0.5, RENDER / 2 - 0.5])
        linear = np.array([[a, -b], [b, a]])
        matrix = np.hstack([linear, (np.array([cx, cy]) - linear @ centre)[:, None]])
        warped = cv2.warpAffine(
            face.astype(np.float32),
            matrix,
            (width, height),
            flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        alpha = cv2.warpAffine(
            np.ones((RENDER, RENDER), np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR
        )[..., None]
        image = alpha * warped + (1 - alpha) * image
        eyes.append(apply(matrix, rendered_eyes(common)))
    return Scene(np.clip(np.rint(image), 0, 255).astype(np.uint8), np.array(eyes))


def eye_error(face: Face, true_eyes: np.ndarray, resolution: int = 64) -> float:
    """Alignment error: the true eyes mapped through the face's alignment transform, their mean
    distance from the target positions, as a fraction of the target eye distance."""
    target = eye_targets(resolution, TIGHT_ZOOM)
    matrix = similarity(np.array([face.left_eye, face.right_eye]), target)
    mapped = apply(matrix, true_eyes)
    return float(
        np.linalg.norm(mapped - target, axis=1).mean() / np.linalg.norm(target[1] - target[0])
    )


def match(faces: list[Face], true_eyes: np.ndarray) -> Face | None:
    """The detected face whose box holds the midpoint of the true eyes, if any."""
    mid = true_eyes.mean(axis=0)
    for face in faces:
        x, y, w, h = face.box
        if x <= mid[0] <= x + w and y <= mid[1] <= y + h:
            return face
    return None


@dataclass(frozen=True)
class Measured:
    faces: int
    found: int
    false_positives: int
    errors: list[float]  # alignment error of each found face
    eyes_found: int  # faces whose eyes the eye cascade found (the rest: placed from the box)

    @property
    def rate(self) -> float:
        return self.found / max(self.faces, 1)

    def summary(self) -> str:
        errors = np.array(self.errors) if self.errors else np.array([np.nan])
        return (
            f"detected {self.found}/{self.faces} ({self.rate:.0%}), false positives "
            f"{self.false_positives}, eyes by cascade {self.eyes_found}/{self.found}, alignment "
            f"error median {np.median(errors):.3f} p90 {np.quantile(errors, 0.9):.3f} of the eye "
            "distance"
        )


def measure_scenes(scenes: list[Scene], detections: list[list[Face]] | None = None) -> Measured:
    """Detection rate, false positives and alignment errors; `detections` (one list per scene)
    when they were already made."""
    faces = found = false_positives = eyes_found = 0
    errors = []
    for i, scene in enumerate(scenes):
        detected = detect_faces(scene.image) if detections is None else detections[i]
        matched = []
        for true in scene.eyes:
            faces += 1
            face = match(detected, true)
            if face is not None:
                found += 1
                eyes_found += face.eyes_found
                errors.append(eye_error(face, true))
                matched.append(face)
        false_positives += sum(1 for f in detected if f not in matched)
    return Measured(faces, found, false_positives, errors, eyes_found)


def synthetic_scenes(n: int, seed: int = 0, **kwargs) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [compose(rng, **kwargs) for _ in range(n)]


def lfw_subset() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's lfw_subset.npy, (200, 25, 25) float in [0, 1]: 100 faces, then 100 other
    patches; returned as uint8 (faces, non-faces), each enlarged 4x onto a 160x160 canvas, where
    the detector's 24-pixel window can see them."""
    import skimage.data

    raw = np.load(skimage.data.__path__[0] + "/lfw_subset.npy", allow_pickle=False)
    big = [
        cv2.copyMakeBorder(
            cv2.resize(
                np.rint(im * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC
            ),
            30,
            30,
            30,
            30,
            cv2.BORDER_REPLICATE,
        )
        for im in raw
    ]
    rgb = np.stack([cv2.cvtColor(b, cv2.COLOR_GRAY2RGB) for b in big])
    return rgb[:100], rgb[100:]


def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()
