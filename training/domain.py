"""Fits a model's domain reference (model/domain.py): the reconstruction errors of held-out
images of its dataset, the `eval_fit` split, which training never sees. The `faces` models'
overlap with real photos is measured in docs/evaluation.md (`eval_score` against photos, so
the figures are not on the images the reference was fitted to)."""

from __future__ import annotations

import numpy as np

from model.domain import MIN_IMAGES, DomainReference
from model.images import uint8_to_tensor
from model.inference import ReferenceVAE
from training.data import PreparedDataset

SPLIT = "eval_fit"
DEFAULT_IMAGES = 5_000  # the whole split; a 32x32 model takes about 5 s on 2 CPU cores
# What the page tells a user the model was trained on, by the dataset's source.
TRAINED_ON = {
    "faces": "synthetic faces",
    "digits": "coloured MNIST digits",
    "photos": "aligned photos of faces",
}


def split_errors(model: ReferenceVAE, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, R, R, 3) uint8 -> (N,) reconstruction errors, as the worker computes them."""
    out = [
        model.reconstruction_error_tensor(uint8_to_tensor(images[i : i + batch])).numpy()
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(out)


def fit_domain_reference(
    model: ReferenceVAE, data: PreparedDataset, images: int = DEFAULT_IMAGES
) -> DomainReference:
    """The reference distribution over the first `images` of `eval_fit`. Pass the loaded
    export, so the errors are those of the served (possibly float16) weights. ValueError when
    the split has too few images (a folder dataset without held-out images)."""
    split = data[SPLIT] if SPLIT in data.splits else None
    count = 0 if split is None else min(images, len(split))
    if split is None or count < MIN_IMAGES:
        raise ValueError(
            f"{data.path}: {count} {SPLIT} images, a domain reference needs {MIN_IMAGES}"
        )
    errors = split_errors(model, np.asarray(split.images[:count]))
    trained_on = TRAINED_ON.get(data.source, f"the images of {data.path.name}")
    return DomainReference.fit(errors, trained_on=trained_on, data=str(data.path), split=SPLIT)
