"""Argument definitions and entry points for ``pybokeh train`` and ``pybokeh eval-depth``.

This module must import without PyTorch: only the ``run_*`` functions import it.
"""
from __future__ import annotations

import argparse


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``pybokeh train`` options to ``parser``."""


def run_train(args: argparse.Namespace) -> int:
    raise NotImplementedError("pybokeh train is not implemented yet")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``pybokeh eval-depth`` options to ``parser``."""


def run_eval(args: argparse.Namespace) -> int:
    raise NotImplementedError("pybokeh eval-depth is not implemented yet")
