"""A tiny reference-based problem made on the fly: coloured discs on black.

Common factors: the disc's position and radius. Target factor: its colour; reference discs are
white. Small enough to train a tiny sRb-VAE for a few hundred steps in a test.
"""

import torch


def discs(n: int, resolution: int = 32, *, coloured: bool, seed: int) -> torch.Tensor:
    """(n, 3, R, R) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, 2, generator=g) * resolution * 0.3 + resolution * 0.35
    radius = torch.rand(n, 1, 1, generator=g) * resolution * 0.12 + resolution * 0.18
    yy, xx = torch.meshgrid(torch.arange(resolution), torch.arange(resolution), indexing="ij")
    dist2 = (xx[None] - centre[:, 0, None, None]) ** 2 + (yy[None] - centre[:, 1, None, None]) ** 2
    mask = (dist2 <= radius**2).float()  # (n, R, R)
    colour = torch.rand(n, 3, generator=g) if coloured else torch.ones(n, 3)
    x = mask[:, None] * colour[:, :, None, None]
    return x * 2 - 1
