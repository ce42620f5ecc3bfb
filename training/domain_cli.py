"""`python -m training domain-stats --checkpoint DIR [--data DIR] [--images N]`.

Stores the domain reference (model/domain.py) in an existing export's model.json, without
retraining and without touching the weights (training does this itself on export); re-run it
after replacing a served model's weights. The model card's domain line is written too.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from training.domain import DEFAULT_IMAGES

    parser = subparsers.add_parser(
        "domain-stats",
        help="store held-out images' reconstruction errors, against which inputs are scored",
    )
    parser.add_argument(
        "--checkpoint", type=Path, required=True, action="append",
        help="an inference checkpoint directory (repeat for several)",
    )  # fmt: skip
    parser.add_argument(
        "--data", type=Path, help="prepared dataset; default: the one it was trained on"
    )
    parser.add_argument(
        "--images", type=int, default=DEFAULT_IMAGES, help="held-out (eval_fit) images to use"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model import load_model
    from model.checkpoint import update_manifest
    from training.card import write_domain_line
    from training.domain import fit_domain_reference
    from training.evaluate_cli import dataset_for

    for checkpoint in args.checkpoint:
        model = load_model(checkpoint)
        data = dataset_for(model.manifest, args.data)
        ref = fit_domain_reference(model, data, args.images)
        update_manifest(checkpoint, domain=ref.record())
        q = ref.quantiles
        print(
            f"{checkpoint}: reconstruction error on {ref.images} {ref.split} images of "
            f"{data.path}: median {q[50]:.4f}, 99th percentile {q[99]:.4f} (the threshold), "
            f"max {q[100]:.4f}"
        )
        card = write_domain_line(checkpoint)
        print(f"rewrote {checkpoint / 'model.json'}" + (f" and {card}" if card else ""))
    return 0
