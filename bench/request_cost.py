"""What a request costs: CPU per request of every process of the stack, latency and throughput
of `POST /transfer`, each beside the bare model measured in the same run.

    python -m bench.request_cost [--seconds 10] [--rounds 2] [--model digits-rbvae]

1. In-process, the served model's device work for one transfer (encode 2 images, generate 1,
   tensors already in memory) over a batch-size sweep: latency at batch 1, transfers per second
   and CPU milliseconds per transfer at each batch size (torch's intra-op threads included).
2. A stack started as `make serve` starts it (`scripts/serve.py`, a temporary state directory,
   free ports), and `POST /transfer` (two PNGs at the model's resolution, PNG answer) at
   concurrency 1, 4 and 16 for `--seconds` each: p50, p95, p99 latency, requests per second,
   and CPU milliseconds per request of the client (this process: `--client lean`, the load
   generator of bench/http_client.py, or `httpx`), the API, Redis and the
   worker (all its processes), read from /proc before and after each level. The worker's
   forward passes run on its device thread and the intra-op threads torch starts from it, all
   named `srbvae-device` (worker/batcher.py), so their CPU time is read apart from the rest
   of the worker's; the batches the device thread formed come from the worker itself
   (`celery inspect device_passes`).

`--rounds` alternate the two; each figure is the best of its rounds (the least disturbed on a
shared machine: fastest batch 1, highest rates, the service round with the most requests per
second), and the CPU other processes used meanwhile is reported. The goals printed at the end:
the stack's CPU outside the forward pass at most 5 ms per request at concurrency 16, p50 within
10 ms of the bare model's batch 1 at concurrency 1, and at concurrency 16 at least 30% of the
bare model's best batched throughput.
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
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import torch
import uvloop
from celery import Celery
from PIL import Image

from bench import BENCH_MODEL, http_client
from model import load_model
from scripts.processes import REPO_ROOT, free_port
from scripts.serve import readyz

GOAL_OUTSIDE_MS = 5.0  # concurrency 16: the stack's CPU per request outside the forward pass
GOAL_LATENCY_MS = 10.0  # concurrency 1: p50 at most this much above bare batch 1
GOAL_THROUGHPUT = 0.30  # concurrency 16: at least this fraction of bare best batched
DEVICE_THREAD = "srbvae-device"  # worker/batcher.py's THREAD_NAME
CLK_TCK = os.sysconf("SC_CLK_TCK")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLIENTS = {
    "lean": "bench/http_client.py (requests built beforehand, keep-alive, uvloop)",
    "httpx": "httpx.AsyncClient (the multipart body built per request, uvloop)",
}


# --- the stack ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    url: str
    redis_url: str
    groups: dict[str, int]  # process group of redis, worker, api
    launcher: int  # scripts/serve.py's pid: it relays the children's log lines


@contextlib.contextmanager
def own_stack(state_dir: Path, ready_timeout: float = 300) -> Iterator[Stack]:
    """`make serve` on free ports with its state in `state_dir`."""
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
        state = json.loads((state_dir / "serve.json").read_text())
        groups = dict(zip(("redis", "worker", "api"), state["pgids"], strict=True))
        yield Stack(url, state["redis_url"], groups, serve.pid)
    finally:
        serve.send_signal(signal.SIGTERM)  # ordered shutdown: API, worker, Redis
        try:
            serve.wait(90)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


def _ticks(stat: Path) -> tuple[int, int]:
    """(process group, utime + stime in clock ticks) from a /proc stat file."""
    fields = stat.read_text().rsplit(") ", 1)[1].split()  # from field 3 (state) on
    return int(fields[2]), int(fields[11]) + int(fields[12])  # fields 5, 14, 15


def group_cpu(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of the live processes of each group, and of the worker's threads
    named DEVICE_THREAD (its forward passes) as `forward`."""
    by_group = dict.fromkeys(groups.values(), 0)
    forward = 0
    worker = groups.get("worker")
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            pgid, ticks = _ticks(proc / "stat")
            if pgid not in by_group:
                continue
            by_group[pgid] += ticks
            if pgid == worker:
                for task in (proc / "task").iterdir():
                    with contextlib.suppress(OSError, IndexError, ValueError):
                        if (task / "comm").read_text().strip() == DEVICE_THREAD:
                            forward += _ticks(task / "stat")[1]
    out = {name: by_group[g] / CLK_TCK for name, g in groups.items()}
    if worker is not None:
        out["forward"] = forward / CLK_TCK
    return out


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all cores, any process) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def process_cpu_s(pid: int) -> float:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return _ticks(Path(f"/proc/{pid}/stat"))[1] / CLK_TCK
    return 0.0


