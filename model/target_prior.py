"""The distribution `sample` draws target factors e from.

The model's prior is N(0, I), but a trained Rb-VAE's encoded e need not fill it: with the
paper's sharp likelihood (lambda = 0.01) the posteriors are narrow and their aggregate sits
elsewhere, so e ~ N(0, I) lands off the data and the generator breaks the image (measured: the
digit survived 36% of samples). A Gaussian fitted to the encoded e of training images, an
ex-post density as in Ghosh et al. 2020 ("From variational to deterministic autoencoders"),
keeps samples where the encoder puts real images. The fit is stored in the inference
checkpoint beside the weights (`sampling.*` tensors); checkpoints without one sample from N(0, I).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

MEAN_KEY = "sampling.e_mean"
SCALE_TRIL_KEY = "sampling.e_scale_tril"
KEYS = (MEAN_KEY, SCALE_TRIL_KEY)
# Added to the covariance's diagonal, relative to its mean variance, so that a direction the
# encoder never uses still gets a Cholesky factor (and a sample never divides by zero).
_JITTER = 1e-4


@dataclass(frozen=True)
class TargetPrior:
    mean: torch.Tensor  # (e_dim,)
    scale_tril: torch.Tensor  # (e_dim, e_dim), lower triangular: cov = L L^T
    fitted_on: int = 0  # images the fit saw; 0 for the standard normal

    @property
    def e_dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def standard(cls, e_dim: int) -> TargetPrior:
        """The model's own prior, N(0, I)."""
        return cls(torch.zeros(e_dim), torch.eye(e_dim))

    @classmethod
    def fit(cls, e: torch.Tensor) -> TargetPrior:
        """Maximum-likelihood Gaussian of encoded target factors e (N, e_dim), N > e_dim."""
        e = e.detach().to(torch.float64)
        n, d = e.shape
        if n <= d:
            raise ValueError(
                f"fitting a {d}-dimensional Gaussian needs more than {d} rows, got {n}"
            )
        if not torch.isfinite(e).all():
            raise ValueError("encoded e contains NaN or infinite values")
        mean = e.mean(0)
        centred = e - mean
        cov = centred.T @ centred / n
        cov = cov + _JITTER * cov.diagonal().mean().clamp_min(1e-12) * torch.eye(d, dtype=cov.dtype)
        scale_tril = torch.linalg.cholesky(cov)
        return cls(mean.float(), scale_tril.float(), fitted_on=n)

    def draw(self, n: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """(n, e_dim) draws: mean + t * L eps with eps ~ N(0, I) from `generator` (a CPU one).

        The same generator state gives the same eps whatever the prior, so a seed picks the
        same relative draw under N(0, I) and under a fitted Gaussian.
        """
        eps = torch.randn(n, self.e_dim, generator=generator)
        return self.mean + temperature * eps @ self.scale_tril.T

    def tensors(self) -> dict[str, torch.Tensor]:
        return {MEAN_KEY: self.mean.float(), SCALE_TRIL_KEY: self.scale_tril.float()}

    def describe(self) -> dict[str, Any]:
        """What a manifest records about it."""
        if not self.fitted_on:
            return {"e": "standard normal"}
        return {"e": "gaussian fitted to encoded unlabelled images", "images": self.fitted_on}

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, torch.Tensor], e_dim: int, record: dict[str, Any] | None = None
    ) -> TargetPrior:
        """The stored fit, or N(0, I) when the checkpoint has none. Raises ValueError when the
        tensors are partial, of the wrong shape, not finite or not a valid Cholesky factor."""
        present = [k for k in KEYS if k in tensors]
        if not present:
            return cls.standard(e_dim)
        if len(present) != len(KEYS):
            raise ValueError(f"sampling tensors incomplete: has {present}, needs {list(KEYS)}")
        mean = tensors[MEAN_KEY].float()
        tril = tensors[SCALE_TRIL_KEY].float()
        if tuple(mean.shape) != (e_dim,) or tuple(tril.shape) != (e_dim, e_dim):
            raise ValueError(
                f"sampling tensors have shapes {tuple(mean.shape)} and {tuple(tril.shape)}, "
                f"expected ({e_dim},) and ({e_dim}, {e_dim})"
            )
        if not (torch.isfinite(mean).all() and torch.isfinite(tril).all()):
            raise ValueError("sampling tensors contain NaN or infinite values")
        if not torch.equal(tril, tril.tril()) or not (tril.diagonal() > 0).all():
            raise ValueError("sampling scale is not lower triangular with a positive diagonal")
        return cls(mean, tril, fitted_on=int((record or {}).get("images", 0)) or 1)
