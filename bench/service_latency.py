"""Bare model against the service: what the HTTP and queue path costs.

    python -m bench.service_latency [--url http://localhost:8000] [--seconds 10]

1. In-process, the served model's device work for one transfer (encode 2 images, generate 1,
   tensors already in memory): latency at batch 1, and throughput over a batch-size sweep.
2. The same work through `POST /transfer` (two PNGs at the model's resolution, PNG answer) at
   concurrency 1, 4 and 16 for `--seconds` each: p50, p95, p99 latency, requests per second,
   and the ratios against the bare model, with the latency goals:
   - concurrency 1: p50 within 15 ms of the bare batch-1 time;
   - concurrency 16: at least 70% of the bare model's best batched throughput.
   Where the time goes comes from the API's own /metrics (deltas over each level): the whole
   request, submission to result (queue, Redis, worker), and the worker's task time; CPU per
   request of each process, from /proc (own stack only).

`--rounds` (default 2) alternate the two; each figure is the best of its rounds, the least
disturbed on a shared machine (fastest batch 1, highest rates, the service round with the
most requests per second), and the CPU that other processes used meanwhile is reported.

Without `--url` it starts its own stack exactly as `make serve` does (`scripts/serve.py`, with
a temporary state directory and free ports) and stops it at the end; the bare model is then
the checkpoint the worker serves. With `--url` the bare model is read from `--model-dir`
(default models/) and its SHA-256 is checked against the one the service reports.
Client, API, worker and Redis share the machine: on a small one the client's own CPU counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from model import load_model
from scripts.processes import REPO_ROOT, free_port
from scripts.serve import readyz

GOAL_LATENCY_MS = 15.0  # concurrency 1: p50 at most this much above bare batch 1
GOAL_THROUGHPUT = 0.70  # concurrency 16: at least this fraction of bare best batched


# --- the stack ---------------------------------------------------------------------------------


@contextlib.contextmanager
def own_stack(state_dir: Path, ready_timeout: float = 300) -> Iterator[str]:
    """`make serve` on free ports with its state in `state_dir`; yields the API's URL."""
    port, redis_port = free_port(), free_port()
    url = f"http://localhost:{port}"
    log_path = state_dir / "serve.log"
    with open(log_path, "ab") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "scripts.serve", "--port", str(port),
             "--redis-port", str(redis_port), "--state-dir", str(state_dir)],
            cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + ready_timeout
        while readyz(url)[0] != 200:
            if serve.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace").splitlines()[-20:]
                raise RuntimeError("the stack did not become ready:\n" + "\n".join(tail))
            time.sleep(0.5)
        yield url
    finally:
        serve.send_signal(signal.SIGTERM)  # ordered shutdown: API, worker, Redis
        try:
            serve.wait(90)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


