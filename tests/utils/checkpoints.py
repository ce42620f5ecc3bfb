"""Small real checkpoints for tests: random weights, the served architecture, exported by the
same code as the trained models."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from model.checkpoint import export_inference
from model.config import ModelConfig
from model.networks import SRbVAE
from model.target_prior import TargetPrior
from tests.utils.faults import evil_pickle


def tiny_model_config(resolution: int = 32, **overrides) -> ModelConfig:
    defaults = dict(base_channels=8, max_channels=32, fc_dim=64, z_dim=8, e_dim=4)
    defaults.update(overrides)
    return ModelConfig(resolution=resolution, **defaults)


# A faces model records its training faces' framing, which photos are aligned to (worker/photo.py).
FACES_DATA = {"source": "faces", "zoom": 1.8}


def make_checkpoint(
    directory: str | Path,
    name: str,
    *,
    seed: int = 0,
    fitted_prior: bool = False,
    data: dict | None = None,
    **config,
) -> Path:
    """Exports a randomly initialised model (e^r drawn too, so it differs from zero e);
    `fitted_prior`: with a sampling Gaussian far from N(0, I), as a trained export has;
    `data`: the manifest's record of the training data (source "test" when not given)."""
    torch.manual_seed(seed)
    net = SRbVAE(tiny_model_config(**config), with_discriminators=False)
    with torch.no_grad():
        net.e_ref.normal_()
    prior = None
    if fitted_prior:
        e_dim = net.cfg.e_dim
        prior = TargetPrior.fit(3.0 + 0.2 * torch.randn(64, e_dim))
    directory = Path(directory)
    export_inference(
        net,
        directory,
        name=name,
        data={"source": "test", **(data or {}), "description": "random weights for tests"},
        training={"command": "tests.utils.checkpoints.make_checkpoint", "step": 0},
        metrics={},
        prior=prior,
    )
    return directory


def make_model_dir(root: str | Path, names: tuple[str, ...] = ("digits", "faces")) -> Path:
    """A model directory as the worker expects it: one checkpoint directory per model name;
    the first samples from a fitted Gaussian, the others from N(0, I); a name that starts with
    "faces" is a faces model (it takes photos)."""
    root = Path(root)
    for i, name in enumerate(names):
        data = FACES_DATA if name.startswith("faces") else None
        make_checkpoint(root / name, name, seed=i, fitted_prior=i == 0, data=data)
    return root


def tamper_weights(weights: Path) -> None:
    """Flips the last byte: the SHA-256 no longer matches the manifest."""
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))


def pickle_weights(weights: Path, marker: Path) -> None:
    """Replaces the weights by a pickle that would create `marker` if anything unpickled it,
    and updates the manifest to its SHA-256, so only the format check stands in the way."""
    weights.write_bytes(evil_pickle(str(marker)))
    manifest_path = weights.parent / "model.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["weights"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
