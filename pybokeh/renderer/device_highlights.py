"""The highlight gain map of :mod:`pybokeh.highlights` in torch ops, for images on a GPU.

:func:`highlight_gain_map_torch` is :func:`pybokeh.highlights.highlight_gain_map`
step for step (same sampling grid, same window sums through an integral
image, same float32/float64 arithmetic, the same sRGB tables for integer
images), on the image tensor's device: the CUDA path computes the map next to
the image and synchronises once (to find the clipped pixels).  It runs on CPU
tensors too, which is how the tests compare it with the NumPy version.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from ..color import srgb_to_linear
from ..highlights import _LUMA, WINDOW_FRACTION, sample_rows

__all__ = ["highlight_gain_map_torch"]


def highlight_gain_map_torch(image: Any, strength: float) -> Any | None:
    """Per-pixel gain for clipped pixels, or None when nothing is boosted.

    Parameters
    ----------
    image : torch.Tensor
        H×W×3 sRGB, uint8, uint16 or float32 in [0, 1] (the kernel dtypes), on
        any device.
    strength : float
        ``highlight_boost`` (≥ 0): the gain of a clipped pixel in black
        surroundings.

    Returns
    -------
    torch.Tensor or None
        H×W float32 on the image's device, zero except at clipped pixels.
    """
    import torch

    if not strength > 0:
        return None
    codes, top = _codes(image)
    ys, xs = torch.nonzero(_clipped(codes, top), as_tuple=True)
    if ys.numel() == 0:
        return None
    h, w = codes.shape[:2]
    radius = max(2, int(round(WINDOW_FRACTION * math.hypot(h, w))))
    step, mean = _surround_luminance(codes, top, radius)
    s = torch.clamp(mean[ys // step, xs // step], 0.0, 1.0)
    gain = torch.zeros((h, w), dtype=torch.float32, device=image.device)
    # NumPy: float32(strength) times a float64 array, stored as float32.
    gain[ys, xs] = (float(np.float32(strength)) * (1.0 - s) ** 2).to(torch.float32)
    return gain


def _codes(image):
    """(image in a dtype torch compares and indexes with, top of the range): uint16 becomes int32."""
    import torch

    if image.dtype == torch.uint8:
        return image, 255
    if image.dtype == torch.uint16:  # few torch ops support uint16: widen (exact)
        return image.to(torch.int32), 65535
    if image.dtype == torch.float32:
        return image, 1.0
    raise TypeError(f"image dtype must be uint8, uint16 or float32, got {image.dtype}")


def _clipped(codes, top):
    """H×W bool: pixels with at least one channel at the top of the range (pybokeh.highlights.clipped_mask)."""
    import torch

    return torch.maximum(torch.maximum(codes[..., 0], codes[..., 1]), codes[..., 2]) >= top


@functools.lru_cache(maxsize=8)
def _linear_table(top: int, device: str):
    """sRGB code value -> linear light, the NumPy table of pybokeh.highlights (bit-identical)."""
    import torch

    table = srgb_to_linear(np.arange(top + 1, dtype=np.float32) / np.float32(top))
    return torch.from_numpy(table).to(device)


def _srgb_to_linear(v):
    """:func:`pybokeh.color.srgb_to_linear` on a float32 tensor."""
    import torch

    return torch.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _surround_luminance(codes, top, radius: int):
    """``(step, mean)``: mean linear luminance of the unclipped samples near each block (see pybokeh.highlights)."""
    import torch

    step = max(1, radius // 4)
    rows = torch.as_tensor(sample_rows(codes.shape[0], step), device=codes.device)
    cols = torch.as_tensor(sample_rows(codes.shape[1], step), device=codes.device)
    sub = codes.index_select(0, rows).index_select(1, cols)
    valid = ~_clipped(sub, top)
    lum = torch.zeros(valid.shape, dtype=torch.float32, device=codes.device)
    if isinstance(top, int):  # integer image: the exact table
        table = _linear_table(top, str(codes.device))
        for c in range(3):
            lum = lum + float(_LUMA[c]) * table[sub[..., c].long()]
    else:
        for c in range(3):
            lum = lum + float(_LUMA[c]) * _srgb_to_linear(sub[..., c])
    lum = torch.where(valid, lum, 0.0)
    k = max(1, int(round(radius / step)))
    lum_box = _box_sum(lum.to(torch.float64), k)
    cnt_box = _box_sum(valid.to(torch.float64), k)
    return step, torch.where(cnt_box > 0, lum_box / torch.clamp(cnt_box, min=1e-12), 1.0)


def _box_sum(a, k: int):
    """Sum over a (2k+1)² window (clipped at the borders) through an integral image."""
    import torch

    h, w = a.shape
    s = torch.zeros((h + 1, w + 1), dtype=a.dtype, device=a.device)
    s[1:, 1:] = a.cumsum(dim=0).cumsum(dim=1)
    y = torch.arange(h, device=a.device)
    x = torch.arange(w, device=a.device)
    y0, y1 = (y - k).clamp(0, h), (y + k + 1).clamp(0, h)
    x0, x1 = (x - k).clamp(0, w), (x + k + 1).clamp(0, w)
    return s[y1][:, x1] - s[y0][:, x1] - s[y1][:, x0] + s[y0][:, x0]
