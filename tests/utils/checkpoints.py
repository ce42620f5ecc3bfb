"""Small real checkpoints for tests: random weights, the served architecture, exported by the
same code as the trained models."""

from __future__ import annotations

from pathlib import Path

import torch

from model.checkpoint import export_inference
from model.config import ModelConfig
from model.networks import SRbVAE


def tiny_model_config(resolution: int = 32, **overrides) -> ModelConfig:
    defaults = dict(base_channels=8, max_channels=32, fc_dim=64, z_dim=8, e_dim=4)
    defaults.update(overrides)
    return ModelConfig(resolution=resolution, **defaults)


def make_checkpoint(directory: str | Path, name: str, *, seed: int = 0, **config) -> Path:
    """Exports a randomly initialised model (e^r drawn too, so it differs from zero e)."""
    torch.manual_seed(seed)
    net = SRbVAE(tiny_model_config(**config), with_discriminators=False)
    with torch.no_grad():
        net.e_ref.normal_()
    directory = Path(directory)
    export_inference(
        net,
        directory,
        name=name,
        data={"source": "test", "description": "random weights for tests"},
        training={"command": "tests.utils.checkpoints.make_checkpoint", "step": 0},
        metrics={},
    )
    return directory


def make_model_dir(root: str | Path, names: tuple[str, ...] = ("digits", "faces")) -> Path:
    """A model directory as the worker expects it: one checkpoint directory per model name."""
    root = Path(root)
    for i, name in enumerate(names):
        make_checkpoint(root / name, name, seed=i)
    return root
