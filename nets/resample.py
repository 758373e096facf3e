"""Resampling that keeps depth honest.

Depth is resampled with nearest-neighbour (pixel-centre aligned): every output value is
an input sample, so edges never get "flying pixels" between foreground and background
(what bilinear or bicubic interpolation would invent) and holes (0) stay holes instead
of dragging neighbours towards zero.  Colour images use PIL's antialiased filters.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["nearest_indices", "resize_depth_nearest", "crop_resize_depth", "resize_rgb", "crop_resize_rgb"]


def nearest_indices(start: float, length: float, out: int, limit: int) -> np.ndarray:
    """Source indices of ``out`` output pixels covering ``[start, start + length)``.

    Output pixel ``i`` takes the source pixel under its centre,
    ``floor(start + (i + 0.5) · length / out)``, clipped to ``[0, limit)``.
    """
    centres = start + (np.arange(out, dtype=np.float64) + 0.5) * (length / out)
    return np.clip(np.floor(centres).astype(np.int64), 0, limit - 1)


def crop_resize_depth(depth: np.ndarray, box: tuple[float, float, float, float], out_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour crop of ``box = (top, left, height, width)`` resized to ``out_hw``.

    ``depth`` is ``(H, W)`` of any dtype; the result has the same dtype and only values
    that occur in ``depth``.
    """
    top, left, h, w = box
    rows = nearest_indices(top, h, out_hw[0], depth.shape[0])
    cols = nearest_indices(left, w, out_hw[1], depth.shape[1])
    return depth[rows[:, None], cols[None, :]]


def resize_depth_nearest(depth: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Whole-image nearest-neighbour resize of an ``(H, W)`` depth map to ``out_hw``."""
    return crop_resize_depth(depth, (0.0, 0.0, float(depth.shape[0]), float(depth.shape[1])), out_hw)


def crop_resize_rgb(rgb: np.ndarray, box: tuple[float, float, float, float], out_hw: tuple[int, int],
                    resample: int = Image.Resampling.BILINEAR) -> np.ndarray:
    """Antialiased crop-and-resize of an ``(H, W, 3)`` uint8 image (same box convention)."""
    top, left, h, w = box
    img = Image.fromarray(rgb)
    out = img.resize((out_hw[1], out_hw[0]), resample=resample, box=(left, top, left + w, top + h))
    return np.asarray(out)


def resize_rgb(rgb: np.ndarray, out_hw: tuple[int, int], resample: int = Image.Resampling.LANCZOS) -> np.ndarray:
    """Antialiased whole-image resize of an ``(H, W, 3)`` uint8 image to ``out_hw``."""
    return crop_resize_rgb(rgb, (0.0, 0.0, float(rgb.shape[0]), float(rgb.shape[1])), out_hw, resample)
