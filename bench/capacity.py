"""Capacity model: the cores, processes and nodes a target load of `POST /transfer` needs, from
figures the benchmarks measure, checked against a measured run on this machine.

    python -m bench.capacity [--seconds 20] [--latency-ms 100] [--save figures.json]
    python -m bench.capacity --figures figures.json [--loads 100,1000] [--latency-ms 100]

1. Figures, on a stack started as `make serve` starts it (bench/request_cost.py's own_stack,
   its CPU accounting by process group and its split of the worker's forward passes): each
   process's CPU with no load (heartbeats, polls); `POST /transfer` at concurrency 1 (the
   unloaded mean latency, and the forward pass's CPU at one row per pass) and 16: CPU
   milliseconds per request of the API, of the worker outside its forward passes, of those
   passes (at the rows per pass they formed) and of Redis, and Redis commands per request
   (INFO's total_commands_processed, less what an idle stack runs). The bare model's best
   batched rate (bench.request_cost.measure_bare) is shown beside them.
2. The model. A process's cores at load L requests/s: its idle share plus L times its CPU per
   request; the forward pass's CPU per request is interpolated (in log rows) at the batch the
   device thread forms, 1 + L * (batch wait + one-row pass) rows on average. A node's cores are
   one processor-sharing server for every process on it: at a busy fraction u of them (other
   processes' share included) the mean latency is the unloaded one / (1 - u) (M/G/1-PS), so a
   target T allows u = 1 - unloaded / T (at most MAX_UTILISATION). Redis runs commands on one
   core: its share is what one Redis allows.
3. The check: open-loop load (Poisson arrivals) at 30% and 60% of the rate at which the model
   says the stack and the load generator would use every core that other processes (not
   niced ones) leave; predicted against measured cores and mean latency at each.
4. The table: for each target load, API processes, worker cores outside the forward pass,
   Redis's share of its core and commands per second, and the forward pass's cores on CPU
   nodes like this one, or GPUs with `--gpu-rate` (forward transfers/s per GPU at its best
   batch, which needs a GPU to measure: `python -m bench.request_cost` on the GPU node).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import redis
from celery import Celery

from bench import BENCH_MODEL
from bench.request_cost import (
    Bare,
    device_passes,
    group_cpu,
    machine,
    machine_busy_s,
    measure_bare,
    own_stack,
    passes_between,
    random_png,
)
from model import load_model
from scripts.processes import REPO_ROOT

PROCESSES = ("api", "worker", "redis")  # the stack's groups; "forward" is inside "worker"
MAX_UTILISATION = 0.8  # headroom even without a latency target: load is never flat
BATCH_WAIT_MS = 3.0  # the worker's default batch_wait_ms (worker/settings.py)


@dataclass
class Figures:
    machine: str
    cores: int
    model: str
    idle_cores: dict[str, float]  # api, worker, redis: cores used with no load
    # CPU ms per request (api, worker_outside, redis; client and relay for the check) at the
    # rates concurrency 1 and 16 reached: what a request costs changes with load (batches,
    # amortised polls), so a load between them gets costs interpolated between them.
    cpu_ms: dict[str, float]  # at concurrency 16
    cpu_ms_c1: dict[str, float]
    rates: tuple[float, float]  # requests/s at concurrency 1 and 16
    redis_ops: float  # Redis commands per request
    # The worker's forward passes (its device threads), CPU ms per request by the mean rows
    # per generate pass they ran at: concurrency 1 (one row) and 16.
    forward_ms: dict[int, float]
    bare_best_rate: float  # bare model in the benchmark's process: transfers/s at its best batch
    bare_best_batch: int
    unloaded_ms: float  # POST /transfer mean latency at concurrency 1
    redis_by_command: dict[str, float] = field(default_factory=dict)  # per request, concurrency 16

    def forward_at(self, load: float) -> float:
        """Forward CPU ms per transfer at `load` requests/s (the batch it forms)."""
        by_rows = {int(b): v for b, v in self.forward_ms.items()}
        one_pass_ms = by_rows[1]  # a pass of one row takes about its CPU time
        return Bare(one_pass_ms, {}, by_rows).cpu_at(
            1 + load * (BATCH_WAIT_MS + one_pass_ms) / 1000
        )


@dataclass
class Run:
    """One load level, measured: requests answered, latencies, cores used by each process."""

    offered: float  # requests/s asked (open loop), or 0 for a closed loop
    seconds: float
    latencies_ms: list[float]
    errors: int
    cores: dict[str, float]  # api, worker, forward, redis, client, others
    redis_ops: float  # per request
    mean_rows: float  # rows per generate pass
    redis_by_command: dict[str, float]  # per request

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    @property
    def mean(self) -> float:
        return float(np.mean(self.latencies_ms)) if self.latencies_ms else math.nan

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else math.nan


def cpu_now(stack) -> dict[str, float]:
    """CPU seconds so far: this process (the load generator), each process of the stack and
    the worker's forward passes, `make serve`'s log relay, the rest of the machine (`others`)
    and, among it, niced processes (`nice`)."""
    tick = os.sysconf("SC_CLK_TCK")
    ours = {"client": time.process_time()} | group_cpu(stack.groups)
    ours["relay"] = 0.0
    launcher = getattr(stack, "launcher", None)  # scripts/serve.py: relays the children's logs
    if launcher is not None:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{launcher}/stat").read_text().rsplit(") ", 1)[1].split()
            ours["relay"] = (int(fields[11]) + int(fields[12])) / tick
    ours["others"] = machine_busy_s() - sum(v for k, v in ours.items() if k != "forward")
    ours["nice"] = int(Path("/proc/stat").read_text().split()[2]) / tick
    return ours


def redis_commands(client: redis.Redis) -> int:
    """Commands Redis has run so far (INFO reads count too: two per level, negligible)."""
    return int(client.info("stats")["total_commands_processed"])


def command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls so far by command (INFO commandstats)."""
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