def cpu_now(stack: Stack) -> dict[str, float]:
    """CPU seconds so far: the client (this process), each process of the stack, the worker's
    forward passes, `make serve`'s log relay, and `others`: what the rest of the machine used."""
    ours = {"client": time.process_time()} | group_cpu(stack.groups)
    ours["relay"] = process_cpu_s(stack.launcher)
    ours["others"] = machine_busy_s() - sum(v for k, v in ours.items() if k != "forward")
    return ours


def device_passes(app: Celery) -> dict[str, dict[int, int]]:
    """Forward passes so far by kind and rows, summed over the stack's workers."""
    replies = app.control.inspect(timeout=2.0)._request("device_passes") or {}
    total: dict[str, dict[int, int]] = {}
    for reply in replies.values():
        for kind, by_rows in reply.items():
            for rows, n in by_rows.items():
                total.setdefault(kind, {})
                total[kind][int(rows)] = total[kind].get(int(rows), 0) + n
    return total


def passes_between(before: dict, after: dict) -> dict[str, dict[int, int]]:
    out: dict[str, dict[int, int]] = {}
    for kind, by_rows in after.items():
        for rows, n in by_rows.items():
            d = n - before.get(kind, {}).get(rows, 0)
            if d:
                out.setdefault(kind, {})[rows] = d
    return out


# --- the bare model ----------------------------------------------------------------------------


@dataclass
class Bare:
    batch1_ms: float  # median of single transfers
    rates: dict[int, float]  # batch size -> transfers per second
    cpu_ms: dict[int, float]  # batch size -> CPU ms per transfer (this process, all threads)

    @property
    def best_batch(self) -> int:
        return max(self.rates, key=lambda b: self.rates[b])

    def cpu_at(self, batch: float) -> float:
        """CPU ms per transfer at a (mean) batch size, interpolated in log batch size."""
        sizes = sorted(self.cpu_ms)
        logs = np.log([float(b) for b in sizes])
        return float(np.interp(np.log(max(batch, 1.0)), logs, [self.cpu_ms[b] for b in sizes]))


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
    rates, cpu = {}, {}
    for b, x in xs.items():
        calls, t0, c0 = 0, time.perf_counter(), time.process_time()
        while (elapsed := time.perf_counter() - t0) < seconds or calls < 3:
            t1 = time.perf_counter()
            transfer(x, b)
            if b == 1:
                single.append(time.perf_counter() - t1)
            calls += 1
        rates[b] = calls * b / elapsed
        cpu[b] = (time.process_time() - c0) * 1000 / (calls * b)
    return Bare(statistics.median(single) * 1000 if single else float("nan"), rates, cpu)


def best_bare(rounds: list[Bare]) -> Bare:
    """The least disturbed figures of several rounds: the fastest batch 1, the highest rates,
    the least CPU."""
    rates = {b: max(r.rates[b] for r in rounds) for b in rounds[0].rates}
    cpu = {b: min(r.cpu_ms[b] for r in rounds) for b in rounds[0].cpu_ms}
    return Bare(min(r.batch1_ms for r in rounds), rates, cpu)


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
    cpu_ms: dict[str, float]  # CPU per request: client, redis, worker, api, forward, others
    passes: dict[str, dict[int, int]]  # forward passes by kind and rows

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def mean_rows(self, kind: str) -> float:
        by_rows = self.passes.get(kind, {})
        n = sum(by_rows.values())
        return sum(r * c for r, c in by_rows.items()) / n if n else float("nan")

    @property
    def outside_ms(self) -> float:
        """The stack's CPU per request outside the forward pass: API, worker less its forward
        passes, Redis."""
        c = self.cpu_ms
        return c["api"] + c["worker"] - c["forward"] + c["redis"]


Post = Callable[[int, int], Awaitable[int]]  # (user, request number) -> HTTP status


async def one_level(post: Post, concurrency: int, seconds: float) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def user(i: int) -> None:
        nonlocal errors
        n = 0
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            if await post(i, n) == 200:
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                errors += 1
            n += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(concurrency)))
    return latencies, time.perf_counter() - t0, errors


