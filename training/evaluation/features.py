"""Posterior means of a dataset split, encoded in batches."""

from __future__ import annotations

import numpy as np
import torch

from model.images import uint8_to_tensor
from model.inference import ReferenceVAE


def encode_split(
    model: ReferenceVAE, images: np.ndarray, batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(N, R, R, 3) uint8 -> z (N, z_dim), e (N, e_dim) float32."""
    zs, es = [], []
    for start in range(0, len(images), batch):
        z, e = model.encode_tensor(uint8_to_tensor(images[start : start + batch]))
        zs.append(z.numpy())
        es.append(e.numpy())
    return np.concatenate(zs), np.concatenate(es)


def generate(
    model: ReferenceVAE, z: np.ndarray, e: np.ndarray | None, batch: int = 256
) -> torch.Tensor:
    """G(z, e) in batches -> (N, 3, R, R) in [-1, 1]."""
    out = []
    for start in range(0, len(z), batch):
        zb = torch.from_numpy(z[start : start + batch])
        eb = None if e is None else torch.from_numpy(e[start : start + batch])
        out.append(model.generate_tensor(zb, eb))
    return torch.cat(out)
