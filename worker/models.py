"""The models a worker serves: found in the model directory, verified, loaded and warmed up
once per process, before the worker takes any job."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from contract.registry import ModelInfo
from model import CheckpointError, ReferenceVAE, load_model

log = logging.getLogger(__name__)

MANIFEST = "model.json"
CARD_FIELDS = ("data", "training", "metrics", "dtype", "sampling")  # sampling: how /sample draws e


class StartupError(RuntimeError):
    """The worker must not start: the message says why and what to fix."""


@dataclass(frozen=True)
class ServedModel:
    name: str  # the directory name: what tasks call it
    vae: ReferenceVAE
    e_ref: torch.Tensor  # (1, e_dim) on the CPU: e for "no attributes" (generate with e=None)
    info: ModelInfo


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise StartupError(f"device {device!r} requested but CUDA is not available")
    return dev


def find_checkpoints(model_dir: Path) -> dict[str, Path]:
    if not model_dir.is_dir():
        raise StartupError(f"model directory {model_dir} does not exist")
    found = {p.parent.name: p.parent for p in sorted(model_dir.glob(f"*/{MANIFEST}"))}
    if not found:
        raise StartupError(f"no checkpoints (*/{MANIFEST}) in model directory {model_dir}")
    return found


def load_models(model_dir: Path, device: torch.device) -> dict[str, ServedModel]:
    """Every checkpoint in model_dir, verified (SHA-256, safetensors only) by load_model.

    One bad checkpoint refuses start-up: serving a partial set would make /models lie.
    """
    served = {}
    for name, path in find_checkpoints(model_dir).items():
        t0 = time.perf_counter()
        try:
            vae = load_model(path, device=device)
        except CheckpointError as exc:
            raise StartupError(f"checkpoint {name!r} refused: {exc}") from exc
        if vae.name != name:
            log.warning("checkpoint directory %s holds a model named %r", path, vae.name)
        with torch.inference_mode():
            e_ref = vae.net.expand_e_ref(1).float().cpu()
        served[name] = ServedModel(name, vae, e_ref, model_info(name, vae))
        log.info(
            "loaded %s (%dx%d, z %d, e %d, sha256 %s) on %s in %.2f s",
            name, vae.resolution, vae.resolution, vae.z_dim, vae.e_dim,
            vae.manifest["weights"]["sha256"][:12], device, time.perf_counter() - t0,
        )  # fmt: skip
    return served


def model_info(name: str, vae: ReferenceVAE) -> ModelInfo:
    m = vae.manifest
    return ModelInfo(
        name=name,
        resolution=vae.resolution,
        z_dim=vae.z_dim,
        e_dim=vae.e_dim,
        variant=vae.cfg.variant,
        checkpoint_sha256=m["weights"]["sha256"],
        card={k: m[k] for k in CARD_FIELDS if k in m},
    )


def warm_up(models: dict[str, ServedModel], batch_sizes: tuple[int, ...] = (1, 8)) -> None:
    """One pass per model and batch size, so the first request does not pay for allocator
    growth, kernel selection or CUDA context creation."""
    for m in models.values():
        t0 = time.perf_counter()
        for b in batch_sizes:
            x = torch.zeros(b, 3, m.vae.resolution, m.vae.resolution)
            z, e = m.vae.encode_tensor(x)
            m.vae.generate_tensor(z, e)
        log.info("warmed up %s in %.2f s", m.name, time.perf_counter() - t0)
