"""The API's memory under phone-sized photos: peak resident memory and time per request for 1,
8 and 64 concurrent `POST /transfer` requests, each with two 12-megapixel JPEGs (~8 MiB each).

    python -m bench.large_uploads [--repo PATH] [--levels 1 8 64] [--model-dir models] [--photos]

By default the model is `digits-rbvae`, so the API decodes each upload (reduced, JPEG draft mode) to
32x32 itself. With `--photos` it is `faces` and each JPEG holds a face: the API forwards the
files undecoded, and the worker finds the face, edits it and answers the whole photo (JPEG).

For each level a fresh API process (uvicorn, the settings' defaults) is started, sent one
such request to warm up, left to settle (its resting RSS), then sent the burst; printed per
level: resting RSS, peak RSS (VmHWM, from /proc), RSS 10 s after the burst, the answers by
status, and the seconds per request (median and slowest of the clients' times, and the
burst's wall time divided by the number of requests).

`--repo` runs the API of another checkout (its `service/`), to compare before and after:

    git worktree add /tmp/before <commit>
    python -m bench.large_uploads --repo /tmp/before

Redis and the worker (this checkout's, the models in --model-dir) are started once and shared.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench import BENCH_MODEL
from scripts.processes import REPO_ROOT, free_port
from tests.utils.bursts import burst, photo_jpeg, rss_mib, settle
from tests.utils.photo_uploads import phone_photo
from tests.utils.redis_server import running_redis
from tests.utils.worker_process import running_worker


@contextlib.contextmanager
def api_process(repo: Path, redis_url: str, log: Path, model: str) -> Iterator[tuple[str, int]]:
    """uvicorn serving `repo`'s service on a free port: (its URL, its pid)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRBVAE_API_")}
    env.update(SRBVAE_API_REDIS_URL=redis_url, SRBVAE_API_DEFAULT_MODEL=model)
    env.update(SRBVAE_API_JOB_TIMEOUT_S="300")  # a shared machine answers late, not wrongly
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "service.main:app", "--port", str(port),
            "--log-level", "warning"]  # fmt: skip
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not become ready; see {log}")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        process.kill()
        process.wait()


def level(
    repo: Path, redis_url: str, files: dict[str, bytes], n: int, log: Path, model: str
) -> dict:
    with api_process(repo, redis_url, log, model) as (url, pid):
        warm = burst(f"{url}/transfer", files, 1)[0]
        if warm.status != 200:
            raise RuntimeError(f"the warm-up request was answered {warm}")
        resting = settle(pid)
        start = time.perf_counter()
        answers = burst(f"{url}/transfer", files, n)
        wall = time.perf_counter() - start
        peak = rss_mib(pid, "VmHWM")
        time.sleep(10)
        later = rss_mib(pid)
    statuses: dict[int, int] = {}
    for a in answers:
        statuses[a.status] = statuses.get(a.status, 0) + 1
    seconds = [a.seconds for a in answers]
    return dict(
        n=n, resting=resting, peak=peak, later=later, statuses=statuses,
        median=statistics.median(seconds), slowest=max(seconds), per_request=wall / n,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help="checkout whose API to run")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models")
    parser.add_argument("--photos", action="store_true", help="faces, photos with a face each")
    args = parser.parse_args()

    if args.photos:
        model = "faces"
        files = {"image": phone_photo(seed=0), "attributes": phone_photo(seed=2)}
    else:
        model = BENCH_MODEL
        files = {"image": photo_jpeg(seed=0), "attributes": photo_jpeg(seed=1)}
    sizes = " + ".join(f"{len(d) / 2**20:.1f} MiB" for d in files.values())
    repo = args.repo.resolve()
    print(f"API of {repo} (commit {_commit(repo)}); model {model}; two 4000x3000 JPEGs per"
          f" request: {sizes}")  # fmt: skip
    print(f"{'in flight':>9} {'resting':>8} {'peak':>8} {'10 s on':>8}  {'s/request':>9}"
          f" {'median s':>8} {'slowest':>7}  answers")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with (
            running_redis(root) as redis,
            running_worker(redis.url, args.model_dir, root, torch_threads=1),
        ):
            for n in args.levels:
                r = level(repo, redis.url, files, n, root / "api.log", model)
                answers = ", ".join(
                    f"{c} x {s or 'failed'}" for s, c in sorted(r["statuses"].items())
                )
                print(f"{n:>9} {r['resting']:>5.0f} MiB {r['peak']:>4.0f} MiB {r['later']:>4.0f} MiB"
                      f"  {r['per_request']:>9.2f} {r['median']:>8.2f} {r['slowest']:>7.2f}  {answers}",
                      flush=True)  # fmt: skip


def _commit(repo: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True)
    return done.stdout.decode().strip() or "unknown"


if __name__ == "__main__":
    main()