def stack_groups(state_dir: Path) -> dict[str, int]:
    """Process group of each child of a stack started by own_stack (serve.py's order)."""
    pgids = json.loads((state_dir / "serve.json").read_text())["pgids"]
    return dict(zip(("redis", "worker", "api"), pgids, strict=True))


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of the live processes in a process group."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(") ", 1)[1].split()  # from field 3 (state) on
            if int(fields[2]) == pgid:  # field 5, pgrp
                ticks += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all cores, any process) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_now(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: this process (the client), each process group of the stack, and
    the machine as a whole (`others` is what neither the client nor the stack used)."""
    ours = {"client": time.process_time()} | {n: group_cpu_s(g) for n, g in groups.items()}
    if groups:
        ours["others"] = machine_busy_s() - sum(ours.values())
    return ours


# --- the bare model ----------------------------------------------------------------------------


@dataclass
class Bare:
    batch1_ms: float  # median of single transfers
    rates: dict[int, float]  # batch size -> transfers per second (best round)

    @property
    def best_batch(self) -> int:
        return max(self.rates, key=self.rates.get)


def measure_bare(vae, batch_sizes, seconds: float = 1.0) -> Bare:
    """One round: `seconds` at each batch size; batch 1's latency is this round's median."""
    r = vae.resolution

    def transfer(x: torch.Tensor, b: int) -> None:
        z, e = vae.encode_tensor(x)  # (2B, z_dim), (2B, e_dim): B images, B attributes
        vae.generate_tensor(z[:b], e[b:])

    xs = {b: torch.rand(2 * b, 3, r, r) * 2 - 1 for b in batch_sizes}
    for b, x in xs.items():  # warm-up at each size
        transfer(x, b)
    single: list[float] = []
    rates = {}
    for b, x in xs.items():
        calls, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds or calls < 3:
            t1 = time.perf_counter()
            transfer(x, b)
            if b == 1:
                single.append(time.perf_counter() - t1)
            calls += 1
        rates[b] = calls * b / elapsed
    return Bare(statistics.median(single) * 1000 if single else float("nan"), rates)


def best_bare(rounds: list[Bare]) -> Bare:
    """The least disturbed figures of several rounds: the fastest batch 1, the highest rates."""
    rates = {b: max(r.rates[b] for r in rounds) for b in rounds[0].rates}
    return Bare(min(r.batch1_ms for r in rounds), rates)


# --- the service -------------------------------------------------------------------------------


def random_png(rng: np.random.Generator, r: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (r, r, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Level:
    concurrency: int
    latencies_ms: list[float]
    seconds: float
    errors: int
    phases_ms: dict[str, float]  # mean per request, from /metrics
    cpu_ms: dict[str, float]  # CPU per request by process (own stack only)

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds


async def one_level(
    client: httpx.AsyncClient, files_for, concurrency: int, seconds: float
) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def user(i: int) -> None:
        nonlocal errors
        n = 0
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            answer = await client.post("/transfer", files=files_for(i, n))
            if answer.status_code == 200:
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                errors += 1
            n += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(concurrency)))
    return latencies, time.perf_counter() - t0, errors


def histogram_sums(text: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of the API's latency histograms for /transfer, by metric name."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            route, task = labels.get("route", "/transfer"), labels.get("task", "transfer")
            if route != "/transfer" or "transfer" not in task:
                continue
            if s.name.endswith("_sum") or s.name.endswith("_count"):
                base, kind = s.name.rsplit("_", 1)
                total, count = out.get(base, (0.0, 0.0))
                out[base] = (total + s.value, count) if kind == "sum" else (total, count + s.value)
    return out


def phase_means(before: dict, after: dict) -> dict[str, float]:
    names = {
        "request": "srbvae_api_request_seconds",
        "job": "srbvae_api_job_seconds",
        "worker": "srbvae_api_worker_seconds",
    }
    means = {}
    for short, name in names.items():
        (s0, c0), (s1, c1) = before.get(name, (0, 0)), after.get(name, (0, 0))
        means[short] = (s1 - s0) / (c1 - c0) * 1000 if c1 > c0 else float("nan")
    return means


async def measure_service(
    url: str, resolution: int, levels, seconds: float, groups: dict[str, int]
) -> list[Level]:
    rng = np.random.default_rng(0)
    pngs = [random_png(rng, resolution) for _ in range(64)]

    def files_for(i: int, n: int) -> dict:
        k = (i * 7 + n) % len(pngs)
        return {
            "image": ("image.png", pngs[k], "image/png"),
            "attributes": ("attributes.png", pngs[(k + 1) % len(pngs)], "image/png"),
        }

    limits = httpx.Limits(max_connections=max(levels), max_keepalive_connections=max(levels))
    results = []
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        if (await client.get("/models")).status_code != 200:
            raise RuntimeError(f"{url}/models does not answer 200")
        await one_level(client, files_for, max(levels), 2.0)  # warm every connection
        for c in levels:
            before = histogram_sums((await client.get("/metrics")).text)
            cpu_before = cpu_now(groups)
            latencies, elapsed, errors = await one_level(client, files_for, c, seconds)
            cpu_after = cpu_now(groups)
            after = histogram_sums((await client.get("/metrics")).text)
            n = max(1, len(latencies) + errors)
            cpu = {k: (cpu_after[k] - cpu_before[k]) * 1000 / n for k in cpu_before}
            results.append(Level(c, latencies, elapsed, errors, phase_means(before, after), cpu))
    return results


# --- report ------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores ({cpu}), {gpu}, torch {torch.__version__}"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(model, resolution, bare: Bare, levels: list[Level], load_before, load_after) -> None:
    b1_rate = 1000 / bare.batch1_ms
    best_b, best_rate = bare.best_batch, bare.rates[bare.best_batch]
    print(f"\nmodel {model} at {resolution}x{resolution}; {machine()}")
    print(f"load average (1, 5, 15 min): {load_before} before, {load_after} after")
    print("bare = encode(image, attributes) + generate, in this process, tensors in memory")
    print("sweep (transfers/s): " + ", ".join(f"b{b} {r:.0f}" for b, r in bare.rates.items()))
    print()
    print("| | p50 ms | p95 ms | p99 ms | req/s | vs bare |")
    print("|---|---|---|---|---|---|")
    print(f"| bare, batch 1 | {bare.batch1_ms:.1f} | | | {b1_rate:.0f} | 1.00 |")
    print(
        f"| bare, batch {best_b} (best) | {1000 * best_b / best_rate:.1f} per batch | | "
        f"| {best_rate:.0f} | x{best_rate / b1_rate:.2f} req/s |"
    )
    for lv in levels:
        p50 = lv.pct(50)
        if lv.concurrency == 1:
            vs = f"p50 x{p50 / bare.batch1_ms:.2f} ({p50 - bare.batch1_ms:+.1f} ms)"
        else:
            vs = f"req/s {lv.rate / best_rate:.0%} of best batched"
        errors = f", {lv.errors} errors" if lv.errors else ""
        print(
            f"| service, concurrency {lv.concurrency} | {p50:.1f} | {lv.pct(95):.1f} "
            f"| {lv.pct(99):.1f} | {lv.rate:.0f} | {vs}{errors} |"
        )
    print("\nwhere the time goes (mean ms per request, from the API's /metrics):")
    print("| concurrency | whole request | API only (upload, decode, answer) | queue + Redis "
          "| worker task |")  # fmt: skip
    print("|---|---|---|---|---|")
    for lv in levels:
        ph = lv.phases_ms
        print(
            f"| {lv.concurrency} | {ph['request']:.1f} | {ph['request'] - ph['job']:.1f} "
            f"| {ph['job'] - ph['worker']:.1f} | {ph['worker']:.1f} |"
        )
    if levels and levels[0].cpu_ms:
        names = list(levels[0].cpu_ms)
        cores = os.cpu_count() or 1
        print(
            f"\nCPU ms per request by process ({cores} cores; others: whatever else ran on the "
            "machine meanwhile; bound: req/s if client and stack had every core):"
        )
        print("| concurrency | " + " | ".join(names) + " | client + stack | bound req/s |")
        print("|---" * (len(names) + 3) + "|")
        for lv in levels:
            total = sum(v for n, v in lv.cpu_ms.items() if n != "others")
            print(
                f"| {lv.concurrency} | "
                + " | ".join(f"{lv.cpu_ms[n]:.1f}" for n in names)
                + f" | {total:.1f} | {cores * 1000 / total:.0f} |"
            )
    others = [lv.cpu_ms.get("others", 0.0) * lv.rate / 1000 for lv in levels]
    if others and max(others) > 0.1:
        print(
            f"\nWARNING: other processes used up to {max(others):.2f} of the "
            f"{os.cpu_count()} cores during the service runs: the figures are disturbed."
        )
    print("\ngoals:")
    by_c = {lv.concurrency: lv for lv in levels}
    if 1 in by_c:
        extra = by_c[1].pct(50) - bare.batch1_ms
        met = "MET" if extra <= GOAL_LATENCY_MS else "NOT MET"
        print(
            f"  concurrency 1, p50 within {GOAL_LATENCY_MS:.0f} ms of bare batch 1: "
            f"{extra:+.1f} ms -> {met}"
        )
    if 16 in by_c:
        frac = by_c[16].rate / best_rate
        met = "MET" if frac >= GOAL_THROUGHPUT else "NOT MET"
        print(
            f"  concurrency 16, at least {GOAL_THROUGHPUT:.0%} of bare best batched "
            f"throughput ({best_rate:.0f}/s): {by_c[16].rate:.0f}/s = {frac:.0%} -> {met}"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running stack; default: start one like `make serve`")
    ap.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models")
    ap.add_argument("--model", help="default: the service's default model")
    ap.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="bare model and service alternately; the best of each is shown (a shared machine)",
    )
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--batches", default="1,2,4,8,16,32,64")
    args = ap.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    batches = [int(b) for b in args.batches.split(",")]

    with contextlib.ExitStack() as stack:
        url, groups = args.url, {}
        if url is None:
            state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
            print("starting a stack as `make serve` does ...", flush=True)
            url = stack.enter_context(own_stack(state))
            groups = stack_groups(state)
        info = httpx.get(f"{url}/models", timeout=10).json()
        name = args.model or info["default"]
        served = {m["name"]: m for m in info["models"]}[name]
        vae = load_model(args.model_dir / name)
        if vae.manifest["weights"]["sha256"] != served["checkpoint_sha256"]:
            print(f"WARNING: {args.model_dir / name} is not the checkpoint {url} serves")
        load_before = load()
        bares, services = [], []
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds}: bare model {name}, batch sizes {batches} ...")
            bares.append(measure_bare(vae, batches))
            print(
                f"round {i + 1}/{args.rounds}: {url}, concurrency {levels}, {args.seconds:g} s each"
            )
            services.append(
                asyncio.run(measure_service(url, vae.resolution, levels, args.seconds, groups))
            )
        best = [max(by_level, key=lambda lv: lv.rate) for by_level in zip(*services, strict=True)]
        report(name, vae.resolution, best_bare(bares), best, load_before, load())


if __name__ == "__main__":
    main()
