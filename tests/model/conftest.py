import pytest
import torch

from model.config import ModelConfig


def tiny_config(resolution: int = 32, **overrides) -> ModelConfig:
    """Narrow networks: the same architecture as the served models, small enough for CPU tests."""
    defaults = dict(base_channels=8, max_channels=32, fc_dim=64, z_dim=8, e_dim=4)
    defaults.update(overrides)
    return ModelConfig(resolution=resolution, **defaults)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def images(batch: int, resolution: int) -> torch.Tensor:
    return torch.rand(batch, 3, resolution, resolution) * 2 - 1
