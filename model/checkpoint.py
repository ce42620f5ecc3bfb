"""Self-describing checkpoints: a safetensors file of weights beside a JSON manifest.

A checkpoint is a directory holding `<kind>.json` and the safetensors file it names, with the
file's SHA-256, the full model config and whatever the trainer records (data, step, metrics).
Nothing is ever unpickled: safetensors holds only tensors, JSON only plain values.

Two kinds:
- inference (`model.json`): encoders, generator and e^r, optionally float16, for serving;
- training state (`state.json`): every network, the optimisers and extra tensors (RNG states),
  for exact resume; its compact copy (`compact_training_state`) rounds the weights to float16
  and the optimiser moments to bfloat16, small enough to keep a long run's state in git.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from model.config import ModelConfig, ObjectiveConfig, method_name
from model.networks import SRbVAE
from model.target_prior import KEYS as SAMPLING_KEYS
from model.target_prior import TargetPrior

FORMAT_VERSION = 1
INFERENCE_MANIFEST = "model.json"
TRAINING_MANIFEST = "state.json"
_KINDS = {INFERENCE_MANIFEST: "srbvae-inference", TRAINING_MANIFEST: "srbvae-training-state"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the offending file."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp's file is private; a manifest is read by workers running as other users.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_checkpoint(
    directory: str | Path, manifest_name: str, tensors: dict[str, torch.Tensor], manifest: dict
) -> Path:
    """Writes the weights, then the manifest that vouches for them; returns the manifest path.

    The manifest is written last and atomically, so a crash mid-save leaves either the previous
    checkpoint or a manifest whose checksum exposes the partial weights file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights_name = Path(manifest_name).stem + ".safetensors"
    weights_path = directory / weights_name
    tmp = directory / f".{weights_name}.tmp"
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, weights_path)
    manifest = {
        "format": _KINDS[manifest_name],
        "format_version": FORMAT_VERSION,
        **manifest,
        "weights": {"file": weights_name, "sha256": sha256_of(weights_path)},
    }
    manifest_path = directory / manifest_name
    _atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest_path


def _manifest_path(path: str | Path, manifest_name: str) -> Path:
    path = Path(path)
    return path / manifest_name if path.is_dir() else path


