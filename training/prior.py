"""Fits the distribution `/sample` draws target factors from (model/target_prior.py) to a
trained model's encoded e of unlabelled training images, and stores it in the export.

Training images, never the evaluation splits: the fit is part of the model, and the sample
fidelity measured on `eval_score` must not have seen them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model import load_model
from model.checkpoint import attach_target_prior
from model.target_prior import TargetPrior
from training.data import PreparedDataset
from training.evaluation.features import encode_split

DEFAULT_IMAGES = 20_000  # a 32x32 model encodes them in about 10 s on 2 CPU cores


def fit_target_prior(
    checkpoint: str | Path, data: PreparedDataset, images: int = DEFAULT_IMAGES, seed: int = 0
) -> TargetPrior:
    """Fits a Gaussian to the posterior means of e over `images` unlabelled images (a seeded
    subset), encoded by the checkpoint's own (possibly float16-rounded) weights, and rewrites
    the checkpoint with it. Returns the fit."""
    model = load_model(checkpoint)
    split = data["unlabelled"]
    count = min(images, len(split))
    if count <= model.e_dim:
        raise ValueError(
            f"{data.path}: {count} unlabelled images cannot fit a {model.e_dim}-dimensional e"
        )
    idx = np.sort(np.random.default_rng(seed).choice(len(split), count, replace=False))
    _, e = encode_split(model, np.asarray(split.images[idx]))
    prior = TargetPrior.fit(torch.from_numpy(e))
    attach_target_prior(checkpoint, prior)
    return prior
