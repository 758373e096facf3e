"""The lens model of :mod:`pybokeh.lens` in torch ops, for depth maps on a GPU.

:func:`coc_map_torch` is :func:`pybokeh.lens.coc_map` step for step (same
validation, same float32/float64 arithmetic), on whatever device the depth
tensor lives: the CUDA path computes the CoC map next to the image and copies
nothing but a few scalars to the host (the depth range, the focus-pixel
median and whether any depth value is invalid).  It runs on CPU tensors too,
which is how the tests compare it with the NumPy version.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..lens import (_is_pixel, check_depth_kind, common_settings, disparity_coc, disparity_strength,
                    focus_inverse_depth, focus_window_radius, normalised_focus, thin_lens_coc)
from ..validate import finite

__all__ = ["coc_map_torch", "fill_invalid_torch", "resample_torch"]


def coc_map_torch(
    depth: Any,
    focus: float | Sequence[float],
    *,
    depth_kind: str = "disparity",
    max_blur: float | None = None,
    f_number: float | None = None,
    focal_length_mm: float = 50.0,
    sensor_width_mm: float = 36.0,
    focus_range: float = 0.0,
    image_shape: tuple[int, int] | None = None,
):
    """Signed CoC radius per pixel, as :func:`pybokeh.lens.coc_map`, in torch.

    Parameters
    ----------
    depth : torch.Tensor, shape (H', W')
        Disparity or metric depth (see :func:`pybokeh.lens.coc_map`), any real
        dtype, on any device; the result lives on the same device.
    focus, depth_kind, max_blur, f_number, focal_length_mm, sensor_width_mm, focus_range, image_shape
        As in :func:`pybokeh.lens.coc_map`.

    Returns
    -------
    torch.Tensor
        ``(H, W)`` float32, signed CoC radius in pixels.  Finiteness and the
        4096 px limit are checked by the caller (the CUDA kernel flags them).
    """
    import torch

    check_depth_kind(depth_kind, f_number, max_blur)
    raw = _as_depth_tensor(depth)
    (height, width), focus_range, cap = common_settings(raw.shape, image_shape, focus_range, max_blur)

    if depth_kind == "disparity":
        valid = torch.isfinite(raw) & (raw >= 0)
        values = fill_invalid_torch(raw, valid, "depth")
        values = resample_torch(values, (height, width), "depth")
        lo, hi = (float(v) for v in torch.aminmax(values))
        pixel_value = _focus_value(focus, values, (height, width)) if _is_pixel(focus) else None
        coc = disparity_coc(values, lo, hi, normalised_focus(focus, pixel_value, lo, hi), focus_range,
                            disparity_strength(cap, f_number, (height, width)), (height, width), torch.clamp)
    else:
        valid = (raw > 0) & ~torch.isnan(raw)
        q = torch.where(valid, 1.0 / torch.where(valid, raw, torch.ones_like(raw)), torch.zeros_like(raw))
        q = q.to(torch.float32)
        q = fill_invalid_torch(q, valid, "depth")
        q = resample_torch(q, (height, width), "depth")
        q_focus = _focus_value(focus, q, (height, width)) if _is_pixel(focus) else focus_inverse_depth(focus)
        coc = thin_lens_coc(q.to(torch.float64), q_focus, f_number, focal_length_mm, sensor_width_mm, focus_range,
                            width, cap, torch.clamp)
    return coc.to(torch.float32).contiguous()


def _as_depth_tensor(depth: Any):
    """Validate a depth tensor like :func:`pybokeh.inputs.as_depth`; float32 copy on its device."""
    import torch

    if not isinstance(depth, torch.Tensor):
        raise TypeError(f"depth must be a torch tensor here, got {type(depth).__name__}")
    if depth.dtype == torch.bool or depth.is_complex():
        raise TypeError(f"depth dtype must be integer or floating point, got {depth.dtype}")
    if depth.ndim != 2:
        hint = (" (squeeze the singleton axis)"
                if depth.ndim == 3 and 1 in (depth.shape[0], depth.shape[-1]) else "")
        raise ValueError(f"depth must have shape H×W, got {tuple(depth.shape)}{hint}")
    if depth.numel() == 0:
        raise ValueError(f"depth is empty (shape {tuple(depth.shape)})")
    return depth.detach().to(torch.float32).clone(memory_format=torch.contiguous_format)


def fill_invalid_torch(values, valid, name: str):
    """:func:`pybokeh.lens.fill_invalid` in torch (push–pull, float64 sums).

    One scalar comes to the host (whether anything is invalid); the pyramid
    then always runs to 1×1, which gives the NumPy version's result (it stops
    at the first level without holes, below which nothing changes).
    """
    import torch

    n_valid = int(valid.sum())
    if n_valid == valid.numel():
        return values.to(torch.float32)
    if n_valid == 0:
        raise ValueError(f"{name} has no valid values (all NaN, infinite or out of range)")
    v64 = torch.where(valid, values.to(torch.float64), torch.zeros((), dtype=torch.float64, device=values.device))
    return _push_pull(v64, valid.to(torch.float64)).to(torch.float32)


def _push_pull(values, weight):
    import torch
    import torch.nn.functional as F

    h, w = values.shape
    if h == 1 and w == 1:
        return values
    ph, pw = h % 2, w % 2
    vw = F.pad((values * weight)[None, None], (0, pw, 0, ph))[0, 0]
    ww = F.pad(weight[None, None], (0, pw, 0, ph))[0, 0]
    hh, wh = vw.shape[0] // 2, vw.shape[1] // 2
    vs = vw.reshape(hh, 2, wh, 2).sum(dim=(1, 3))
    ws = ww.reshape(hh, 2, wh, 2).sum(dim=(1, 3))
    coarse = torch.where(ws > 0, vs / torch.where(ws > 0, ws, torch.ones_like(ws)), torch.zeros_like(vs))
    coarse = _push_pull(coarse, (ws > 0).to(torch.float64))
    up = coarse.repeat_interleave(2, dim=0).repeat_interleave(2, dim=1)[:h, :w]
    return torch.where(weight > 0, values, up)


def resample_torch(values, shape: tuple[int, int], name: str):
    """:func:`pybokeh.lens.resample` in torch: bilinear, antialiased when shrinking (PIL's filter)."""
    import torch.nn.functional as F

    h, w = values.shape
    if (h, w) == tuple(shape):
        return values
    th, tw = shape
    if abs((w / h) / (tw / th) - 1.0) > 0.05:
        raise ValueError(f"{name} has aspect ratio {w}/{h} but the image is {tw}/{th}; "
                         f"resize or crop the depth map to the photo's framing first")
    out = F.interpolate(values[None, None], size=(th, tw), mode="bilinear", align_corners=False, antialias=True)
    return out[0, 0].contiguous()


def _focus_value(focus: Any, values, shape: tuple[int, int]) -> float:
    """Focus in the map's units: a number, or the median around a pixel (NumPy's median)."""
    import numpy as np
    import torch

    if not _is_pixel(focus):
        return finite(focus, "focus")
    pos = np.asarray(focus)
    if pos.shape != (2,) or pos.dtype == np.bool_ or pos.dtype.kind not in "uif":
        raise ValueError(f"focus must be a number or a pixel (x, y), got {focus!r}")
    x, y = float(pos[0]), float(pos[1])
    h, w = shape
    if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x < w and 0 <= y < h):
        raise ValueError(f"focus pixel {tuple(focus)} lies outside the {w}×{h} image (x in [0, {w}), y in [0, {h}))")
    xi, yi = int(x), int(y)
    r = focus_window_radius(shape)
    window = values[max(0, yi - r):yi + r + 1, max(0, xi - r):xi + r + 1].reshape(-1)
    ordered = torch.sort(window).values
    n = ordered.numel()
    if n % 2:
        return float(ordered[n // 2])
    return float((ordered[n // 2 - 1:n // 2 + 1].sum()) / 2)
