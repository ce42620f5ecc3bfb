"""Where one request's time goes: a timeline of `POST /transfer` at concurrency 1, stage by
stage across the client, the API and the worker, beside the floors of the engines it runs on.

    python -m bench.request_timeline [--requests 300] [--model digits-rbvae]

1. A stack started as `make serve` starts it, with `SRBVAE_TRACE_TIMINGS=1` in both processes:
   the API and the worker note wall-clock times (`time.time_ns`, one clock on one machine) as
   a request passes each stage (service/core/trace.py, worker/trace.py) and the API returns
   them in the `X-Trace-Timings` header. `--requests` sequential requests (two PNGs at the
   model's resolution, PNG answer, as bench/request_cost.py sends them); the client notes when
   it sent each and when the answer was in. Printed: the median and 90th percentile of each
   gap between consecutive stages, and of the whole round trip.
2. The floors, on the same machine in the same run, each over `--requests` sequential round
   trips: a no-op Celery task (bench/noop_worker.py: the worker's Celery settings, threads
   pool, late acknowledgement, Redis backend) sent and awaited as the API sends and awaits a
   job (the message LPUSHed in a pipeline, the result through a pattern subscription), with
   Celery storing its result and with the task storing it itself as ours do; a no-op uvicorn
   endpoint (bench/noop_api.py: bare ASGI, and a FastAPI route) taking the same two-file
   multipart upload; a Redis PING from an asyncio client; and the bare model's batch 1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import torch
from redis.asyncio import Redis

from bench import BENCH_MODEL
from bench.request_cost import measure_bare, own_stack, random_png
from contract.tasks import RAW_RGB_PREFIX, TRACE_ENV
from model import load_model
from scripts.processes import REPO_ROOT, accepts_connections, free_port
from service.core.results import RESULT_PATTERN, ResultListener
from service.core.sender import queue_task
from service.core.trace import HEADER, decode

# The stages of one request, in the order they happen on its critical path.
STAGES = (
    ("client_send", "client: request sent"),
    ("api_received", "API: request received (headers)"),
    ("api_upload_parsed", "API: multipart body read and parsed"),
    ("api_converted", "API: route entered, uploads converted to pixels"),
    ("api_submit", "API: payload built, result channel watched"),
    ("api_admitted", "API: admission checked (LLEN, INFO memory: one round trip)"),
    ("w_read", "worker: message read off the queue (BRPOP reply to the API's LPUSH)"),
    ("w_received", "worker: Celery's request built (unacked record written)"),
    ("w_task_start", "worker: task function started (pool thread)"),
    ("w_admitted", "worker: admitted (deliveries SET NX)"),
    ("w_encode_submit", "worker: pixels decoded, encode submitted"),
    ("w_encode_start", "device: encode pass started"),
    ("w_encode_end", "device: encode pass ended"),
    ("w_encode_back", "worker: task thread has the latents"),
    ("w_generate_submit", "worker: generate submitted"),
    ("w_generate_start", "device: generate pass started"),
    ("w_generate_end", "device: generate pass ended"),
    ("w_generate_back", "worker: task thread has the images"),
    ("w_task_end", "worker: domain check, PNG encoded, result built"),
    ("api_published", "API: result arrived on the subscription"),
    ("api_woke", "API: request's coroutine resumed with the state"),
    ("api_response_start", "API: response built, headers sent"),
    ("client_received", "client: answer read"),
)
STAGE_NAMES = tuple(name for name, _ in STAGES)
# Off the critical path: the API's pipeline (job record and message) is answered after the
# worker has the message already; the API only waits for the result from then on.
SIDE = (("api_admitted", "api_queued", "API: its pipeline's reply read (off the critical path)"),)


# --- arithmetic --------------------------------------------------------------------------------


def gaps(records: list[dict[str, int]]) -> dict[tuple[str, str], list[float]]:
    """For each pair of consecutive stages (in STAGES' order, skipping those a record lacks),
    the gaps in milliseconds over the records that have both."""
    out: dict[tuple[str, str], list[float]] = {}
    for record in records:
        present = [s for s in STAGE_NAMES if s in record]
        for a, b in zip(present, present[1:], strict=False):
            out.setdefault((a, b), []).append((record[b] - record[a]) / 1e6)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def timeline_table(records: list[dict[str, int]]) -> list[str]:
    """Markdown rows: each gap's median and 90th percentile, then the round trip."""
    labels = dict(STAGES)
    rows = ["| from | to | median ms | p90 ms |", "| --- | --- | --- | --- |"]
    by_pair = gaps(records)
    ordered = sorted(by_pair, key=lambda p: (STAGE_NAMES.index(p[0]), STAGE_NAMES.index(p[1])))
    for a, b in ordered:
        values = by_pair[a, b]
        rows.append(f"| {a} | {b}: {labels[b]} | {pct(values, 50):.2f} | {pct(values, 90):.2f} |")
    total = [
        (r["client_received"] - r["client_send"]) / 1e6
        for r in records
        if "client_received" in r and "client_send" in r
    ]
    rows.append(f"| client_send | client_received (round trip) | {pct(total, 50):.2f} "
                f"| {pct(total, 90):.2f} |")  # fmt: skip
    for a, b, label in SIDE:
        side = [(r[b] - r[a]) / 1e6 for r in records if a in r and b in r]
        if side:
            rows.append(f"| {a} | {b}: {label} | {pct(side, 50):.2f} | {pct(side, 90):.2f} |")
    return rows


# --- the traced stack --------------------------------------------------------------------------


def transfer_files(rng: np.random.Generator, resolution: int, n: int) -> list[dict]:
    pngs = [random_png(rng, resolution) for _ in range(n)]
    return [
        {
            "image": ("image.png", pngs[k], "image/png"),
            "attributes": ("attributes.png", pngs[(k + 1) % n], "image/png"),
        }
        for k in range(n)
    ]


async def traced_requests(url: str, model: str, resolution: int, n: int) -> list[dict[str, int]]:
    files = transfer_files(np.random.default_rng(0), resolution, 64)
    records = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for i in range(n + 20):  # the first 20 warm up
            sent = time.time_ns()
            answer = await client.post("/transfer", data={"model": model}, files=files[i % 64])
            received = time.time_ns()
            if answer.status_code != 200:
                raise RuntimeError(f"POST /transfer: {answer.status_code} {answer.text[:200]}")
            if i >= 20:
                record = decode(answer.headers.get(HEADER, ""))
                if not record:
                    raise RuntimeError(f"no {HEADER} header: is {TRACE_ENV}=1 in the API?")
                records.append({"client_send": sent, **record, "client_received": received})
    return records


# --- the floors --------------------------------------------------------------------------------


async def round_trips(n: int, one: Callable[[int], Awaitable[object]]) -> list[float]:
    """Milliseconds of `n` sequential calls, after 20 to warm up."""
    out = []
    for i in range(n + 20):
        t0 = time.perf_counter()
        await one(i)
        if i >= 20:
            out.append((time.perf_counter() - t0) * 1000)
    return out


@contextlib.contextmanager
def child(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def job_kwargs(model: str, resolution: int) -> dict:
    """A transfer's arguments as the API queues them: two pictures as raw pixels."""
    pixels = RAW_RGB_PREFIX + base64.b64encode(bytes(resolution * resolution * 3)).decode()
    return {"model": model, "image": pixels, "attributes": pixels, "strength": 1.0,
            "face": 0, "attributes_face": 0, "face_box": None, "attributes_face_box": None,
            "output": "photo"}  # fmt: skip


async def celery_floor(redis_url: str, kwargs: dict, n: int, state: Path) -> dict[str, list[float]]:
    """No-op tasks sent and awaited as the API sends and awaits a job."""
    from bench.noop_worker import NOOP, NOOP_STORED

    env = {k: v for k, v in os.environ.items() if k != TRACE_ENV}
    env.update(SRBVAE_WORKER_REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    redis = Redis.from_url(redis_url)
    listener = ResultListener(redis, timeout_s=10, retry_after_s=1)
    prefix = RESULT_PATTERN.removesuffix("*")

    def one(name: str) -> Callable[[int], Awaitable[None]]:
        async def call(_: int) -> None:
            job_id = str(uuid.uuid4())
            async with listener.watch(prefix + job_id) as watch:
                await watch.subscribed()
                pipe = redis.pipeline(transaction=False)
                queue_task(pipe, name, kwargs, job_id, 60)
                await pipe.execute()
                if not await watch.next(60):
                    raise RuntimeError(f"{name}: no result in 60 s")

        return call

    out: dict[str, list[float]] = {}
    try:
        argv = [sys.executable, "-m", "bench.noop_worker"]
        with child(argv, env, state / "noop_worker.log"):
            await one(NOOP)(0)  # waits for the worker to start
            for name in (NOOP, NOOP_STORED):
                out[name] = await round_trips(n, one(name))
        out["Redis PING (asyncio client)"] = await round_trips(n, lambda _: redis.ping())
    finally:
        await listener.close()
        await redis.aclose()
    return out


async def http_floor(resolution: int, n: int, state: Path) -> dict[str, list[float]]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.noop_api:app", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log"]  # fmt: skip
    files = transfer_files(np.random.default_rng(0), resolution, 64)
    out = {}
    with child(argv, dict(os.environ), state / "noop_api.log") as proc:
        deadline = time.monotonic() + 60
        while not accepts_connections(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the no-op uvicorn did not start")
            await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for path in ("/raw", "/fastapi"):

                async def post(i: int, path: str = path) -> None:
                    answer = await client.post(path, data={"model": "m"}, files=files[i % 64])
                    answer.raise_for_status()

                out[f"uvicorn {path}"] = await round_trips(n, post)
    return out


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--model", default=BENCH_MODEL, help="a model in models/")
    ap.add_argument("--requests", type=int, default=300, help="sequential round trips of each")
    args = ap.parse_args(argv)
    vae = load_model(REPO_ROOT / "models" / args.model)
    r = vae.resolution
    os.environ[TRACE_ENV] = "1"  # the stack's processes inherit it
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        state = Path(tmp)
        print("starting a stack as `make serve` does, with tracing on ...", flush=True)
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        with own_stack(state) as stack:
            records = asyncio.run(traced_requests(stack.url, args.model, r, args.requests))
            print(f"{len(records)} traced requests; now the floors ...", flush=True)
            floor_url = stack.redis_url.rsplit("/", 1)[0] + "/1"  # a database of its own
            kwargs = job_kwargs(args.model, r)
            floors = asyncio.run(celery_floor(floor_url, kwargs, args.requests, state))
        floors |= asyncio.run(http_floor(r, args.requests, state))
        threads = torch.get_num_threads()
        bare = {threads: measure_bare(vae, [1])}
        if threads != 1:  # what the worker's small passes run on (small_pass_threads)
            torch.set_num_threads(1)
            bare[1] = measure_bare(vae, [1])
            torch.set_num_threads(threads)
        load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n`POST /transfer`, model {args.model} ({r}x{r}), concurrency 1, {len(records)} "
          f"requests; load average {load_before} before, {load_after} after\n")  # fmt: skip
    print("\n".join(timeline_table(records)))
    print("\n| floor | median ms | p90 ms |\n| --- | --- | --- |")
    for name, values in floors.items():
        print(f"| {name} | {pct(values, 50):.2f} | {pct(values, 90):.2f} |")
    for n, b in bare.items():
        print(f"| bare model, batch 1, {n} intra-op thread(s) (median) | {b.batch1_ms:.2f} | |")
    total = statistics.median([(x["client_received"] - x["client_send"]) / 1e6 for x in records])
    best = min(b.batch1_ms for b in bare.values())
    print(f"\nround trip p50 {total:.2f} ms, {total - best:+.2f} ms against the faster bare model")


if __name__ == "__main__":
    main()