def read_checkpoint(
    path: str | Path, manifest_name: str = INFERENCE_MANIFEST
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Manifest and tensors of a checkpoint directory (or its manifest file), verified."""
    manifest_path = _manifest_path(path, manifest_name)
    if not manifest_path.is_file():
        raise CheckpointError(f"{manifest_path}: checkpoint manifest not found")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{manifest_path}: not a valid JSON manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") not in _KINDS.values():
        raise CheckpointError(f"{manifest_path}: not an sRb-VAE checkpoint manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{manifest_path}: format version {manifest.get('format_version')} is not supported"
        )
    weights = manifest.get("weights") or {}
    name = str(weights.get("file", ""))
    if not name or Path(name).name != name:
        raise CheckpointError(f"{manifest_path}: invalid weights file name {name!r}")
    weights_path = manifest_path.parent / name
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: weights file named by {manifest_path} is missing")
    if sha256_of(weights_path) != weights.get("sha256"):
        raise CheckpointError(
            f"{weights_path}: SHA-256 does not match {manifest_path} (truncated or altered file)"
        )
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({exc})") from exc
    return manifest, tensors


def _load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """load_state_dict(strict) with an error that names the file and the mismatch."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            details.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            shapes = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in wrong[:3]]
            details.append(f"shape mismatch {shapes}")
        raise CheckpointError(
            f"{source}: weights do not match its model config: {'; '.join(details)}"
        )
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


def _config_from(manifest: dict, manifest_path: Path) -> ModelConfig:
    try:
        return ModelConfig.from_dict(manifest["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{manifest_path}: invalid model config ({exc})") from exc


# --- inference export -------------------------------------------------------------------------


def export_inference(
    net: SRbVAE,
    directory: str | Path,
    *,
    name: str,
    dtype: torch.dtype = torch.float32,
    prior: TargetPrior | None = None,
    **record: Any,
) -> Path:
    """The slim checkpoint the worker serves: encoders, generator, e^r and, when given, the
    fitted distribution `sample` draws e from (kept in float32 whatever `dtype`).

    `record` goes into the manifest as is (e.g. data=..., training=..., metrics=...).
    """
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"unsupported export dtype {dtype}")
    tensors = {k: v.to(dtype) for k, v in net.inference_state_dict().items()}
    manifest = {
        "name": name,
        "model_config": net.cfg.to_dict(),
        "dtype": str(dtype).removeprefix("torch."),
        **record,
    }
    if prior is not None and prior.fitted_on:
        _add_prior(tensors, manifest, prior, net.cfg.e_dim)
    return write_checkpoint(directory, INFERENCE_MANIFEST, tensors, manifest)


def manifest_method(manifest: dict[str, Any]) -> str:
    """The training method an inference manifest records, or the one its config implies."""
    if "method" in manifest:
        return str(manifest["method"])
    model_cfg = ModelConfig.from_dict(manifest["model_config"])
    objective = manifest.get("training", {}).get("config", {}).get("objective", {})
    return method_name(model_cfg, ObjectiveConfig.from_dict(objective))


def _add_prior(tensors: dict, manifest: dict, prior: TargetPrior, e_dim: int) -> None:
    if prior.e_dim != e_dim:
        raise ValueError(f"prior has e_dim {prior.e_dim}, the model {e_dim}")
    tensors.update(prior.tensors())
    manifest["sampling"] = prior.describe()


def load_inference(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[SRbVAE, TargetPrior, dict[str, Any]]:
    """Encoders, generator and e^r of an inference export, in float32 and eval mode, with the
    distribution `sample` draws e from (N(0, I) when the export stores none)."""
    manifest, tensors = read_checkpoint(path, INFERENCE_MANIFEST)
    manifest_path = _manifest_path(path, INFERENCE_MANIFEST)
    weights_path = manifest_path.parent / manifest["weights"]["file"]
    cfg = _config_from(manifest, manifest_path)
    sampling = {k: tensors.pop(k) for k in SAMPLING_KEYS if k in tensors}
    try:
        prior = TargetPrior.from_tensors(sampling, cfg.e_dim, manifest.get("sampling"))
    except ValueError as exc:
        raise CheckpointError(f"{weights_path}: {exc}") from exc
    # Discriminators are not part of the export: build the inference part only.
    net = SRbVAE(cfg, with_discriminators=False)
    _load_into(net, tensors, weights_path)
    return net.to(device).eval(), prior, manifest


def attach_target_prior(path: str | Path, prior: TargetPrior) -> Path:
    """Rewrites an inference export with `prior` as its sampling distribution, the weights
    (bit for bit) and the rest of the manifest unchanged; returns the manifest path."""
    manifest, tensors = read_checkpoint(path, INFERENCE_MANIFEST)
    manifest_path = _manifest_path(path, INFERENCE_MANIFEST)
    cfg = _config_from(manifest, manifest_path)
    tensors = {k: v for k, v in tensors.items() if k not in SAMPLING_KEYS}
    record = {k: v for k, v in manifest.items() if k not in ("format", "format_version", "weights")}
    _add_prior(tensors, record, prior, cfg.e_dim)
    return write_checkpoint(manifest_path.parent, INFERENCE_MANIFEST, tensors, record)


def update_manifest(path: str | Path, **fields: Any) -> Path:
    """Sets top-level `fields` of an inference manifest, atomically; the weights and their
    checksum are untouched (it covers the weights, not the manifest). Returns its path."""
    manifest, _ = read_checkpoint(path, INFERENCE_MANIFEST)
    manifest.update(fields)
    manifest_path = _manifest_path(path, INFERENCE_MANIFEST)
    _atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest_path


# --- training state ---------------------------------------------------------------------------


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    state = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
        for g in state["param_groups"]
    ]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _unflatten_optimizer(name: str, meta: dict, tensors: dict[str, torch.Tensor]) -> dict:
    prefix = f"optim.{name}."
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, entry = key[len(prefix) :].split(".", 1)
            state.setdefault(int(idx), {})[entry] = value
    for idx, entries in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(entries)
    groups = [
        {k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def save_training_state(
    directory: str | Path,
    net: SRbVAE,
    optimizers: dict[str, torch.optim.Optimizer],
    *,
    extra_tensors: dict[str, torch.Tensor] | None = None,
    **record: Any,
) -> Path:
    """Every network, the optimisers' moments and `extra_tensors` (RNG states, ...)."""
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    optim_meta = {}
    for name, opt in optimizers.items():
        t, meta = _flatten_optimizer(name, opt)
        tensors.update(t)
        optim_meta[name] = meta
    for key, value in (extra_tensors or {}).items():
        tensors[f"extra.{key}"] = value
    manifest = {"model_config": net.cfg.to_dict(), "optimizers": optim_meta, **record}
    return write_checkpoint(directory, TRAINING_MANIFEST, tensors, manifest)


def load_training_state(
    path: str | Path,
    net: SRbVAE,
    optimizers: dict[str, torch.optim.Optimizer],
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restores `net` and `optimizers` in place; returns the manifest and the extra tensors."""
    manifest, tensors = read_checkpoint(path, TRAINING_MANIFEST)
    manifest_path = _manifest_path(path, TRAINING_MANIFEST)
    if _config_from(manifest, manifest_path) != net.cfg:
        raise CheckpointError(
            f"{manifest_path}: model config differs from the network being resumed"
        )
    weights_path = manifest_path.parent / manifest["weights"]["file"]
    _load_into(net, {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, weights_path)
    saved = manifest.get("optimizers", {})
    if set(saved) != set(optimizers):
        raise CheckpointError(
            f"{manifest_path}: optimisers {sorted(saved)} != {sorted(optimizers)}"
        )
    for name, opt in optimizers.items():
        try:
            opt.load_state_dict(_unflatten_optimizer(name, saved[name], tensors))
        except (ValueError, KeyError) as exc:
            raise CheckpointError(
                f"{weights_path}: optimiser {name!r} does not fit ({exc})"
            ) from exc
    extra = {k[6:]: v for k, v in tensors.items() if k.startswith("extra.")}
    return manifest, extra


def compact_training_state(source: str | Path, target: str | Path) -> Path:
    """A copy of a training state with float16 weights and bfloat16 optimiser moments.

    About a third of the float32 state's size. Loading it (`load_training_state`) casts back to
    float32, so a run resumes from it on any machine, from rounded values: close to, not bit
    for bit, where an uninterrupted run would be. bfloat16 for the moments because Adam's
    second moments (1e-12 and smaller) underflow float16."""
    manifest, tensors = read_checkpoint(source, TRAINING_MANIFEST)
    compact = {}
    for key, value in tensors.items():
        if value.is_floating_point() and key.startswith("net."):
            value = value.to(torch.float16)
        elif value.is_floating_point() and key.startswith("optim.") and value.dim() > 0:
            value = value.to(torch.bfloat16)  # Adam's step counts (0-d) stay exact
        compact[key] = value
    record = {k: v for k, v in manifest.items() if k not in ("format", "format_version", "weights")}
    record["compact"] = True
    return write_checkpoint(target, TRAINING_MANIFEST, compact, record)
