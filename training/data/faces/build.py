"""Synthetic-faces dataset: neutral reference faces and expressive unlabelled/evaluation faces.

Each face is drawn from its own generator, seeded by (seed, split, index), so a build is the same
for any number of workers and any split can be extended without changing its first faces.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.cache import DatasetWriter, Item
from training.data.faces.factors import (
    CLASS_NAMES,
    COMMON_NAMES,
    EXPRESSION_NAMES,
    NEUTRAL,
    NEUTRAL_LABEL,
    align,
    sample_common,
    sample_expression,
)
from training.data.faces.render import ZOOM, render_face
from training.data.parallel import ordered_map

log = logging.getLogger(__name__)

SPLIT_CODES = {"reference": 0, "unlabelled": 1, "eval_fit": 2, "eval_score": 3}


@dataclass(frozen=True)
class FaceSizes:
    # Same proportions as the digits (paper 5.1 uses 10k reference / 150k unlabelled AffectNet
    # faces; ours are cheap to render, so the reference set is larger).
    reference: int = 30_000
    unlabelled: int = 60_000
    eval_fit: int = 5_000
    eval_score: int = 5_000

    def limited(self, limit: int | None) -> FaceSizes:
        if limit is None:
            return self
        return FaceSizes(
            *(
                min(n, limit)
                for n in (self.reference, self.unlabelled, self.eval_fit, self.eval_score)
            )
        )


@dataclass(frozen=True)
class FaceJob:
    seed: int
    split: str
    index: int
    resolution: int
    aligned: bool = True
    zoom: float = ZOOM


def face_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_CODES[split], index])


def render_job(job: FaceJob) -> Item:
    """Reference faces are neutral with label NEUTRAL_LABEL; the others draw a class uniformly."""
    rng = face_rng(job.seed, job.split, job.index)
    common = sample_common(rng)  # drawn in full either way, so both builds show the same people
    if job.aligned:
        common = align(common)
    if job.split == "reference":
        label, expression = NEUTRAL_LABEL, NEUTRAL
    else:
        label = int(rng.integers(len(CLASS_NAMES)))
        expression = sample_expression(rng, label)
    image = render_face(common, expression, job.resolution, job.zoom)
    return Item(image, expression.to_array(), label, common.to_array())


def build_faces(
    out: str | Path,
    *,
    resolution: int = 64,
    aligned: bool = True,
    zoom: float = ZOOM,
    seed: int = 0,
    sizes: FaceSizes = FaceSizes(),
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Render the synthetic-faces dataset into `out` (see cache.py for the layout). `aligned`
    (the default, as the paper aligns its faces) renders every face at the canonical pose;
    otherwise shift and rotation vary as common factors. `zoom` frames the faces (render.py)."""
    writer = DatasetWriter(
        out,
        resolution=resolution,
        factor_names=EXPRESSION_NAMES,
        common_factor_names=COMMON_NAMES,
        overwrite=overwrite,
    )
    try:
        for split in SPLIT_CODES:
            n = getattr(sizes, split)
            jobs = [FaceJob(seed, split, i, resolution, aligned, zoom) for i in range(n)]
            items = ordered_map(render_job, jobs, workers=workers, desc=split, progress=progress)
            writer.write_split(split, items, n)
    except BaseException:
        writer.abort()
        raise
    return writer.finish(
        source="faces",
        seed=seed,
        class_names=[*CLASS_NAMES, "neutral"],
        label_name="expression",
        aligned=aligned,
        zoom=zoom,
        reference_factors=NEUTRAL.to_array().tolist(),
    )
