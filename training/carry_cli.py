"""`python -m training carry --run NAME`: keep a run's training state in git, compactly.

Writes `resume/NAME/` (float16 weights, bfloat16 optimiser moments, the manifest and the
metrics so far) from `runs/NAME/state/`. On another machine, `python -m training train` with the
same run name and no `runs/NAME/state/` resumes from it. Commit it rarely: every commit of it
stays in the history.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from training.config import RunConfig

    defaults = RunConfig()
    parser = subparsers.add_parser("carry", help="a compact copy of a run's state, for git")
    parser.add_argument("--run", required=True, help="the run's name")
    parser.add_argument("--runs-root", type=Path, default=Path(defaults.runs_root))
    parser.add_argument("--carry-root", type=Path, default=Path(defaults.carry_root))
    parser.set_defaults(func=run)


def carry(run_dir: Path, target: Path) -> Path:
    from model.checkpoint import compact_training_state
    from training.loop import METRICS
    from training.publish import written_whole

    with written_whole(target) as staging:
        compact_training_state(run_dir / "state", staging)
        for name in (METRICS, "config.json"):
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, staging / name)
    return target


def run(args: argparse.Namespace) -> int:
    target = carry(args.runs_root / args.run, args.carry_root / args.run)
    size = sum(p.stat().st_size for p in target.iterdir())
    print(f"wrote {target} ({size / 2**20:.1f} MiB)")
    return 0
