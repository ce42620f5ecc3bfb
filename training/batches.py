"""Which images make the batch of a given step: a function of (seed, stream, rank, step) alone,
so a resumed run draws exactly the batches it would have drawn, on any number of processes."""

from __future__ import annotations

import numpy as np
import torch

from model.images import uint8_to_tensor


class BatchSampler:
    """Epochs of seeded permutations, each global batch split across `world` processes."""

    def __init__(
        self, size: int, batch: int, *, seed: int, stream: int, rank: int = 0, world: int = 1
    ):
        if size < batch * world:
            raise ValueError(
                f"a split of {size} images cannot fill a global batch of {batch * world}"
            )
        self.size, self.batch, self.seed, self.stream = size, batch, seed, stream
        self.rank, self.world = rank, world
        self.steps_per_epoch = size // (batch * world)
        self._epoch = -1
        self._perm = np.empty(0, dtype=np.int64)

    def indices(self, step: int) -> np.ndarray:
        epoch, within = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, self.stream, epoch])
            self._perm, self._epoch = rng.permutation(self.size), epoch
        start = (within * self.world + self.rank) * self.batch
        # Sorted: memory-mapped arrays read faster in order; order within a batch is irrelevant.
        return np.sort(self._perm[start : start + self.batch])


def load_batch(images: np.ndarray, indices: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, R, R, 3) uint8 array (memory-mapped) -> (B, 3, R, R) float in [-1, 1] on device."""
    return uint8_to_tensor(images[indices]).to(device, non_blocking=True)
