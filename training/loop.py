"""The training loop, top to bottom: devices, data, networks, optimisers, resume, loop, export.

A run directory holds everything a person or a later process needs:
    config.json        the resolved configuration
    metrics.jsonl      one line per log interval (losses, throughput, warnings, probe scores)
    grids/             reconstructions, samples and transfers at every grid interval
    state/             the latest full training state (exact resume; SIGTERM and Ctrl-C save it)
    export/            the slim inference checkpoint the worker serves
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from model.checkpoint import (
    attach_target_prior,
    export_inference,
    load_training_state,
    save_training_state,
    update_manifest,
)
from model.config import method_name
from model.inference import ReferenceVAE, load_model
from model.networks import SRbVAE
from model.objectives import make_objective
from model.training_step import NonFiniteLossError, TrainStep, fastest_settings
from training import distributed
from training.batches import BatchSampler, load_batch
from training.config import RunConfig, TrainConfig
from training.data import PreparedDataset
from training.data.faces.render import ZOOM as FACES_ZOOM
from training.domain import fit_domain_reference
from training.grids import write_grids
from training.monitor import CollapseMonitor
from training.prior import PREVIEW_IMAGES, fit_target_prior
from training.publish import written_whole
from training.stopping import StopRequested, stop_signals
from training.warm_start import warm_start

log = logging.getLogger(__name__)
METRICS = "metrics.jsonl"


def _mixed_precision(cfg: TrainConfig, device: torch.device) -> bool:
    if cfg.run.precision == "auto":
        return fastest_settings(device)["mixed_precision"]
    return cfg.run.precision == "bf16"


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"rng.torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["rng.cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(extra: dict[str, torch.Tensor], device: torch.device) -> None:
    if "rng.torch" in extra:
        torch.set_rng_state(extra["rng.torch"])
    if device.type == "cuda" and "rng.cuda" in extra:
        torch.cuda.set_rng_state(extra["rng.cuda"], device)


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _drop_records_after(path: Path, step: int) -> None:
    """Keeps the metrics records up to `step`: a resumed run writes the later ones again."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(kept))


def dataset_record(data: PreparedDataset, path: str) -> dict[str, Any]:
    """What the model card says about the training data."""
    meta = data.meta
    return {
        "path": path,
        "source": data.source,
        "resolution": data.resolution,
        "sizes": {name: len(split) for name, split in data.splits.items()},
        "factor_names": list(data.factor_names),
        "class_names": list(data.class_names),
        "seed": meta.get("seed"),
        # The faces' framing: the service aligns faces in photos to it. Faces data built
        # before the zoom was recorded have the renderer's default.
        "zoom": meta.get("zoom", FACES_ZOOM if data.source == "faces" else None),
    }


def lr_scale(step: int, run: RunConfig) -> float:
    """The learning-rate factor for the update after `step` updates: the warm-up's linear rise,
    then 1, then the cool-down's linear fall to zero at `run.steps`."""
    scale = 1.0
    if run.warmup_steps:
        scale = min(scale, (step + 1) / run.warmup_steps)
    if run.cooldown_steps:
        scale = min(scale, max(0.0, (run.steps - step) / run.cooldown_steps))
    return scale


