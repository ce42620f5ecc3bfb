"""`python -m training fit-prior --checkpoint DIR [--data DIR] [--images N]`.

Fits the Gaussian `/sample` draws e from to an existing export (training does this itself on
export), e.g. to a checkpoint exported before there was one. Re-run `evaluate --write-card`
afterwards: the weights file and its SHA-256 change, and so do the sample figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from training.prior import DEFAULT_IMAGES

    parser = subparsers.add_parser(
        "fit-prior", help="fit the distribution /sample draws target factors from"
    )
    parser.add_argument(
        "--checkpoint", type=Path, required=True, help="an inference checkpoint directory"
    )
    parser.add_argument(
        "--data", type=Path, help="prepared dataset; default: the one it was trained on"
    )
    parser.add_argument(
        "--images", type=int, default=DEFAULT_IMAGES, help="unlabelled images to encode"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model import load_model
    from model.checkpoint import attach_target_prior
    from training.evaluate_cli import dataset_for
    from training.prior import fit_target_prior

    model = load_model(args.checkpoint)
    data = dataset_for(model.manifest, args.data)
    prior = fit_target_prior(model, data, args.images)
    attach_target_prior(args.checkpoint, prior)
    spread = prior.scale_tril.pow(2).sum(1).sqrt()  # per-dimension standard deviation
    print(
        f"fitted e ~ N(mean, L L^T) on {prior.fitted_on} images of {data.path}: "
        f"|mean| {prior.mean.norm():.3f}, std per dimension {spread.min():.3f} to {spread.max():.3f}"
    )
    print(f"rewrote {args.checkpoint}")
    return 0
