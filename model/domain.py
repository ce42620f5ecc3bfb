"""How far an input image lies from the images a model was trained on.

The statistic is the image's reconstruction error, mean |x - G(z, e)| per pixel value with z
and e the posterior means (x in [-1, 1]): the Laplace likelihood the model was trained with,
and one generate pass on top of the encode every edit runs anyway. Measured on the faces
models, it tells the held-out synthetic faces from aligned real photos completely (AUC 1.00),
where the latents' prior likelihood (the posteriors' KL to N(0, I)) does less well (AUC .55 to .88);
docs/evaluation.md.

A checkpoint stores the statistic's distribution on held-out images of its dataset (the
`eval_fit` split, never trained on) as percentiles in model.json (`domain`), written by
`python -m training domain-stats` and on export. An input's score is where its error falls
among them, 0 to 100; above `threshold` (the 99th percentile: about one in-domain image in a
hundred is flagged) it is out of domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

STATISTIC = "reconstruction_mae"
LEVELS = np.linspace(0.0, 100.0, 101)  # the stored percentiles: 0, 1, ..., 100
THRESHOLD = 99.0
MIN_IMAGES = 50  # fewer leave the upper percentiles to one or two images


def reconstruction_error(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """(B, 3, R, R) each, in [-1, 1] -> (B,) mean absolute difference per pixel value."""
    return (x.float() - reconstruction.float()).abs().flatten(1).mean(1)


@dataclass(frozen=True)
class DomainReference:
    quantiles: tuple[float, ...]  # the error at LEVELS of the reference images, non-decreasing
    images: int  # reference images the quantiles come from
    trained_on: str  # what the model's training images are, for people ("synthetic faces")
    data: str = ""  # the prepared dataset and split the reference images come from
    split: str = "eval_fit"
    threshold: float = THRESHOLD

    @classmethod
    def fit(cls, errors: np.ndarray | torch.Tensor, **record: Any) -> DomainReference:
        """The reference distribution of `errors` (N,), one per held-out image."""
        errors = np.asarray(errors, dtype=np.float64)
        if errors.ndim != 1 or len(errors) < MIN_IMAGES:
            raise ValueError(
                f"need at least {MIN_IMAGES} reference errors, got shape {errors.shape}"
            )
        if not np.isfinite(errors).all():
            raise ValueError("reference errors contain NaN or infinite values")
        quantiles = tuple(float(f"{q:.6g}") for q in np.percentile(errors, LEVELS))
        return cls(quantiles, len(errors), **record)

    def percentile(self, errors: torch.Tensor) -> list[float]:
        """(B,) errors -> the share (0-100) of reference images with a smaller error, each,
        interpolated between the stored percentiles; rounded to 0.1."""
        values = np.interp(errors.detach().cpu().double().numpy(), self.quantiles, LEVELS)
        return [round(float(v), 1) for v in values]

    @property
    def threshold_error(self) -> float:
        """The error at the threshold percentile."""
        return float(np.interp(self.threshold, LEVELS, self.quantiles))

    def out_of_domain(self, errors: torch.Tensor) -> list[bool]:
        """(B,) errors -> each above the threshold's error (decided on the error, not on the
        rounded percentile, which would let errors just above it pass)."""
        return [e > self.threshold_error for e in errors.detach().cpu().double().tolist()]

    def record(self) -> dict[str, Any]:
        """What model.json stores under `domain`."""
        return {
            "statistic": STATISTIC,
            "trained_on": self.trained_on,
            "data": self.data,
            "split": self.split,
            "images": self.images,
            "threshold_percentile": self.threshold,
            "quantiles": list(self.quantiles),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> DomainReference | None:
        """The stored reference, None when the checkpoint has none; ValueError when it is
        malformed."""
        if record is None:
            return None
        try:
            if record["statistic"] != STATISTIC:
                raise ValueError(f"unknown statistic {record['statistic']!r}")
            quantiles = tuple(float(q) for q in record["quantiles"])
            ref = cls(
                quantiles,
                int(record["images"]),
                str(record["trained_on"]),
                str(record.get("data", "")),
                str(record.get("split", "eval_fit")),
                float(record.get("threshold_percentile", THRESHOLD)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"domain record incomplete: {exc!r}") from None
        q = np.asarray(quantiles)
        if len(q) != len(LEVELS) or not np.isfinite(q).all() or (np.diff(q) < 0).any():
            raise ValueError(f"domain quantiles must be {len(LEVELS)} finite non-decreasing values")
        return ref