@contextlib.asynccontextmanager
async def transfer_client(
    kind: str, url: str, model: str, pngs: list[bytes], connections: int
) -> AsyncIterator[Post]:
    """`POST /transfer` of a pair of `pngs` (chosen by user and request number), answered as
    PNG: through the lean client (bench/http_client.py, requests built beforehand, one
    keep-alive connection per user), or through httpx, as a Python application would call
    the service. Either counts a reply as answered only when it is 200 with a PNG body."""

    def pick(i: int, n: int) -> int:
        """Which pair user `i` sends as its request `n`: image k, attributes k + 1."""
        return (i * 7 + n) % len(pngs)

    def pair(k: int) -> tuple[bytes, bytes]:
        return pngs[k], pngs[(k + 1) % len(pngs)]

    if kind == "httpx":
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

            async def post_httpx(i: int, n: int) -> int:
                image, attributes = pair(pick(i, n))
                files = {
                    "image": ("image.png", image, "image/png"),
                    "attributes": ("attributes.png", attributes, "image/png"),
                }
                answer = await client.post(
                    "/transfer", data={"model": model}, files=files, headers={"Accept": "image/png"}
                )
                return answer.status_code if answer.content.startswith(PNG_SIGNATURE) else -1

            yield post_httpx
        return
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "localhost", parsed.port or 80
    requests = [
        http_client.multipart_request(
            parsed.netloc,
            "/transfer",
            {"model": model},
            {
                "image": ("image.png", a, "image/png"),
                "attributes": ("attributes.png", b, "image/png"),
            },
        )
        for a, b in map(pair, range(len(pngs)))
    ]
    conns = [await http_client.Connection.open(host, port) for _ in range(connections)]

    async def post_lean(i: int, n: int) -> int:
        reply = await conns[i].send(requests[pick(i, n)])
        return reply.status if reply.body.startswith(PNG_SIGNATURE) else -1

    try:
        yield post_lean
    finally:
        for conn in conns:
            await conn.close()


async def measure_service(
    stack: Stack, app: Celery, model: str, resolution: int, levels, seconds: float, client: str
) -> list[Level]:
    rng = np.random.default_rng(0)
    pngs = [random_png(rng, resolution) for _ in range(64)]
    results = []
    async with transfer_client(client, stack.url, model, pngs, max(levels)) as post:
        await one_level(post, max(levels), 2.0)  # warm every connection
        for c in levels:
            passes_before = await asyncio.to_thread(device_passes, app)
            cpu_before = cpu_now(stack)
            latencies, elapsed, errors = await one_level(post, c, seconds)
            cpu_after = cpu_now(stack)
            passes_after = await asyncio.to_thread(device_passes, app)
            n = max(1, len(latencies) + errors)
            cpu = {k: (cpu_after[k] - cpu_before[k]) * 1000 / n for k in cpu_before}
            passes = passes_between(passes_before, passes_after)
            results.append(Level(c, latencies, elapsed, errors, cpu, passes))
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