def train(cfg: TrainConfig, *, command: str = "", resume: bool = True) -> Path:
    """Trains (or resumes) the run `cfg.run.name`; returns its directory."""
    run = cfg.run
    device = distributed.resolve_device(run.device, int(os.environ.get("LOCAL_RANK", "0")))
    ctx = distributed.setup(device)
    if run.threads and device.type == "cpu":
        torch.set_num_threads(run.threads)
    torch.manual_seed(run.seed * 1000 + ctx.rank)
    run_dir = Path(run.runs_root) / run.name
    state_dir, export_dir, grid_dir = run_dir / "state", run_dir / "export", run_dir / "grids"
    metrics_path = run_dir / METRICS
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:  # a fresh start must not leave the previous run's pictures or export
            for stale in (state_dir, export_dir, grid_dir):
                shutil.rmtree(stale, ignore_errors=True)
            metrics_path.unlink(missing_ok=True)
        (run_dir / "config.json").write_text(cfg.to_json() + "\n")

    # Data: memory-mapped uint8 arrays; each step's batch is a function of the step.
    data = PreparedDataset.open(run.data)
    if data.resolution != cfg.model.resolution:
        raise ValueError(
            f"{run.data} holds {data.resolution}x{data.resolution} images but the model is "
            f"configured for {cfg.model.resolution}: set model.resolution or another dataset"
        )
    unlabelled, reference = data["unlabelled"], data["reference"]
    samplers = [
        BatchSampler(
            len(split), run.batch_size, seed=run.seed, stream=i, rank=ctx.rank, world=ctx.world_size
        )
        for i, split in enumerate((unlabelled, reference))
    ]
    preview = np.asarray(data["eval_score"].images[:16]) if len(data["eval_score"]) >= 16 else None

    # Networks, objective, optimisers.
    net = SRbVAE.for_objective(cfg.model, cfg.objective).to(device)
    if ctx.enabled:
        distributed.broadcast_module(net)
    mixed = _mixed_precision(cfg, device)
    step_fn = TrainStep(
        make_objective(net, cfg.objective),
        cfg.optim,
        mixed_precision=mixed,
        channels_last=run.channels_last,
        grad_sync=distributed.average_gradients if ctx.enabled else None,
    )
    optimizers = step_fn.optimizers()
    base_lrs = {name: [g["lr"] for g in opt.param_groups] for name, opt in optimizers.items()}

    # Resume from the latest full state, exactly: weights, Adam moments, RNG, step, wall time;
    # on a machine without one, from the compact copy kept in git, if there is one.
    start_step, elapsed_before = 0, 0.0
    resume_dir = state_dir
    carried = Path(run.carry_root) / run.name
    if resume and not (state_dir / "state.json").is_file() and (carried / "state.json").is_file():
        resume_dir = carried
        if ctx.is_main and not metrics_path.is_file() and (carried / METRICS).is_file():
            shutil.copy2(carried / METRICS, metrics_path)
    loaded: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None
    if resume and (resume_dir / "state.json").is_file():
        loaded = load_training_state(resume_dir, net, optimizers)
        log.info("resuming %s from %s", run_dir, resume_dir)
    elif run.init_from:  # this run's own state, if any, takes precedence
        manifest, extra, fresh = warm_start(run.init_from, net, optimizers, cfg)
        loaded = manifest, extra
        log.info(
            "starting %s from %s; fresh: %s", run_dir, run.init_from, ", ".join(fresh) or "nothing"
        )
    if loaded is not None:
        manifest, extra = loaded
        start_step = int(manifest["step"])
        elapsed_before = float(manifest.get("wall_time_seconds", 0.0))
        _set_rng_state(extra, device)
        if ctx.enabled:  # each rank saved rank 0's RNG: give every rank its own stream again
            torch.manual_seed(run.seed * 1000 + ctx.rank + start_step)
        if ctx.is_main:  # records a stopped process wrote after its last snapshot are redone
            _drop_records_after(metrics_path, start_step)
    if ctx.is_main:
        log.info(
            "training %s (%s, %dx%d) on %s x%d, %s, batch %d per process, steps %d..%d",
            run.name, cfg.model.variant, cfg.model.resolution, cfg.model.resolution, device,
            ctx.world_size, "bf16 autocast" if mixed else "fp32", run.batch_size, start_step, run.steps,
        )  # fmt: skip

    started = time.monotonic()
    record_base: dict[str, Any] = {"data": dataset_record(data, run.data), "command": command}

    def wall_time() -> float:
        return elapsed_before + time.monotonic() - started

    def snapshot(step: int) -> None:
        if ctx.is_main:
            save_training_state(
                state_dir, net, optimizers,
                extra_tensors=_rng_state(device),
                step=step, wall_time_seconds=wall_time(), config=cfg.to_dict(), **record_base,
            )  # fmt: skip

    def grids(step: int) -> None:
        if ctx.is_main and preview is not None:
            model = ReferenceVAE(net, {"name": run.name}, device)
            # Samples drawn as /sample will draw them, not from N(0, I), which leaves the data.
            model.prior = fit_target_prior(model, data, PREVIEW_IMAGES)
            write_grids(model, preview, grid_dir, f"{step:07d}")
            net.train()

    monitor = CollapseMonitor(patience=run.collapse_patience)
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)  # gradient norms are measured once per interval
    count, interval_start = 0, time.monotonic()
    progress = tqdm(
        total=run.steps,
        initial=start_step,
        disable=not ctx.is_main,
        mininterval=2.0,
        dynamic_ncols=True,
        unit="step",
    )
    step = start_step
    with stop_signals() as stop:
        try:
            while step < run.steps:
                if run.warmup_steps or run.cooldown_steps:
                    scale = lr_scale(step, run)
                    for name, opt in optimizers.items():
                        for group, lr in zip(opt.param_groups, base_lrs[name], strict=True):
                            group["lr"] = lr * scale
                x_u = load_batch(unlabelled.images, samplers[0].indices(step), device)
                x_r = load_batch(reference.images, samplers[1].indices(step), device)
                # Gradient norms per loss term cost a backward pass each: once per interval.
                stats = step_fn(x_u, x_r, measure_gradients=(step + 1) % run.log_every == 0)
                step += 1
                for k, v in stats.items():
                    sums[k] += v
                    counts[k] += 1
                count += 1
                progress.update(1)

                if step % run.log_every == 0 or step == run.steps:
                    seconds = time.monotonic() - interval_start
                    means = {k: v / counts[k] for k, v in sums.items()}
                    record: dict[str, Any] = {
                        "step": step,
                        "wall_time_seconds": round(wall_time(), 1),
                        "images_per_second": round(
                            count * run.batch_size * ctx.world_size / seconds, 2
                        ),
                        **{k: float(f"{v:.5g}") for k, v in means.items()},
                    }
                    warning = monitor.update(means)
                    if warning:
                        record["warning"] = warning
                        log.warning("step %d: %s", step, warning)
                    if ctx.is_main:
                        _append_jsonl(metrics_path, record)
                        progress.set_postfix(
                            _postfix(means, record["images_per_second"]), refresh=False
                        )
                    sums.clear()
                    counts.clear()
                    count, interval_start = 0, time.monotonic()
                if step % run.snapshot_every == 0:
                    snapshot(step)
                if step % run.grid_every == 0:
                    grids(step)
                if run.time_limit_minutes and wall_time() > 60 * run.time_limit_minutes:
                    log.info(
                        "time limit of %.1f min reached at step %d", run.time_limit_minutes, step
                    )
                    break
                if distributed.any_process(ctx, stop.requested, device):
                    raise StopRequested(stop.signum or signal.SIGTERM, step)
        except StopRequested as exc:
            log.warning("%s received: saving the training state at step %d", exc.name, step)
            snapshot(step)
            raise
        except KeyboardInterrupt:
            log.warning("stopped at once at step %d; the last snapshot is kept", step)
            raise
        except NonFiniteLossError as exc:
            # The last good snapshot stays as it is; the record says where and what went wrong.
            if ctx.is_main:
                _append_jsonl(metrics_path, {"step": step, "error": str(exc)})
            raise
        finally:
            progress.close()

    if ctx.enabled:
        distributed.assert_in_sync(net)
    snapshot(step)  # the grids of this step are written from the export below
    if ctx.is_main:
        # Renamed into place once whole, so that no reader (evaluate, install) loads an export
        # without its fitted sampling Gaussian and domain reference; an evaluation or card of
        # an earlier export describes other weights and goes with it.
        with written_whole(export_dir) as staging:
            export_inference(
                net,
                staging,
                name=run.name,
                dtype=getattr(torch, run.export_dtype),
                method=method_name(cfg.model, cfg.objective),
                training={"step": step, "wall_time_seconds": round(wall_time(), 1), "config": cfg.to_dict(),
                          "device": str(device), "processes": ctx.world_size, "mixed_precision": mixed},
                metrics={},
                **record_base,
            )  # fmt: skip
            served = load_model(staging, device)
            served.prior = fit_target_prior(served, data)
            attach_target_prior(staging, served.prior)
            try:  # the reference every answer's domain score is placed in (model/domain.py)
                update_manifest(staging, domain=fit_domain_reference(served, data).record())
            except ValueError as exc:  # a dataset without held-out images: answers carry none
                log.warning("no domain reference stored: %s", exc)
        if preview is not None:  # the last step's grids, from the served (exported) weights
            write_grids(served, preview, grid_dir, f"{step:07d}")
        log.info("exported %s (sampling e from a Gaussian fitted on %d images)",
                 export_dir, served.prior.fitted_on)  # fmt: skip
    distributed.barrier(ctx)
    distributed.teardown(ctx)
    return run_dir


def _postfix(means: dict[str, float], rate: float) -> dict[str, str]:
    keys = (
        "loss/recon_x_u",
        "loss/recon_x_r",
        "loss/adversarial",
        "loss/d_xi",
        "loss/d_gamma",
        "loss/kl",
    )
    shown = {
        k.split("/")[1]: f"{means[k]:.4g}" for k in keys if k in means and math.isfinite(means[k])
    }
    shown["img/s"] = f"{rate:.1f}"
    return shown
