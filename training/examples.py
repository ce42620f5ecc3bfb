"""Example images shipped with a served model: a few held-out images of its own data, which the
API lists at `GET /models/{name}/examples` and the web page offers to click.

    python -m training.examples models/faces models/digits

For each model directory, reads the prepared dataset named in its `model.json` (the run's
`data`), takes the first image of each class (expression, digit) from the `eval_score` split,
which training never sees, and writes `examples/<label>.png` (the stored pixels, at the model's
resolution) and `examples/examples.json` (where they came from: dataset, split, indices).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

SPLIT = "eval_score"  # held out of training; eval_fit is used to fit the evaluation's probes


def data_dir(model_dir: Path) -> Path:
    manifest = json.loads((model_dir / "model.json").read_text())
    return Path(manifest["data"]["path"])


def write_examples(model_dir: Path, data: Path, per_class: int = 1) -> dict:
    meta = json.loads((data / "meta.json").read_text())
    images = np.load(data / f"{SPLIT}_images.npy", mmap_mode="r")  # (N, H, W, 3) uint8
    labels = np.load(data / f"{SPLIT}_labels.npy")  # (N,)
    names = meta.get("class_names") or [str(c) for c in sorted(set(labels.tolist()))]
    out = model_dir / "examples"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    examples = []
    for c, name in enumerate(names):
        for k, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
            file = f"{name}.png" if per_class == 1 else f"{name}-{k}.png"
            Image.fromarray(np.asarray(images[i])).save(out / file, optimize=True)
            examples.append({"file": file, "label": name, "index": int(i)})
    listing = {
        "data": str(data),
        "source": meta.get("source", ""),
        "split": SPLIT,
        "split_sha256": meta.get("sha256", {}).get(f"{SPLIT}_images.npy", ""),
        "label_name": meta.get("label_name", "class"),
        "description": f"held-out images of the {SPLIT} split of {data.name} "
        "(never seen in training), one per class",
        "examples": examples,
    }
    (out / "examples.json").write_text(json.dumps(listing, indent=2) + "\n")
    return listing


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.examples", description=__doc__)
    parser.add_argument("models", nargs="+", type=Path, help="served model directories")
    parser.add_argument("--data", type=Path, help="prepared dataset (default: the model's own)")
    parser.add_argument("--per-class", type=int, default=1)
    args = parser.parse_args(argv)
    for model_dir in args.models:
        listing = write_examples(model_dir, args.data or data_dir(model_dir), args.per_class)
        print(f"{model_dir}/examples: {len(listing['examples'])} images from {listing['data']}")


if __name__ == "__main__":
    main()
