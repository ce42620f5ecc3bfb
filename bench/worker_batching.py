"""What micro-batching gives on this machine: the forward pass alone, then the real worker.

    python -m bench.worker_batching [--model-dir models] [--jobs 48] [--resolution 64]

1. In-process: transfer's device work (encode 2 images, generate 1) at batch sizes 1..64,
   images per second and the ratio to batch 1.
2. Through Redis and a worker process: the same `transfer` jobs sent all at once, with
   batching off (one job at a time) and on (16 jobs in flight, 3 ms wait), jobs per second
   and the ratio. Both runs use the same machine, checkpoints and payloads, in one process.

Uses the checkpoints in --model-dir when given, else a random-weight checkpoint with the
served architecture (the figures depend on the architecture, not on the weights).
"""

from __future__ import annotations

import argparse
import base64
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from contract.tasks import TaskName
from model import load_model
from tests.utils.checkpoints import make_checkpoint
from tests.utils.redis_server import running_redis
from tests.utils.worker_process import celery_client, running_worker

SERVED = dict(base_channels=64, max_channels=256, fc_dim=512, z_dim=32, e_dim=32)


def forward_rates(vae, batch_sizes, rounds: int = 3, rows: int = 64) -> dict[int, float]:
    """Transfers per second of encode(2B) + generate(B), best of `rounds` (the machine may
    be shared: the best round is the least disturbed one); rounds interleave batch sizes."""
    r = vae.resolution
    xs = {b: torch.rand(2 * b, 3, r, r) * 2 - 1 for b in batch_sizes}
    for b, x in xs.items():  # warm-up at each size
        z, e = vae.encode_tensor(x)
        vae.generate_tensor(z[:b], e[b:])
    best = dict.fromkeys(batch_sizes, 0.0)
    for _ in range(rounds):
        for b, x in xs.items():
            calls = max(1, rows // b)
            t0 = time.perf_counter()
            for _ in range(calls):
                z, e = vae.encode_tensor(x)
                vae.generate_tensor(z[:b], e[b:])
            best[b] = max(best[b], calls * b / (time.perf_counter() - t0))
    return best


def png_b64(rng, r: int) -> str:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (r, r, 3), dtype=np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def worker_rate(redis_url, model_dir, log_dir, payloads, **settings) -> float:
    with running_worker(redis_url, model_dir, log_dir, **settings):
        client = celery_client(redis_url)
        for p in payloads[:8]:  # warm the path end to end
            client.send_task(str(TaskName.TRANSFER), kwargs=p).get(timeout=60)
        t0 = time.perf_counter()
        pending = [client.send_task(str(TaskName.TRANSFER), kwargs=p) for p in payloads]
        for p in pending:
            p.get(timeout=300)
        elapsed = time.perf_counter() - t0
        client.close()
    return len(payloads) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--model", default="faces")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--jobs", type=int, default=48)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = args.model_dir
        if model_dir is None:
            model_dir = tmp / "models"
            make_checkpoint(
                model_dir / args.model, args.model, resolution=args.resolution, **SERVED
            )
        vae = load_model(model_dir / args.model)
        print(
            f"model {args.model}: {vae.resolution}x{vae.resolution}, z {vae.z_dim}, e {vae.e_dim}"
        )
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")

        print("\n1. forward pass alone (transfers per second)")
        rates = forward_rates(vae, (1, 4, 16, 64))
        for b, rate in rates.items():
            print(f"   batch {b:>3}: {rate:8.1f} /s   x{rate / rates[1]:.2f} vs batch 1")

        rng = np.random.default_rng(0)
        r = vae.resolution
        payloads = [
            dict(model=args.model, image=png_b64(rng, r), attributes=png_b64(rng, r))
            for _ in range(args.jobs)
        ]
        print(f"\n2. worker process, {args.jobs} transfer jobs queued at once (jobs per second)")
        with running_redis(tmp) as redis:
            off, on = 0.0, 0.0
            for _ in range(2):  # alternated, best of two each: the machine may be shared
                off = max(off, worker_rate(redis.url, model_dir, tmp, payloads, concurrency=1))
                on = max(
                    on,
                    worker_rate(
                        redis.url, model_dir, tmp, payloads, concurrency=16, batch_wait_ms=3
                    ),
                )
        print(f"   batching off (1 job in flight):         {off:8.1f} /s")
        print(f"   batching on (16 in flight, 3 ms wait):  {on:8.1f} /s   x{on / off:.2f}")


if __name__ == "__main__":
    main()
