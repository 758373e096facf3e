"""Checks of scalar arguments, shared by the whole package.

Each function returns the validated value (as a Python ``float`` or ``int``)
or raises ``TypeError`` (wrong type) / ``ValueError`` (bad value) naming the
argument, the way scikit-image's validators do.
"""
from __future__ import annotations

import math
import numbers
from typing import Any


def real_number(value: Any, name: str) -> float:
    """``value`` as a float: a real number (Python or NumPy), not bool, not NaN (±inf passes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return value


def finite(value: Any, name: str) -> float:
    """A finite real number."""
    value = real_number(value, name)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def positive(value: Any, name: str) -> float:
    """A finite real number > 0."""
    value = real_number(value, name)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def nonnegative(value: Any, name: str) -> float:
    """A finite real number >= 0."""
    value = real_number(value, name)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return value


def in_range(value: Any, name: str, lo: float, hi: float, why: str = "") -> float:
    """A real number in the closed interval [lo, hi]; ``why`` explains the bound in the message."""
    value = real_number(value, name)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}], got {value!r}" + (f" ({why})" if why else ""))
    return value


def integer(value: Any, name: str, lo: int, hi: int) -> int:
    """An integer (Python or NumPy, not bool) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def text(value: Any, name: str) -> str:
    """A string (a name from a fixed set, checked by the caller)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return value


def shape2d(value: Any, name: str) -> tuple[int, int]:
    """A size ``(H, W)`` of two positive integers (any integer-valued sequence of two)."""
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be (H, W), got {value!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return h, w
