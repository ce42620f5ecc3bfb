"""One optimisation step of any variant: the two alternating phases, their optimisers and precision.

Shared by the training loop, the benchmark and the tests, so all three time and test the same code.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import torch

from model.config import OptimConfig
from model.networks import SRbVAE
from model.objectives import Objective


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the step's statistics say which."""

    def __init__(self, phase: str, stats: dict[str, float]):
        bad = sorted(k for k, v in stats.items() if not math.isfinite(v))
        super().__init__(f"non-finite {phase} loss at {bad}: {stats}")
        self.phase = phase
        self.stats = stats


def cpu_has_fast_bf16() -> bool:
    """bfloat16 matmuls run natively (AVX512-BF16 or AMX); elsewhere they are emulated and,
    measured on an AVX-512 Xeon without them, 3x slower than fp32 (bench/model_step.py)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def fastest_settings(device: torch.device) -> dict[str, bool]:
    """Keyword arguments of TrainStep that are fastest on `device`."""
    if device.type == "cuda":
        return {"mixed_precision": True, "channels_last": True}
    return {"mixed_precision": cpu_has_fast_bf16(), "channels_last": True}


def make_adam(params: list[torch.nn.Parameter], cfg: OptimConfig, lr: float | None = None):
    return torch.optim.Adam(params, lr=lr or cfg.lr, betas=cfg.betas, eps=cfg.eps)


@contextlib.contextmanager
def _frozen(params: list[torch.nn.Parameter]) -> Iterator[None]:
    """No gradient reaches `params` inside the block (the other phase's networks)."""
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)


class TrainStep:
    """Model phase (psi, theta, e^r) then discriminator phase (xi, gamma) on the same samples.

    `mixed_precision` runs the forward passes under bfloat16 autocast (CPU and CUDA: no loss
    scaling needed); with `channels_last` the conv nets use NHWC, about 3x faster on this CPU.
    """

    def __init__(
        self,
        objective: Objective,
        optim: OptimConfig | None = None,
        *,
        mixed_precision: bool = False,
        channels_last: bool = False,
        grad_sync: Callable[[list[torch.nn.Parameter]], None] | None = None,
    ):
        self.objective = objective
        self.net: SRbVAE = objective.net
        self.optim_cfg = optim or OptimConfig()
        self.mixed_precision = mixed_precision
        self.channels_last = channels_last
        # Data-parallel training averages gradients across processes before each update.
        self.grad_sync = grad_sync
        if channels_last:
            # Module.to() accepts memory_format at run time; torch's overloads omit it.
            self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model_params = self.net.model_parameters()
        self.disc_params = self.net.discriminator_parameters()
        self.opt_model = make_adam(self.model_params, self.optim_cfg)
        self.opt_disc = (
            make_adam(self.disc_params, self.optim_cfg, self.optim_cfg.disc_lr)
            if objective.has_discriminators
            else None
        )

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"model": self.opt_model}
        if self.opt_disc is not None:
            opts["disc"] = self.opt_disc
        return opts

    def _autocast(self, device: torch.device):
        if not self.mixed_precision:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __call__(
        self, x_u: torch.Tensor, x_r: torch.Tensor, *, measure_gradients: bool = False
    ) -> dict[str, float]:
        """One update of every network; returns the phases' statistics as floats.

        `measure_gradients` adds `grad/<term>/<module>`: the norm of the gradient that each
        weighted loss term sends to the generator, each encoder and e^r (one extra backward
        pass per term, so the loop asks for it at its logging cadence only), and the codes'
        reach (`_code_reach`)."""
        self.net.train()
        x_u, x_r = self._prepare(x_u), self._prepare(x_r)
        with _frozen(self.disc_params), self._autocast(x_u.device):
            result = self.objective.model_phase(x_u, x_r)
        if measure_gradients:
            result.stats.update(self._gradient_norms(result.terms))
            result.stats.update(self._code_reach(x_u))
        stats = _floats(result.stats)
        if not math.isfinite(stats["loss/total"]):
            raise NonFiniteLossError("model", stats)
        self.opt_model.zero_grad(set_to_none=True)
        result.loss.backward()
        if self.grad_sync is not None:
            self.grad_sync(self.model_params)
        self.opt_model.step()

        if self.opt_disc is not None:
            with _frozen(self.model_params), self._autocast(x_u.device):
                d_result = self.objective.discriminator_phase(result.cache)
            d_stats = _floats(d_result.stats)
            if not all(math.isfinite(v) for v in d_stats.values()):
                raise NonFiniteLossError("discriminator", d_stats)
            self.opt_disc.zero_grad(set_to_none=True)
            d_result.loss.backward()
            if self.grad_sync is not None:
                self.grad_sync(self.disc_params)
            self.opt_disc.step()
            stats.update(d_stats)
        return stats

    def _gradient_norms(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        net = self.net
        modules = {
            "generator": list(net.generator.parameters()),
            "encoder_z": list(net.encoder_z.parameters()),
            "encoder_e": list(net.encoder_e.parameters()),
            "e_ref": [net.e_ref],
        }
        params = [p for group in modules.values() for p in group]
        norms: dict[str, torch.Tensor] = {}
        for name, term in terms.items():
            if not term.requires_grad:
                continue
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            it = iter(grads)
            for module, group in modules.items():
                sq = [g.float().pow(2).sum() for g in (next(it) for _ in group) if g is not None]
                norms[f"grad/{name}/{module}"] = (
                    torch.stack(sq).sum().sqrt() if sq else torch.zeros((), device=term.device)
                )
        return norms

    @torch.no_grad()
    def _code_reach(self, x_u: torch.Tensor) -> dict[str, torch.Tensor]:
        """How far each code moves what the generator draws from `x_u`'s codes: the mean absolute
        pixel change (0 to 1) when e (`reach/e`) or z (`reach/z`) is another image's of the
        batch, as in a transfer. A generator that stops using e draws every transfer of a row
        alike, which no loss term shows directly."""
        net, b = self.net, x_u.shape[0]
        with self._autocast(x_u.device):
            mu_z, _ = net.encoder_z(x_u)
            mu_e, _ = net.encoder_e(x_u)
            drawn = net.generator(
                torch.cat([mu_z, mu_z, mu_z.roll(1, 0)]), torch.cat([mu_e, mu_e.roll(1, 0), mu_e])
            ).float()
        own, other_e, other_z = drawn.split(b)
        # Images are in [-1, 1]: half the absolute difference is the change on a 0-1 scale.
        return {
            "reach/e": 0.5 * (own - other_e).abs().mean(),
            "reach/z": 0.5 * (own - other_z).abs().mean(),
        }


def _floats(stats: dict[str, torch.Tensor]) -> dict[str, float]:
    """All statistics in one device-to-host copy instead of one sync each."""
    values = torch.stack([v.detach().float() for v in stats.values()]).tolist()
    return dict(zip(stats, values, strict=True))
