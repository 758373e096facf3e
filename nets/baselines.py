"""Trivial depth predictions every model must beat (scored like any other prediction).

``constant``
    The same depth everywhere.  After median scaling every pixel is the image's median
    ground-truth depth; after disparity scale-and-shift alignment, its mean inverse depth.
``lower-nearer``
    A prior that only knows "lower in the frame is nearer": depth ``2 - y`` with ``y`` the
    row's centre as a fraction of the height (0 at the top, 1 at the bottom), the same for
    every column and every photo — a ground plane seen by a level camera, roughly.
"""
from __future__ import annotations

import numpy as np

__all__ = ["BASELINES", "constant_depth", "lower_nearer_depth"]


def constant_depth(rgb: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 ones for an ``(H, W, 3)`` photo."""
    return np.ones(np.shape(rgb)[:2], np.float32)


def lower_nearer_depth(rgb: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 depth ``2 - (row + 0.5) / H``: 2 at the top, 1 at the bottom."""
    h, w = np.shape(rgb)[:2]
    y = (np.arange(h, dtype=np.float32) + 0.5) / h
    return np.repeat((2.0 - y)[:, None], w, axis=1)


BASELINES = {"constant": constant_depth, "lower-nearer": lower_nearer_depth}
