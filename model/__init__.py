"""sRb-VAE and Rb-VAE (Ruiz et al. 2019): networks, objectives, checkpoints and inference.

The one copy of model code, imported by `training/` and `worker/`.
"""

from model.checkpoint import CheckpointError
from model.config import ModelConfig, ObjectiveConfig, OptimConfig
from model.inference import ReferenceVAE, load_model

__all__ = [
    "CheckpointError",
    "ModelConfig",
    "ObjectiveConfig",
    "OptimConfig",
    "ReferenceVAE",
    "load_model",
]
