"""What an edit answers: the generator's picture, or the input picture with the edit's change.

- `generator`: G(z, e') itself, the paper's output. Everything in it is what the model draws:
  at 32x32 the identity's fine cues, an unusual background and sharp edges come out blurred.
- `input`: the input x where the edit leaves the model's rendering of x alone, G(z, e') where
  the edit redraws it:

      out = G(z, e') + w * (x - G(z, e)),   w = exp(-(d / tolerance)^2)

  d is the edit's change |G(z, e') - G(z, e)| per pixel (mean over channels and a 3x3
  neighbourhood). Where w is 1 the output is x plus the edit's change, so an edit that
  changes nothing answers x itself; where the edit redraws (a mouth, the brows), the input's
  own pixels give way to the generated ones, so no ghost of the old expression is left.

A model's default is in its manifest (`rendering`, written by `python -m training install`);
a request may ask for either. The tolerance is in image units ([-1, 1], 0.08 about 10 grey
levels of 255); docs/evaluation.md has how the served default was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import torch
import torch.nn.functional as F

# The modes as requests name them: the torch-free contract's literal, one definition for both.
from contract.tasks import Render as RenderMode

RENDER_MODES: tuple[str, ...] = get_args(RenderMode)
DEFAULT_TOLERANCE = 0.08


def keep_input(
    x: torch.Tensor, edited: torch.Tensor, reconstruction: torch.Tensor, tolerance: float
) -> torch.Tensor:
    """(B, 3, R, R) each, in [-1, 1]: the input `x` with the change from `reconstruction`
    G(z, e) to `edited` G(z, e'), the generated pixels wherever that change is large."""
    change = (edited - reconstruction).abs().mean(1, keepdim=True)
    change = F.avg_pool2d(change, 3, 1, 1, count_include_pad=False)
    keep = torch.exp(-((change / tolerance) ** 2))
    return (edited + keep * (x - reconstruction)).clamp(-1.0, 1.0)


@dataclass(frozen=True)
class Rendering:
    """How a model's edits are rendered by default."""

    mode: RenderMode = "generator"
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if self.mode not in RENDER_MODES:
            raise ValueError(f"rendering mode must be one of {RENDER_MODES}, got {self.mode!r}")
        if not self.tolerance > 0:
            raise ValueError(f"rendering tolerance must be positive, got {self.tolerance}")

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> Rendering:
        """The manifest's `rendering`; none stored: the generator's picture."""
        if record is None:
            return cls()
        return cls(mode=record.get("mode", "generator"), tolerance=float(
            record.get("tolerance", DEFAULT_TOLERANCE)
        ))  # fmt: skip

    def to_record(self) -> dict[str, Any]:
        return {"mode": self.mode, "tolerance": self.tolerance}

    def needs_reconstruction(self, mode: RenderMode | None = None) -> bool:
        return (mode or self.mode) == "input"

    def compose(
        self,
        x: torch.Tensor,
        edited: torch.Tensor,
        reconstruction: torch.Tensor | None,
        mode: RenderMode | None = None,
    ) -> torch.Tensor:
        """The answer for edits `edited` of inputs `x` whose reconstructions are
        `reconstruction` (row for row), in `mode` (None: this model's default)."""
        if not self.needs_reconstruction(mode):
            return edited
        if reconstruction is None:
            raise ValueError("rendering 'input' needs the inputs' reconstructions")
        return keep_input(x, edited, reconstruction, self.tolerance)
