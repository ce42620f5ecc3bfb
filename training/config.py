"""A training run's settings: one dataclass, read from a TOML file plus `--set key=value`.

    [run]        name, seed, steps, batch_size, log/snapshot/grid/eval intervals, device...
    [model]      model.config.ModelConfig (architecture and variant)
    [objective]  model.config.ObjectiveConfig (loss weights)
    [optim]      model.config.OptimConfig (Adam of A.4) plus the warm-up

The resolved configuration is written as JSON into the run directory and into every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from model.config import ModelConfig, ObjectiveConfig, OptimConfig

Precision = Literal["auto", "fp32", "bf16"]


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    data: str = "data/digits-32"  # a prepared dataset (python -m training data ...)
    seed: int = 0
    steps: int = 10_000  # optimisation steps; paper: 30 epochs of 60k digits at batch 36 = 50k
    batch_size: int = 36  # per process; paper 5.2
    warmup_steps: int = 0  # linear learning-rate warm-up
    # Linear learning-rate decay to zero over the run's last steps (every optimiser); a function
    # of the step alone, so a resumed run follows the same schedule.
    cooldown_steps: int = 0
    device: str = "auto"  # auto: cuda when present
    precision: Precision = "auto"  # auto: bf16 autocast where it is faster (CUDA, AMX/AVX512-BF16)
    channels_last: bool = True
    threads: int = 0  # torch intra-op threads on CPU; 0: torch's default
    log_every: int = 50
    snapshot_every: int = 1000  # full training state, for exact resume
    grid_every: int = 1000  # reconstructions, samples and transfers as PNG
    eval_every: int = 0  # quick probe evaluation during training; 0: only at the end
    eval_images: int = 2000  # per evaluation split, for the quick in-training evaluation
    time_limit_minutes: float = 0.0  # stop (saving everything) after this wall time; 0: none
    collapse_patience: int = 20  # log intervals of a discriminator at ~100% before it is reported
    export_dtype: Literal["float32", "float16"] = "float16"
    runs_root: str = "runs"
    # Compact training states kept in git (`python -m training carry`): a run with no state
    # under runs_root resumes from carry_root/<name>, so a fresh clone continues a long run.
    carry_root: str = "resume"
    # Another run's training state (runs/X/state or resume/X) that a run with none of its own
    # starts from when its objective adds networks, so it cannot resume (training/warm_start.py).
    init_from: str = ""


@dataclass(frozen=True)
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": dataclasses.asdict(self.run),
            "model": self.model.to_dict(),
            "objective": self.objective.to_dict(),
            "optim": self.optim.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        unknown = set(data) - {"run", "model", "objective", "optim"}
        if unknown:
            raise ValueError(f"unknown config sections: {sorted(unknown)}")
        run_keys = {f.name for f in dataclasses.fields(RunConfig)}
        bad = set(data.get("run", {})) - run_keys
        if bad:
            raise ValueError(f"unknown [run] keys: {sorted(bad)}")
        cfg = cls(
            run=RunConfig(**data.get("run", {})),
            model=ModelConfig.from_dict(data.get("model", {})),
            objective=ObjectiveConfig.from_dict(data.get("objective", {})),
            optim=OptimConfig.from_dict(data.get("optim", {})),
        )
        if cfg.model.variant == "vae" and cfg.objective.domain_weight > 0:
            # Refused here, before any data is read, rather than when the objective is built.
            raise ValueError(
                "objective.domain_weight needs a reference set: the plain VAE pools both sets;"
                " set objective.domain_weight=0 for variant 'vae'"
            )
        return cfg

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _parse_value(text: str) -> Any:
    """`--set` values are TOML scalars: 3, 1e-4, true, "name", [0.5, 0.99]."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string


_STRING_FIELDS = {
    "run": {f.name: f.type == "str" for f in dataclasses.fields(RunConfig)},
    "model": {f.name: f.type == "str" for f in dataclasses.fields(ModelConfig)},
}


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A TOML file (optional) with `section.key=value` overrides applied on top."""
    data: dict[str, dict[str, Any]] = {}
    if path is not None:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        parsed = _parse_value(value.strip())
        if _STRING_FIELDS.get(section, {}).get(name) and not isinstance(parsed, str):
            parsed = value.strip()  # run.name=nan is the name "nan", not a float
        data.setdefault(section, {})[name] = parsed
    return TrainConfig.from_dict(data)
