"""Data-parallel training across processes launched by torchrun (NCCL on GPUs, gloo on CPU).

Every process holds the full model, draws its own share of each global batch, and averages
gradients with one all-reduce per phase before the optimiser step, which is what
DistributedDataParallel does. The objectives call the sub-networks several times per backward
pass and freeze one phase's networks during the other's, which DDP's hooks do not support, so the
averaging is done explicitly (coalesced into one flat buffer per phase).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(preference)


def setup(device: torch.device) -> Distributed:
    """Joins the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank)


def teardown(ctx: Distributed) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module) -> None:
    """Every process starts from rank 0's weights."""
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for grad, synced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        grad.copy_(synced)


def any_process(ctx: Distributed, flag: bool, device: torch.device) -> bool:
    """True on every process when `flag` is true on any: they must stop at the same step."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(ctx: Distributed) -> None:
    if ctx.enabled:
        dist.barrier()


def assert_in_sync(module: torch.nn.Module) -> None:
    """Raises if the processes' weights have drifted apart (gradients not averaged)."""
    total = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum().reshape(1)
    gathered = [torch.zeros_like(total) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, total)
    if any(not torch.allclose(g, gathered[0], rtol=1e-9, atol=0) for g in gathered):
        raise RuntimeError(f"weights differ across processes: {[g.item() for g in gathered]}")