# --- driving the stack -------------------------------------------------------------------------


async def drive(stack, app: Celery, files, model: str, *, rate: float = 0.0,
                concurrency: int = 0, seconds: float) -> Run:  # fmt: skip
    """`POST /transfer` for `seconds`: Poisson arrivals at `rate`, or `concurrency` clients
    each sending again on an answer."""
    latencies: list[float] = []
    errors = 0
    client_redis = redis.Redis.from_url(stack.redis_url)

    async def one(http: httpx.AsyncClient, i: int) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        try:
            answer = await http.post("/transfer", files=files(i), data={"model": model})
        except httpx.HTTPError:
            errors += 1
            return
        if answer.status_code == 200:
            latencies.append((time.perf_counter() - t0) * 1000)
        else:
            errors += 1

    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=stack.url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(one(http, i) for i in range(8)))  # warm the connections
        latencies.clear()
        passes0 = await asyncio.to_thread(device_passes, app)
        ops0, stats0 = redis_commands(client_redis), command_calls(client_redis)
        cpu0, t0 = cpu_now(stack), time.perf_counter()
        stop = t0 + seconds
        if rate:
            rng, tasks, i = random.Random(0), [], 0
            next_at = t0
            while next_at < stop:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                tasks.append(asyncio.create_task(one(http, i)))
                i += 1
                next_at += rng.expovariate(rate)
            await asyncio.gather(*tasks)
        else:

            async def user(k: int) -> None:
                n = 0
                while time.perf_counter() < stop:
                    await one(http, k * 1000 + n)
                    n += 1

            await asyncio.gather(*(user(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
        cpu1 = cpu_now(stack)
        ops1, stats1 = redis_commands(client_redis), command_calls(client_redis)
        passes = passes_between(passes0, await asyncio.to_thread(device_passes, app))
    client_redis.close()
    generate = passes.get("generate", {})
    rows = sum(r * n for r, n in generate.items()) / max(1, sum(generate.values()))
    cores = {k: (cpu1[k] - cpu0[k]) / elapsed for k in cpu0}
    n = max(1, len(latencies) + errors)
    by_command = {k: (v - stats0.get(k, 0)) / n for k, v in stats1.items() if v > stats0.get(k, 0)}
    return Run(rate, elapsed, latencies, errors, cores, (ops1 - ops0) / n, rows, by_command)


def measure(seconds: float, model: str) -> tuple[Figures, list[Run], dict]:
    """Figures, then the check at two loads, on one stack."""
    vae = load_model(REPO_ROOT / "models" / model)
    rng = np.random.default_rng(0)
    pngs = [random_png(rng, vae.resolution) for _ in range(64)]

    def files(i: int) -> dict:
        k = i % len(pngs)
        return {"image": ("image.png", pngs[k], "image/png"),
                "attributes": ("attributes.png", pngs[(k + 1) % len(pngs)], "image/png")}  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench-") as state, own_stack(Path(state)) as stack:
        app = Celery("bench", broker=stack.redis_url)
        app.conf.update(accept_content=["json"], result_accept_content=["json"])

        def run(**kw) -> Run:
            return asyncio.run(drive(stack, app, files, model, **kw))

        print("idle stack, 5 s ...", flush=True)
        commands = redis.Redis.from_url(stack.redis_url)
        ops0, c0, t0 = redis_commands(commands), cpu_now(stack), time.perf_counter()
        time.sleep(5)
        c1, elapsed = cpu_now(stack), time.perf_counter() - t0
        idle = {k: (c1[k] - c0[k]) / elapsed for k in PROCESSES}
        idle_ops = (redis_commands(commands) - ops0) / elapsed  # heartbeats, polls: per second
        commands.close()
        print("bare model, batches 1..64 ...", flush=True)
        bare = measure_bare(vae, [1, 4, 16, 64])
        print(f"POST /transfer at concurrency 1 and 16, {seconds:g} s each ...", flush=True)
        c1_run = run(concurrency=1, seconds=seconds)
        c16 = run(concurrency=16, seconds=seconds)

        def costs(r: Run) -> dict[str, float]:
            per = {k: (r.cores[k] - idle.get(k, 0.0)) * 1000 / r.rate for k in r.cores}
            return {"api": per["api"], "worker_outside": per["worker"] - per["forward"],
                    "redis": per["redis"], "client": per["client"], "relay": per["relay"]}  # fmt: skip

        figures = Figures(
            machine=machine(),
            cores=os.cpu_count() or 1,
            model=model,
            idle_cores=idle,
            cpu_ms=costs(c16),
            cpu_ms_c1=costs(c1_run),
            rates=(c1_run.rate, c16.rate),
            redis_ops=c16.redis_ops - idle_ops / c16.rate,
            forward_ms={
                1: c1_run.cores["forward"] * 1000 / c1_run.rate,
                max(2, round(c16.mean_rows)): c16.cores["forward"] * 1000 / c16.rate,
            },
            bare_best_rate=bare.rates[bare.best_batch],
            bare_best_batch=bare.best_batch,
            unloaded_ms=c1_run.mean,
            redis_by_command=c16.redis_by_command,
        )
        free = available_cores(figures, c16)
        saturation = saturating_load(figures, free)
        checks = []
        for fraction in (0.3, 0.6):
            load = fraction * saturation
            print(f"open loop at {load:.1f} requests/s ({fraction:.0%} of {saturation:.1f}), "
                  f"{seconds:g} s ...", flush=True)  # fmt: skip
            checks.append(run(rate=load, seconds=seconds))
        app.close()
    context = {"free_cores": free, "saturation": saturation, "c16": c16, "c1": c1_run}
    return figures, checks, context


# --- the model ---------------------------------------------------------------------------------


def costs_at(f: Figures, load: float) -> dict[str, float]:
    """CPU ms per request at `load`: concurrency 1's below its rate, concurrency 16's above
    its rate, linear in load between."""
    (r1, r16), low, high = f.rates, f.cpu_ms_c1, f.cpu_ms
    t = min(1.0, max(0.0, (load - r1) / (r16 - r1))) if r16 > r1 else 1.0
    return {k: low.get(k, high[k]) + t * (high[k] - low.get(k, high[k])) for k in high}


def stack_cores(f: Figures, load: float, *, client: bool = False) -> dict[str, float]:
    """Predicted cores of each process at `load` requests/s on one node holding them all."""
    c = costs_at(f, load)
    cores = {
        "api": f.idle_cores["api"] + load * c["api"] / 1000,
        "worker_outside": f.idle_cores["worker"] + load * c["worker_outside"] / 1000,
        "forward": load * f.forward_at(load) / 1000,
        "redis": f.idle_cores["redis"] + load * c["redis"] / 1000,
    }
    if client:  # the check on this machine: its load generator and `make serve`'s relay
        cores["client"] = load * (c["client"] + c.get("relay", 0.0)) / 1000
    return cores


def available_cores(f: Figures, run: Run) -> float:
    """The machine's cores less what other processes used during `run`, not counting niced
    ones (they yield to the stack)."""
    return max(0.5, f.cores - run.cores["others"] + run.cores["nice"])


def saturating_load(f: Figures, free: float) -> float:
    """Requests/s at which the stack and client use every free core (bisection)."""
    lo, hi = 0.0, 1e6
    for _ in range(60):
        mid = (lo + hi) / 2
        if sum(stack_cores(f, mid, client=True).values()) < free:
            lo = mid
        else:
            hi = mid
    return lo


def latency(f: Figures, load: float, free: float) -> float:
    """Predicted mean latency (ms) on this machine. Its cores are one processor-sharing server
    for every process on it: everyone's work is stretched by 1 / (1 - u), u the busy fraction
    of all the cores, the other processes' (not niced) share included."""
    u = (sum(stack_cores(f, load, client=True).values()) + f.cores - free) / f.cores
    return f.unloaded_ms / (1 - u) if u < 1 else math.inf


def utilisation_for(f: Figures, latency_ms: float | None) -> float:
    """The utilisation a latency target allows (processor sharing), at most MAX_UTILISATION."""
    if latency_ms is None:
        return MAX_UTILISATION
    return max(0.0, min(MAX_UTILISATION, 1 - f.unloaded_ms / latency_ms))


def plan(f: Figures, load: float, u: float, node_cores: int, gpu_rate: float | None) -> dict:
    """Processes, cores and nodes for `load` requests/s, each resource at utilisation `u`."""
    c = costs_at(f, load)
    api_cores = load * c["api"] / 1000 / u
    worker_cores = load * c["worker_outside"] / 1000 / u
    redis_share = (f.idle_cores["redis"] + load * c["redis"] / 1000) / u
    out = {
        "load": load,
        "api_processes": math.ceil(api_cores),  # one event loop: at most one core each
        "worker_cores": worker_cores,  # task threads, one GIL: a process uses about one core
        "redis_share": redis_share,  # of its one core; over 1: more than one Redis can take
        "redis_ops": load * f.redis_ops,
    }
    if gpu_rate:
        out["gpus"] = math.ceil(load / (gpu_rate * u))
        host = api_cores + worker_cores
        out["nodes"] = max(out["gpus"], math.ceil(host / node_cores))  # one GPU per node
    else:
        forward = load * f.forward_at(load) / 1000 / u
        out["forward_cores"] = forward
        out["nodes"] = math.ceil((api_cores + worker_cores + forward) / node_cores)
    return out


# --- report ------------------------------------------------------------------------------------


def print_figures(f: Figures) -> None:
    c, c1 = f.cpu_ms, f.cpu_ms_c1
    print(f"\nfigures ({f.model}; {f.machine}):")
    print(f"| figure | concurrency 1 ({f.rates[0]:.1f} requests/s) / 16 ({f.rates[1]:.1f}) |")
    print("| --- | --- |")
    for key, name in [("api", "API"), ("worker_outside", "worker outside the forward pass"),
                      ("redis", "Redis")]:  # fmt: skip
        print(f"| {name}, CPU ms per request | {c1[key]:.2f} / {c[key]:.2f} |")
    print(f"| Redis commands per request | {f.redis_ops:.1f} |")
    if f.redis_by_command:
        top = sorted(f.redis_by_command.items(), key=lambda kv: -kv[1])[:8]
        print("| of which, the most frequent | " + ", ".join(f"{k} {v:.1f}" for k, v in top) + " |")
    print(f"| load generator, `make serve`'s log relay (this machine only), CPU ms per request "
          f"| {c1['client']:.2f}, {c1['relay']:.2f} / {c['client']:.2f}, {c['relay']:.2f} |")  # fmt: skip
    idle = ", ".join(f"{k} {v:.3f}" for k, v in f.idle_cores.items())
    print(f"| cores used with no load | {idle} |")
    rows = max(f.forward_ms)
    print(f"| worker's forward passes, CPU ms per request, 1 row / {rows} rows per pass | "
          f"{f.forward_ms[1]:.2f} / {f.forward_ms[rows]:.2f} |")  # fmt: skip
    print(f"| bare model, transfers/s at its best batch ({f.bare_best_batch}) | "
          f"{f.bare_best_rate:.0f} |")  # fmt: skip
    print(f"| `POST /transfer` mean latency at concurrency 1 (unloaded) ms | {f.unloaded_ms:.1f} |")


def print_check(f: Figures, checks: list[Run], context: dict) -> bool:
    free, sat = context["free_cores"], context["saturation"]
    c16 = context["c16"]
    print(f"\ncheck on this machine: {free:.2f} of {f.cores} cores free (other processes, not "
          f"niced, used {f.cores - free:.2f}); the stack and this client would use them all at "
          f"{sat:.1f} requests/s; concurrency 16 reached {c16.rate:.1f}")  # fmt: skip
    ok = latency_ok = True
    print("| offered req/s | answered req/s | stack + client cores, predicted | measured | error "
          "| latency ms, predicted mean | measured mean (error) | measured p50 | rows per pass |")  # fmt: skip
    print("| --- " * 9 + "|")
    lines = []
    for run in checks:
        load = run.rate
        predicted = sum(stack_cores(f, load, client=True).values())
        measured = sum(run.cores[k] for k in ("api", "worker", "redis", "client", "relay"))
        cores_error = predicted / measured - 1
        # the other processes' share during this run: the conditions the prediction is for
        predicted_ms = latency(f, load, available_cores(f, run))
        latency_error = predicted_ms / run.mean - 1
        ok &= abs(cores_error) <= 0.25
        latency_ok &= abs(latency_error) <= 0.25
        print(f"| {run.offered:.1f} | {run.rate:.1f} | {predicted:.2f} | {measured:.2f} | "
              f"{cores_error:+.0%} | {predicted_ms:.1f} | {run.mean:.1f} ({latency_error:+.0%}) "
              f"| {run.p(50):.1f} | {run.mean_rows:.2f} |")  # fmt: skip
        by = ", ".join(f"{k} {run.cores[k]:.2f}" for k in ("api", "worker", "forward", "redis"))
        pby = ", ".join(f"{k} {v:.2f}" for k, v in stack_cores(f, load).items())
        others = f.cores - available_cores(f, run)
        lines.append(f"  at {load:.1f}/s, cores measured: {by}; predicted: {pby}; other "
                     f"processes (not niced) used {others:.2f}")  # fmt: skip
    print("\n".join(lines))
    print(f"cores within 25% at both loads: {'yes' if ok else 'NO'}; mean latency: "
          f"{'yes' if latency_ok else 'NO'}")  # fmt: skip
    return ok


def print_table(f: Figures, loads, latency_ms, node_cores: int, gpu_rate) -> None:
    u = utilisation_for(f, latency_ms)
    target = f"mean latency {latency_ms:g} ms" if latency_ms else "no latency target"
    nodes = f"{node_cores}-core nodes" + (f" with one GPU ({gpu_rate:g} transfers/s)"
                                          if gpu_rate else ", forward pass on their CPUs")  # fmt: skip
    print(f"\ncapacity ({target}: each resource at most {u:.0%} busy; {nodes}):")
    last = "GPUs | nodes" if gpu_rate else "forward cores | nodes"
    print("| transfers/s | API processes | worker cores outside forward | Redis core share "
          f"| Redis commands/s | {last} |")  # fmt: skip
    print("| --- " * 7 + "|")
    for load in loads:
        p = plan(f, load, u, node_cores, gpu_rate)
        device = f"{p['gpus']}" if gpu_rate else f"{p['forward_cores']:.1f}"
        redis_share = f"{p['redis_share']:.2f}" + (
            " (over one Redis)" if p["redis_share"] > 1 else ""
        )
        print(f"| {load:g} | {p['api_processes']} | {p['worker_cores']:.1f} | {redis_share} | "
              f"{p['redis_ops']:.0f} | {device} | {p['nodes']} |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--figures", type=Path, help="figures saved by --save: no measuring")
    ap.add_argument("--save", type=Path, help="write the measured figures here (JSON)")
    ap.add_argument("--model", default=BENCH_MODEL, help="a model in models/")
    ap.add_argument("--seconds", type=float, default=20.0, help="per load level")
    ap.add_argument("--loads", default="10,100,1000,10000", help="target transfers/s")
    ap.add_argument("--latency-ms", type=float, default=None, help="target mean latency")
    ap.add_argument("--node-cores", type=int, default=16)
    ap.add_argument("--gpu-rate", type=float, default=None,
                    help="forward transfers/s per GPU at its best batch (measured on a GPU)")  # fmt: skip
    args = ap.parse_args(argv)
    loads = [float(x) for x in args.loads.split(",")]
    if args.figures:
        raw = json.loads(args.figures.read_text())
        raw["forward_ms"] = {int(b): v for b, v in raw["forward_ms"].items()}
        figures = Figures(**raw)
    else:
        figures, checks, context = measure(args.seconds, args.model)
        if args.save:
            args.save.write_text(json.dumps(asdict(figures), indent=1) + "\n")
    print_figures(figures)
    if not args.figures:
        print_check(figures, checks, context)
    print_table(figures, loads, args.latency_ms, args.node_cores, args.gpu_rate)


if __name__ == "__main__":
    main()
