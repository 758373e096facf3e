"""The highlight gain map of :mod:`pybokeh.highlights` in torch ops, for images on a GPU.

:func:`highlight_gain_map_torch` is :func:`pybokeh.highlights.highlight_gain_map`
step for step (same window, same block sums through an integral image, same
float32/float64 arithmetic), on the image tensor's device: the CUDA path
computes the map next to the image and reads back one bool (whether anything
is clipped).  It runs on CPU tensors too, which is how the tests compare it
with the NumPy version.
"""
from __future__ import annotations

import math
from typing import Any

from ..highlights import _LUMA, WINDOW_FRACTION

__all__ = ["highlight_gain_map_torch"]


def highlight_gain_map_torch(image: Any, strength: float) -> Any | None:
    """Per-pixel highlight gain, or None when nothing is boosted.

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
    top = _top_value(image)
    # torch has no comparisons for uint16: compare in int32 (exact).
    codes = image.to(torch.int32) if image.dtype == torch.uint16 else image
    clipped = (codes >= top).any(dim=2)
    if not bool(clipped.any()):
        return None
    h, w = clipped.shape
    radius = max(2, int(round(WINDOW_FRACTION * math.hypot(h, w))))
    surround = _surround_luminance(image, clipped, radius, top)
    s = surround.clamp(0.0, 1.0)
    boost = torch.tensor(strength, dtype=torch.float32, device=image.device) * (1.0 - s) ** 2
    return torch.where(clipped, boost, torch.zeros((), dtype=torch.float32, device=image.device))


def _top_value(image) -> float:
    """Top of the range of the image dtype: a channel there is clipped."""
    import torch

    if image.dtype == torch.uint8:
        return 255
    if image.dtype == torch.uint16:
        return 65535
    if image.dtype == torch.float32:
        return 1.0
    raise TypeError(f"image dtype must be uint8, uint16 or float32, got {image.dtype}")


def _srgb_to_linear(v):
    """:func:`pybokeh.color.srgb_to_linear` on a float32 tensor."""
    import torch

    return torch.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _surround_luminance(image, clipped, radius: int, top):
    """Mean linear luminance of the unclipped pixels in a (2·radius+1)² window (see pybokeh.highlights)."""
    import torch

    h, w = clipped.shape
    b = max(1, radius // 4)
    hb, wb = -(-h // b), -(-w // b)
    unit = image.to(torch.float32)
    if not image.dtype.is_floating_point:
        unit = unit / float(top)
    valid = ~clipped
    luma = torch.as_tensor(_LUMA, device=image.device)
    lum = torch.where(valid, _srgb_to_linear(unit) @ luma, 0.0).to(torch.float64)
    lum_blocks = _block_sums(lum, b, hb, wb)
    cnt_blocks = _block_sums(valid.to(torch.float64), b, hb, wb)
    k = max(1, int(round(radius / b)))
    lum_box = _box_sum(lum_blocks, k)
    cnt_box = _box_sum(cnt_blocks, k)
    mean = torch.where(cnt_box > 0, lum_box / torch.clamp(cnt_box, min=1e-12), 1.0)
    full = mean.repeat_interleave(b, dim=0).repeat_interleave(b, dim=1)
    return full[:h, :w].to(torch.float32)


def _block_sums(a, b: int, hb: int, wb: int):
    """Sums over b×b blocks (the array zero-padded to hb·b × wb·b)."""
    import torch

    padded = torch.nn.functional.pad(a, (0, wb * b - a.shape[1], 0, hb * b - a.shape[0]))
    return padded.reshape(hb, b, wb, b).sum(dim=(1, 3))


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
