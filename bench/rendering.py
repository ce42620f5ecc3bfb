"""What rendering an edit onto its input costs beside the forward passes it follows.

For a served model and batch sizes 1 to 64: milliseconds of one transfer's device work
(encode the image and the attributes, generate the edit and the image's reconstruction in one
pass, as the worker does for a model with a domain check) and of the composition the input
rendering adds (model/rendering.py `keep_input`, on the CPU after the pass). Best of `--repeat`
timings each; figures compare within one run only.

    python -m bench.rendering [--model faces] [--batches 1,8,64] [--repeat 20]
"""

from __future__ import annotations

import argparse
import time

import torch

from model import load_model
from model.inference import ReferenceVAE
from model.rendering import keep_input
from scripts.processes import REPO_ROOT


def best_ms(fn, repeat: int) -> float:
    fn()  # warm-up: allocator growth, kernel selection
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000


def measure(vae: ReferenceVAE, b: int, repeat: int) -> tuple[float, float]:
    """(device work ms, composition ms) of b transfers."""
    r = vae.resolution
    x = torch.rand(2 * b, 3, r, r, generator=torch.Generator().manual_seed(b)) * 2 - 1

    def device_work() -> torch.Tensor:
        z, e = vae.encode_tensor(x)  # the images, then the attributes
        return vae.generate_tensor(torch.cat([z[:b], z[:b]]), torch.cat([e[b:], e[:b]]))

    out = device_work()  # the edits, then the reconstructions
    tolerance = vae.rendering.tolerance
    compose = best_ms(lambda: keep_input(x[:b], out[:b], out[b:], tolerance), repeat)
    return best_ms(device_work, repeat), compose


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.rendering", description=__doc__)
    ap.add_argument("--model", default="faces", help="a model in models/")
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    vae = load_model(REPO_ROOT / "models" / args.model)
    r = vae.resolution
    print(f"model {args.model} at {r}x{r}, torch threads {torch.get_num_threads()}")
    print("| transfers | forward passes ms | rendering onto the input ms | share |")
    print("| --- | --- | --- | --- |")
    for b in (int(v) for v in args.batches.split(",")):
        forward, compose = measure(vae, b, args.repeat)
        print(f"| {b} | {forward:.2f} | {compose:.3f} | {compose / forward:.1%} |")


if __name__ == "__main__":
    main()
