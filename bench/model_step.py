"""Training-step throughput of the default model configurations.

Prints, for each configuration and precision: unlabelled images per second, FLOPs per image
(forward and backward of every phase, counted by torch's FLOP counter), achieved FLOP/s and its
fraction of this machine's bfloat16 matmul peak measured in the same run, and the speed-up of
bf16 autocast + channels_last over plain fp32. Figures are only comparable within one run.

    python -m bench.model_step [--steps 5] [--batch 36] [--configs cpu-32,paper-64]
    python -m bench.model_step --configs configs/digits-cpu.toml,configs/digits-srbvae-cpu.toml

A name ending in .toml is a training configuration: its networks and objective, as trained.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from model.config import ModelConfig, ObjectiveConfig
from model.networks import SRbVAE, count_parameters
from model.objectives import make_objective
from model.training_step import TrainStep, fastest_settings

# The paper's networks (ModelConfig's defaults), and narrow ones that train in about an hour on
# 2 CPU cores (widths 32-64-128).
CPU_WIDTHS = dict(base_channels=32, max_channels=128, fc_dim=256)
CONFIGS = {
    "cpu-32": lambda variant: ModelConfig(resolution=32, variant=variant, **CPU_WIDTHS),
    "cpu-64": lambda variant: ModelConfig(resolution=64, variant=variant, **CPU_WIDTHS),
    "paper-64": lambda variant: ModelConfig(resolution=64, variant=variant),
}


def matmul_peak(
    device: torch.device, dtype: torch.dtype, n: int = 2048, seconds: float = 2.0
) -> float:
    """Achieved FLOP/s of an n x n matmul in `dtype`: the practical peak to compare against."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        count += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * count / (time.perf_counter() - start)


def _networks(cfg: ModelConfig, objective: ObjectiveConfig | None) -> SRbVAE:
    adversary = objective is not None and objective.domain_weight > 0
    return SRbVAE(cfg, domain_adversary=adversary)


def step_flops(
    cfg: ModelConfig, objective: ObjectiveConfig | None, batch: int, device: torch.device
) -> float:
    net = _networks(cfg, objective).to(device)
    step = TrainStep(make_objective(net, objective))
    x = torch.rand(batch, 3, cfg.resolution, cfg.resolution, device=device) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        step(x, x)
    return counter.get_total_flops()


MODES = {  # name: TrainStep keyword arguments
    "fp32": {"mixed_precision": False, "channels_last": False},
    "fp32+CL": {"mixed_precision": False, "channels_last": True},
    "bf16+CL": {"mixed_precision": True, "channels_last": True},
}


def throughput(
    cfg: ModelConfig,
    objective: ObjectiveConfig | None,
    batch: int,
    steps: int,
    device: torch.device,
    mode: str,
) -> float:
    """Unlabelled images per second (each step also consumes `batch` reference images)."""
    net = _networks(cfg, objective).to(device)
    step = TrainStep(make_objective(net, objective), **MODES[mode])
    x = torch.rand(batch, 3, cfg.resolution, cfg.resolution, device=device) * 2 - 1
    step(x, x)  # warm-up: allocator, kernels, autotuning
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step(x, x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=36)  # paper 5.2
    parser.add_argument("--configs", default="cpu-32,paper-64")
    parser.add_argument("--variants", default="srbvae,rbvae")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    peak_bf16 = matmul_peak(device, torch.bfloat16)
    peak_fp32 = matmul_peak(device, torch.float32)
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"matmul peak: bf16 {peak_bf16 / 1e9:.1f} GFLOP/s, fp32 {peak_fp32 / 1e9:.1f} GFLOP/s")
    print(f"TrainStep settings chosen by fastest_settings(): {fastest_settings(device)}")
    print()
    header = (
        "| config | variant | params | GFLOP/image | "
        + " | ".join(f"{m} img/s" for m in MODES)
        + " | best / fp32 | best GFLOP/s | of bf16 peak | of fp32 peak |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for name, variant, cfg, objective in _configurations(args.configs, args.variants):
        flops_per_image = step_flops(cfg, objective, args.batch, device) / args.batch
        rates = {m: throughput(cfg, objective, args.batch, args.steps, device, m) for m in MODES}
        best = max(rates.values())
        achieved = best * flops_per_image
        params = count_parameters(SRbVAE(cfg))
        print(
            f"| {name} | {variant} | {params / 1e6:.1f}M | {flops_per_image / 1e9:.2f} | "
            + " | ".join(f"{r:.1f}" for r in rates.values())
            + f" | {best / rates['fp32']:.2f}x | {achieved / 1e9:.1f} "
            f"| {achieved / peak_bf16:.1%} | {achieved / peak_fp32:.1%} |",
            flush=True,
        )


def _configurations(names: str, variants: str):
    """(name, variant, model config, objective or None) for each named configuration."""
    from training.config import load_config

    for name in names.split(","):
        if name.endswith(".toml"):
            cfg = load_config(name)
            yield Path(name).stem, cfg.model.variant, cfg.model, cfg.objective
            continue
        for variant in variants.split(","):
            yield name, variant, CONFIGS[name](variant), None


if __name__ == "__main__":
    main()
