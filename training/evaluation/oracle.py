"""An evaluation-only 'oracle': a CNN trained on the ground-truth factors of a prepared dataset.

It reads the target factors (and class), and the common factors (a digit's class, a face's
identity factors) off any image, so a transfer or sample made by a generative model can be
checked numerically: did the style move, did the digit stay? It never touches the generative
model's training, and it is trained on the training splits, never on the evaluation splits.
Cached beside the dataset as safetensors + JSON.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from model.images import uint8_to_tensor
from training.data import PreparedDataset

log = logging.getLogger(__name__)
ORACLE_VERSION = 1


class OracleNet(nn.Module):
    def __init__(self, resolution: int, n_factors: int, n_classes: int, n_common: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c, size = 3, 16, resolution
        while size > 4:
            layers += [
                nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2),
            ]  # fmt: skip
            c_in, c, size = c, min(2 * c, 64), size // 2
        self.trunk = nn.Sequential(
            *layers, nn.Flatten(), nn.Linear(c_in * size * size, 128), nn.ReLU()
        )
        self.n_factors, self.n_classes, self.n_common = n_factors, n_classes, n_common
        self.head = nn.Linear(128, n_factors + n_classes + n_common)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> factors (B, F) in [0, 1], class logits (B, K), common factors (B, C) in [0, 1]."""
        h = self.head(self.trunk(x))
        f, k = self.n_factors, self.n_classes
        return torch.sigmoid(h[:, :f]), h[:, f : f + k], torch.sigmoid(h[:, f + k :])


class Oracle:
    """A trained OracleNet with batched prediction on uint8 images or [-1, 1] tensors."""

    def __init__(self, net: OracleNet, info: dict):
        self.net = net.eval()
        self.info = info

    @torch.inference_mode()
    def predict(self, x: torch.Tensor | np.ndarray, batch: int = 512) -> dict[str, np.ndarray]:
        if isinstance(x, np.ndarray):
            x = uint8_to_tensor(x)
        parts: dict[str, list[np.ndarray]] = {"factors": [], "class": [], "common": []}
        for start in range(0, len(x), batch):
            f, logits, c = self.net(x[start : start + batch].float())
            parts["factors"].append(f.numpy())
            parts["class"].append(
                logits.argmax(1).numpy() if logits.shape[1] else np.zeros(len(f), int)
            )
            parts["common"].append(c.numpy())
        return {k: np.concatenate(v) for k, v in parts.items()}


def _training_arrays(data: PreparedDataset) -> tuple[np.ndarray, ...]:
    splits = [data["unlabelled"], data["reference"]]
    return tuple(
        np.concatenate([np.asarray(getattr(s, k)) for s in splits])
        for k in ("images", "factors", "labels", "common")
    )


def train_oracle(
    data: PreparedDataset, steps: int = 2000, batch: int = 64, seed: int = 0
) -> Oracle:
    torch.manual_seed(seed)
    images, factors, labels, common = _training_arrays(data)
    n_classes = len(data.class_names)
    net = OracleNet(data.resolution, factors.shape[1], n_classes, common.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    rng = np.random.default_rng(seed)
    started = time.monotonic()
    net.train()
    for step in range(steps):
        idx = np.sort(rng.choice(len(images), batch, replace=False))
        f, logits, c = net(uint8_to_tensor(images[idx]))
        loss = F.l1_loss(f, torch.from_numpy(factors[idx]))
        if n_classes:
            y = torch.from_numpy(labels[idx])
            known = y >= 0
            if known.any():
                loss = loss + 0.1 * F.cross_entropy(logits[known], y[known])
        if common.shape[1]:
            loss = loss + F.l1_loss(c, torch.from_numpy(common[idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 500 == 0:
            log.info("oracle step %d/%d loss %.4f", step + 1, steps, loss.item())
    oracle = Oracle(net, {"train_seconds": round(time.monotonic() - started, 1), "steps": steps})
    oracle.info["accuracy_on_eval_score"] = oracle_floor(oracle, data)
    return oracle


def oracle_floor(oracle: Oracle, data: PreparedDataset) -> dict[str, float]:
    """How well the oracle reads real held-out images: the best any generated image can score,
    and, factor by factor (`<factor>_mae`), about as well as a network trained with every label
    reads the factor off the pixels: a ceiling for the probes on any learned code."""
    split = data["eval_score"]
    pred = oracle.predict(np.asarray(split.images))
    errors = np.abs(pred["factors"] - split.factors)
    out = {"factor_mae": float(errors.mean())}
    by_factor = zip(data.factor_names, errors.mean(0), strict=True)
    out |= {f"{name}_mae": float(col) for name, col in by_factor}
    if len(data.class_names):
        out["class_accuracy"] = float((pred["class"] == split.labels).mean())
    if split.common.shape[1]:
        out["common_mae"] = float(np.abs(pred["common"] - split.common).mean())
    return out


def load_or_train_oracle(
    data: PreparedDataset, cache_dir: Path | None = None, steps: int = 2000
) -> Oracle:
    cache_dir = cache_dir or data.path / "oracle"
    weights, info_path = cache_dir / "oracle.safetensors", cache_dir / "oracle.json"
    n_classes = len(data.class_names)
    n_factors, n_common = data["eval_score"].factors.shape[1], data["eval_score"].common.shape[1]
    if weights.is_file() and info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("version") == ORACLE_VERSION and info.get("steps") == steps:
            net = OracleNet(data.resolution, n_factors, n_classes, n_common)
            net.load_state_dict(load_file(str(weights)))
            return Oracle(net, info)
    log.info("training the evaluation oracle for %s (cached in %s)", data.path, cache_dir)
    oracle = train_oracle(data, steps=steps)
    oracle.info["version"] = ORACLE_VERSION
    cache_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in oracle.net.state_dict().items()}, str(weights))
    info_path.write_text(json.dumps(oracle.info, indent=2) + "\n")
    return oracle
