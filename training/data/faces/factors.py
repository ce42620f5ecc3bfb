"""Factors of a synthetic face: common (identity, pose, scene) and target (expression).

Every factor is a float in [0, 1]; the renderer maps it to geometry and colour. Expressions are
drawn around seven prototypes (paper 5.1: the AffectNet classes) with a random intensity and a
small jitter, so each expressive face also carries a class label.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields, replace

import numpy as np


@dataclass(frozen=True)
class Common:
    """Who is shown, how, and where; held fixed, these render the same person and scene."""

    face_width: float = 0.5
    face_length: float = 0.5
    jaw: float = 0.5  # 0 round, 1 square
    skin_tone: float = 0.3  # 0 lightest .. 1 darkest
    hair_colour: float = 0.3  # position along a black..blond..auburn..grey palette
    hair_style: float = 0.0  # one of N_HAIR_STYLES, stored as index / (N_HAIR_STYLES - 1)
    eye_spacing: float = 0.5
    eye_colour: float = 0.2  # position along a brown..blue..green..grey palette
    nose_length: float = 0.5
    nose_width: float = 0.5
    shift_x: float = 0.5  # 0.5 centred
    shift_y: float = 0.5
    rotation: float = 0.5  # in-plane, 0.5 upright
    background_hue: float = 0.6
    background_value: float = 0.7
    clothing_hue: float = 0.1
    light_angle: float = 0.0
    light_strength: float = 0.0

    def to_array(self) -> np.ndarray:
        return np.array(astuple(self), np.float32)


@dataclass(frozen=True)
class Expression:
    """The target factors; NEUTRAL is the expression at rest."""

    mouth_curve: float = 0.5  # 0 corners down, 0.5 flat, 1 corners up
    mouth_open: float = 0.0
    brow_height: float = 0.5  # 0 lowered, 1 raised
    brow_tilt: float = 0.5  # 0 inner ends down (frown), 1 inner ends up (worry)
    eye_open: float = 0.5  # 0 shut, 0.5 at rest, 1 wide
    mouth_asymmetry: float = 0.0  # 1: one corner raised alone (a smirk)

    def to_array(self) -> np.ndarray:
        return np.array(astuple(self), np.float32)


N_HAIR_STYLES = 6
COMMON_NAMES = [f.name for f in fields(Common)]
EXPRESSION_NAMES = [f.name for f in fields(Expression)]
NEUTRAL = Expression()
CLASS_NAMES = ["happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt"]
NEUTRAL_LABEL = len(CLASS_NAMES)  # reference faces; class_names in a cache end with "neutral"
# Prototypes at full intensity (FACS-style descriptions of the seven basic expressions).
PROTOTYPES = {
    # raised cheeks narrow the eyes; wide upturned mouth showing teeth
    "happiness": Expression(1.0, 0.35, 0.6, 0.5, 0.25, 0.0),
    # inner brows up, drooping lids, corners down
    "sadness": Expression(0.05, 0.0, 0.35, 1.0, 0.3, 0.0),
    # brows high, eyes wide, jaw dropped into an O
    "surprise": Expression(0.5, 1.0, 1.0, 0.55, 1.0, 0.0),
    # brows up and drawn together, eyes wide, mouth stretched open
    "fear": Expression(0.2, 0.55, 0.85, 1.0, 0.95, 0.0),
    # brows lowered, eyes squeezed, upper lip raised on one side, corners down
    "disgust": Expression(0.1, 0.3, 0.2, 0.35, 0.12, 0.45),
    # brows down and together, glaring eyes, lips pressed
    "anger": Expression(0.3, 0.0, 0.0, 0.0, 0.75, 0.0),
    # one corner raised, otherwise at rest
    "contempt": Expression(0.55, 0.0, 0.5, 0.5, 0.4, 1.0),
}
MIN_INTENSITY = 0.6  # below this a face is too close to neutral to carry its label
JITTER = 0.05  # per-factor std, so no two faces of a class share an expression exactly


def sample_common(rng: np.random.Generator) -> Common:
    values = rng.uniform(0.0, 1.0, len(COMMON_NAMES))
    common = dict(zip(COMMON_NAMES, values.tolist(), strict=True))
    common["hair_style"] = int(rng.integers(N_HAIR_STYLES)) / (N_HAIR_STYLES - 1)
    return Common(**common)


POSE_NAMES = ("shift_x", "shift_y", "rotation")


def align(common: Common) -> Common:
    """The face as the paper's preprocessing leaves it (A.3.2: landmarks, Procrustes onto a mean
    shape, crop), which removes in-plane shift and rotation. The renderer knows the pose, so the
    aligned crop is the face rendered at the canonical pose; identity and scene are unchanged."""
    return replace(common, **dict.fromkeys(POSE_NAMES, 0.5))


def sample_expression(rng: np.random.Generator, label: int) -> Expression:
    """An expression of class `label` (index into CLASS_NAMES)."""
    neutral, proto = NEUTRAL.to_array(), PROTOTYPES[CLASS_NAMES[label]].to_array()
    intensity = rng.uniform(MIN_INTENSITY, 1.0)
    values = neutral + intensity * (proto - neutral) + rng.normal(0.0, JITTER, len(neutral))
    return Expression(*np.clip(values, 0.0, 1.0).tolist())
