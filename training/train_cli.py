"""`python -m training train --config configs/digits-cpu.toml [--set section.key=value ...]`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from training.config import load_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train sRb-VAE, Rb-VAE or a VAE baseline")
    parser.add_argument("--config", type=Path, help="TOML file (configs/*.toml)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set run.steps=2000 --set optim.lr=2e-4",
    )  # fmt: skip
    parser.add_argument("--fresh", action="store_true", help="ignore a saved state and start over")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and stop")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    print(cfg.to_json())
    if args.dry_run:
        return 0
    from training.loop import train  # torch is imported only when training
    from training.stopping import StopRequested

    command = shlex.join(["python", "-m", "training", *sys.argv[1:]])
    try:
        run_dir = train(cfg, command=command, resume=not args.fresh)
    except StopRequested as exc:
        print(f"{exc}: run the same command (without --fresh) to resume", file=sys.stderr)
        return 128 + exc.signum
    print(f"run directory: {run_dir}\ninference checkpoint: {run_dir / 'export'}")
    return 0
