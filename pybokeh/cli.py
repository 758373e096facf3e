"""The ``pybokeh`` command line: ``render``, ``depth``, ``demo``, ``train``, ``eval-depth``."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pybokeh", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    # Training and evaluation live with the networks; their argument definitions
    # import no torch, so `pybokeh --help` stays fast and torch-free.
    from pybokeh.nets import cli as nets_cli

    nets_cli.add_train_arguments(sub.add_parser("train", help="train the Pix2Pix depth model"))
    nets_cli.add_eval_arguments(sub.add_parser("eval-depth", help="depth metrics on an eval split"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        from pybokeh.nets import cli as nets_cli

        return nets_cli.run_train(args)
    if args.command == "eval-depth":
        from pybokeh.nets import cli as nets_cli

        return nets_cli.run_eval(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
