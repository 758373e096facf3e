"""Argument types for the command lines (``pybokeh``, ``pybokeh serve``): one parser of bounded numbers.

argparse turns an :class:`argparse.ArgumentTypeError` into a one-line usage error naming the option.
"""
from __future__ import annotations

import argparse
from typing import Callable


def bounded(kind: Callable[[str], float], lo: float, hi: float | None, expected: str, *, lo_open: bool = False,
            unit: str = "") -> Callable[[str], float]:
    """An argparse ``type``: ``kind(text)`` (``int`` or ``float``) within ``[lo, hi]``.

    ``lo_open`` excludes ``lo``; ``hi=None`` leaves the top open.  Bad text says ``expected
    <expected>``; a value outside names the range (with ``unit``).
    """
    if hi is None:
        allowed = f"{'>' if lo_open else '>='} {_number(lo)}"
    else:
        allowed = f"({_number(lo)}, {_number(hi)}]" if lo_open else f"{_number(lo)}..{_number(hi)}"

    def parse(text: str):
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        inside = (value > lo if lo_open else value >= lo) and (hi is None or value <= hi)  # False for NaN
        if not inside:
            raise argparse.ArgumentTypeError(f"must be {allowed}{unit}, got {text!r}")
        return value

    return parse


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def pixel_count(text: str) -> int:
    """A pixel count such as ``200e6`` (scientific notation allowed), at least 1."""
    try:
        value = int(float(text))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected a pixel count (e.g. 200e6), got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value