def report(
    model, resolution, bare: Bare, levels: list[Level], load_before, load_after, client: str
) -> None:
    b1_rate = 1000 / bare.batch1_ms
    best_b, best_rate = bare.best_batch, bare.rates[bare.best_batch]
    print(f"\nmodel {model} at {resolution}x{resolution}; {machine()}")
    print(f"load average (1, 5, 15 min): {load_before} before, {load_after} after")
    print(f"client: {CLIENTS[client]}")
    print("bare = encode(image, attributes) + generate, in this process, tensors in memory:")
    print("| batch | " + " | ".join(str(b) for b in bare.rates) + " |")
    print("|---" * (len(bare.rates) + 1) + "|")
    print("| transfers/s | " + " | ".join(f"{r:.0f}" for r in bare.rates.values()) + " |")
    print("| CPU ms per transfer | " + " | ".join(f"{c:.2f}" for c in bare.cpu_ms.values()) + " |")
    print()
    print(
        "| | p50 ms | p95 ms | p99 ms | req/s | against the bare model | client CPU ms "
        "| API | worker outside forward | Redis | stack outside forward | forward (worker) "
        "| rows per pass (encode, generate) | forward, bare at that batch |"
    )
    print("|---" * 14 + "|")
    print(
        f"| bare model, batch 1 | {bare.batch1_ms:.1f} | | | {b1_rate:.0f} | | | | | | "
        f"| | 2, 1 | {bare.cpu_ms[1]:.2f} |"
    )
    print(
        f"| bare model, best batch ({best_b}) | | | | {best_rate:.0f} | x{best_rate / b1_rate:.2f} "
        f"batch 1 | | | | | | | {2 * best_b}, {best_b} | {bare.cpu_ms[best_b]:.2f} |"
    )
    for lv in levels:
        c = lv.cpu_ms
        p50 = lv.pct(50)
        if lv.concurrency == 1:
            vs = f"p50 {p50 - bare.batch1_ms:+.1f} ms"
        else:
            vs = f"{lv.rate / best_rate:.0%} of best batched"
        if lv.errors:
            vs += f", {lv.errors} errors"
        gen = lv.mean_rows("generate")
        print(
            f"| `POST /transfer`, concurrency {lv.concurrency} | {p50:.1f} | {lv.pct(95):.1f} "
            f"| {lv.pct(99):.1f} | {lv.rate:.0f} | {vs} | {c['client']:.2f} | {c['api']:.2f} "
            f"| {c['worker'] - c['forward']:.2f} | {c['redis']:.2f} | **{lv.outside_ms:.2f}** "
            f"| {c['forward']:.2f} | {lv.mean_rows('encode'):.1f}, {gen:.1f} "
            f"| {bare.cpu_at(gen):.2f} |"
        )
    print(
        "\nCPU columns: milliseconds per request (user + system, /proc), the worker's forward "
        f"passes being its threads named {DEVICE_THREAD}. `make serve`'s log relay (not part "
        "of a deployment; compose leaves logs to Docker): "
        + ", ".join(f"{lv.cpu_ms['relay']:.2f}" for lv in levels)
        + " ms per request."
    )
    others = [max(0.0, lv.cpu_ms.get("others", 0.0) * lv.rate / 1000) for lv in levels]
    print(
        f"other processes used up to {max(others, default=0):.2f} of the {os.cpu_count()} cores "
        "during the service runs"
    )
    print("\ngoals:")
    by_c = {lv.concurrency: lv for lv in levels}
    if 16 in by_c:
        outside = by_c[16].outside_ms
        met = "MET" if outside <= GOAL_OUTSIDE_MS else "NOT MET"
        print(
            f"  concurrency 16, the stack's CPU outside the forward pass at most "
            f"{GOAL_OUTSIDE_MS:g} ms per request: {outside:.2f} ms -> {met}"
        )
    if 1 in by_c:
        extra = by_c[1].pct(50) - bare.batch1_ms
        met = "MET" if extra <= GOAL_LATENCY_MS else "NOT MET"
        print(
            f"  concurrency 1, p50 within {GOAL_LATENCY_MS:g} ms of bare batch 1: "
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
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--model", default=BENCH_MODEL, help="a model in models/")
    ap.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="bare model and service alternately; the best of each is shown (a shared machine)",
    )
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--batches", default="1,2,4,8,16,32,64")
    ap.add_argument(
        "--client",
        choices=("lean", "httpx"),
        default="lean",
        help="lean: requests built beforehand (bench/http_client.py); httpx: as an application",
    )
    args = ap.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    # Batch 1 is always measured: the latency goal and the report's first row compare with it.
    batches = sorted({1, *(int(b) for b in args.batches.split(","))})

    vae = load_model(REPO_ROOT / "models" / args.model)
    with tempfile.TemporaryDirectory(prefix="bench-") as state:
        print("starting a stack as `make serve` does ...", flush=True)
        with own_stack(Path(state)) as stack:
            app = Celery("bench", broker=stack.redis_url)
            app.conf.update(accept_content=["json"], result_accept_content=["json"])
            load_before = load()
            bares, services = [], []
            for i in range(args.rounds):
                print(f"round {i + 1}/{args.rounds}: bare model {args.model}, batches {batches}")
                bares.append(measure_bare(vae, batches))
                print(f"round {i + 1}/{args.rounds}: concurrency {levels}, {args.seconds:g} s each")
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    services.append(
                        runner.run(
                            measure_service(
                                stack,
                                app,
                                args.model,
                                vae.resolution,
                                levels,
                                args.seconds,
                                args.client,
                            )
                        )
                    )
            load_after = load()
            app.close()
    best = [max(by_level, key=lambda lv: lv.rate) for by_level in zip(*services, strict=True)]
    report(args.model, vae.resolution, best_bare(bares), best, load_before, load_after, args.client)


if __name__ == "__main__":
    main()
