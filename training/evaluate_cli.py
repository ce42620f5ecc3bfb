"""`python -m training evaluate --checkpoint runs/NAME/export [--data DIR] [--write-card]`.

Prints the Table-1 style Markdown table beside the paper's digit numbers and writes JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model.rendering import RENDER_MODES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="probes (paper Table 1) and transfer fidelity")
    parser.add_argument(
        "--checkpoint", type=Path, required=True, help="an inference checkpoint directory"
    )
    parser.add_argument(
        "--data", type=Path, help="prepared dataset; default: the one it was trained on"
    )
    parser.add_argument(
        "--out", type=Path, help="JSON output; default: evaluation.json beside the checkpoint"
    )
    parser.add_argument(
        "--baseline", action="append", default=[], type=Path, metavar="JSON",
        help="evaluation.json of another model to show in the same table (e.g. the VAE baseline)",
    )  # fmt: skip
    parser.add_argument("--no-fidelity", action="store_true", help="probes only (no oracle)")
    parser.add_argument(
        "--nonlinear-probes", action="store_true",
        help="also probe e, z and both with a small MLP: is a factor the linear probe misses in "
        "the features at all (not the paper's measure)",
    )  # fmt: skip
    parser.add_argument(
        "--render", choices=RENDER_MODES,
        help="render the edits so (model/rendering.py); default: the checkpoint's rendering",
    )  # fmt: skip
    parser.add_argument(
        "--write-card", action="store_true",
        help="record the metrics in the checkpoint's model.json and write its MODEL_CARD.md",
    )  # fmt: skip
    parser.set_defaults(func=run)


def dataset_for(manifest: dict, override: Path | None):
    """The prepared dataset `override` names, else the one the checkpoint was trained on."""
    from training.data import PreparedDataset

    path = override or Path(manifest.get("data", {}).get("path", ""))
    if not (path / "meta.json").is_file():
        raise SystemExit(f"error: no prepared dataset at {path!s}: pass --data")
    return PreparedDataset.open(path)


def run(args: argparse.Namespace) -> int:
    from model import load_model
    from training.card import write_card
    from training.evaluation.evaluate import evaluate, markdown

    model = load_model(args.checkpoint)
    data = dataset_for(model.manifest, args.data)
    result = evaluate(
        model,
        data,
        fidelity_checks=not args.no_fidelity,
        nonlinear_probes=args.nonlinear_probes,
        render=args.render,
    )
    baselines = {}
    for path in args.baseline:
        other = json.loads(path.read_text())
        baselines[f"{other['model']} ({other['variant']})"] = other
    table = markdown(result, baselines)
    print(table)
    out = args.out or args.checkpoint / "evaluation.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    if args.write_card:
        print(f"wrote {write_card(args.checkpoint, result, table)}")
    return 0
