"""Starting a run from another run's training state when the objective changes (`run.init_from`).

Resuming (loop.py) needs the same networks and optimisers; a run that adds a term with a network
of its own (the latent domain adversary, the transfer adversary) to a trained model cannot
resume. This builds the source run's networks and optimisers from the configuration stored in
its state, loads that state exactly, and copies across, by parameter name, every weight and
every Adam moment the new run shares with it. Modules the source lacks start fresh; the step,
the wall time and the RNG state continue the source's, so `run.steps` still counts every step
the weights have seen.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import torch

from model.checkpoint import TRAINING_MANIFEST, CheckpointError, load_training_state
from model.networks import SRbVAE
from model.objectives import make_objective
from model.training_step import TrainStep
from training.config import TrainConfig

log = logging.getLogger(__name__)

# [model] settings a trained state takes on: style modulation only adds modules that start as
# the identity, framing changes only what q(z|x) sees.
TAKEN_ON_MODEL_SETTINGS = ("style_modulation", "z_encoder_framed")


def source_config(path: str | Path) -> TrainConfig:
    """The configuration a training state was written with."""
    manifest_path = Path(path) / TRAINING_MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{manifest_path}: run.init_from names no training state")
    manifest = json.loads(manifest_path.read_text())
    if "config" not in manifest:
        raise CheckpointError(f"{path}: the training state does not record its configuration")
    return TrainConfig.from_dict(manifest["config"])


def warm_start(
    path: str | Path,
    net: SRbVAE,
    optimizers: dict[str, torch.optim.Optimizer],
    cfg: TrainConfig,
) -> tuple[dict[str, Any], dict[str, torch.Tensor], list[str]]:
    """Loads what `net` and `optimizers` share with the training state at `path`.

    Returns the source's manifest, its extra tensors (RNG states) and the names of the
    parameters that start fresh."""
    src_cfg = source_config(path)
    taken_on = {name: getattr(cfg.model, name) for name in TAKEN_ON_MODEL_SETTINGS}
    if dataclasses.replace(src_cfg.model, **taken_on) != cfg.model:
        raise CheckpointError(
            f"{path}: run.init_from needs the same [model] settings; the state was trained with "
            f"{src_cfg.model.to_dict()}"
        )
    src_net = SRbVAE.for_objective(src_cfg.model, src_cfg.objective).to(
        next(net.parameters()).device
    )
    src_step = TrainStep(make_objective(src_net, src_cfg.objective), src_cfg.optim)
    src_optimizers = src_step.optimizers()
    manifest, extra = load_training_state(path, src_net, src_optimizers)

    src_state = src_net.state_dict()
    own = net.state_dict()
    with torch.no_grad():
        for name, value in own.items():
            if name in src_state:
                value.copy_(src_state[name])
    fresh = [name for name, _ in net.named_parameters() if name not in src_state]
    dropped = sorted(set(src_state) - set(own))
    if dropped:
        log.info("init_from %s: not used by this run: %s", path, ", ".join(dropped))

    # Adam's moments follow their parameters by name; the new run's learning rates stand.
    by_name = dict(net.named_parameters())
    src_names = {id(p): name for name, p in src_net.named_parameters()}
    owner = {
        id(p): opt for opt in optimizers.values() for g in opt.param_groups for p in g["params"]
    }
    for src_opt in src_optimizers.values():
        for group in src_opt.param_groups:
            for p in group["params"]:
                name = src_names[id(p)]
                state = src_opt.state.get(p)
                target = by_name.get(name)
                if not state or target is None or id(target) not in owner:
                    continue
                owner[id(target)].state[target] = {k: _like(v, target) for k, v in state.items()}
    return manifest, extra, fresh


def _like(value: Any, param: torch.Tensor) -> Any:
    """An optimiser state entry moved to `param`'s device, in its memory format when it is a
    moment of the same shape (channels_last conv weights)."""
    if not torch.is_tensor(value):
        return value
    if value.shape == param.shape:
        return torch.empty_like(param).copy_(value)
    return value.detach().clone().to(param.device)
