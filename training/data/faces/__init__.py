"""Synthetic faces: factors (factors.py), the Pillow renderer (render.py), the dataset (build.py)."""

from training.data.faces.factors import (
    CLASS_NAMES,
    NEUTRAL,
    PROTOTYPES,
    Common,
    Expression,
    align,
    sample_common,
    sample_expression,
)
from training.data.faces.render import expression_region, render_face

__all__ = [
    "CLASS_NAMES",
    "NEUTRAL",
    "PROTOTYPES",
    "Common",
    "Expression",
    "align",
    "expression_region",
    "render_face",
    "sample_common",
    "sample_expression",
]
