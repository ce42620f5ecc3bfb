"""Fits the distribution `/sample` draws target factors from (model/target_prior.py) to a
trained model's encoded e of unlabelled training images.

Training images, never the evaluation splits: the fit is part of the model, and the sample
fidelity measured on `eval_score` must not have seen them.
"""

from __future__ import annotations

import numpy as np
import torch

from model.inference import ReferenceVAE
from model.target_prior import TargetPrior
from training.data import PreparedDataset
from training.evaluation.features import encode_split

DEFAULT_IMAGES = 20_000  # a 32x32 model encodes them in about 10 s on 2 CPU cores
# The sample grids drawn during training fit the same Gaussian on fewer images, every grid
# interval: well under a second at 32x32, and enough for a 32-dimensional e.
PREVIEW_IMAGES = 1_000


def fit_target_prior(
    model: ReferenceVAE, data: PreparedDataset, images: int = DEFAULT_IMAGES, seed: int = 0
) -> TargetPrior:
    """A Gaussian fitted to the posterior means of e over `images` unlabelled images (a seeded
    subset). Pass the loaded export, so the fit sees the served (possibly float16) weights;
    `model.checkpoint.attach_target_prior` stores it."""
    split = data["unlabelled"]
    count = min(images, len(split))
    if count <= model.e_dim:
        raise ValueError(
            f"{data.path}: {count} unlabelled images cannot fit a {model.e_dim}-dimensional e"
        )
    idx = np.sort(np.random.default_rng(seed).choice(len(split), count, replace=False))
    _, e = encode_split(model, np.asarray(split.images[idx]))
    return TargetPrior.fit(torch.from_numpy(e))
