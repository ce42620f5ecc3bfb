"""`python -m training <command>`: each command's parser lives in its own module.

A module registers itself with `add_parser(subparsers)`, which sets `func` to the function
that runs the parsed arguments. Add `train` and `evaluate` beside `data` the same way.
"""

from __future__ import annotations

import argparse
import logging

from training import carry_cli, domain_cli, evaluate_cli, install_cli, prior_cli, train_cli
from training.data import cli as data_cli

COMMANDS = (data_cli, train_cli, carry_cli, prior_cli, domain_cli, evaluate_cli, install_cli)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
