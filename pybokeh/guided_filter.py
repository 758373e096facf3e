"""Edge-aware upsampling of depth maps: the guided filter and its fast variant.

The guided filter (He, Sun and Tang, "Guided Image Filtering", TPAMI 2013) models the
output as a local linear function of a guide image ``I`` (here the photo's luma)::

    q = mean_a · I + mean_b,   a = cov_w(I, p) / (var_w(I) + eps),   b = mean_w(p) − a · mean_w(I)

over square windows ``w`` of radius ``r`` (``mean_a``, ``mean_b`` are the window means
of ``a``, ``b``).  Where the source map ``p`` (a blurry, low-resolution disparity) steps
across an edge of the photo, ``a`` carries the step onto the photo's own edge, so depth
edges snap to photo edges; where the photo is flat, ``q`` is the smoothed ``p``.

The *fast* guided filter (He and Sun, arXiv:1505.00996) computes ``mean_a``, ``mean_b``
on a low-resolution grid and upsamples only those two smooth maps bilinearly before
``q = A · I + B`` at full resolution.  Here that last step is one fused pass
(:func:`apply_coefficients`: bilinear taps computed on the fly, one read of the guide,
one write of the output), which is what makes 12 MP take well under 0.1 s.

Conventions: windows are clipped at the image border (means over the pixels inside the
image), as in the reference MATLAB code; bilinear upsampling uses pixel centres
(``torch.nn.functional.interpolate(..., align_corners=False)``: output pixel ``y`` reads
the grid at ``(y + 0.5) · h / H − 0.5``, clamped at the edges).  Statistics are float64,
the full-resolution pass float32.

CPU kernels are Numba (running-sum box filter, fused apply);
:func:`apply_coefficients_torch` is the same last step for tensors on a GPU.
:func:`guided_filter_reference`, :func:`bilinear_resize_reference` and
:func:`guided_upsample_reference` are plain NumPy transcriptions of the formulas
(explicit windows, explicit bilinear weights) that the tests compare the kernels to.
"""
from __future__ import annotations

import numba
import numpy as np

from .validate import integer, positive

__all__ = ["box_mean", "guided_filter_coefficients", "guided_filter", "apply_coefficients",
           "apply_coefficients_torch", "guided_upsample", "guided_filter_reference",
           "guided_upsample_reference", "bilinear_resize_reference"]


def _jit(parallel: bool = False):
    """``numba.njit`` with on-disk caching where a cache directory is writable."""
    def wrap(f):
        try:
            return numba.njit(cache=True, parallel=parallel, error_model="numpy")(f)
        except RuntimeError:  # no writable cache locator: compile per process
            return numba.njit(cache=False, parallel=parallel, error_model="numpy")(f)
    return wrap


def _check_radius_eps(radius: int, eps: float) -> None:
    integer(radius, "radius", 0, 1 << 30)
    positive(eps, "eps")


def _as_map(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty (H, W) array, got shape {arr.shape}")
    if arr.dtype.kind not in "uif" or arr.dtype == np.bool_:
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    return arr


# --------------------------------------------------------------------------- Numba kernels

@_jit()
def _box_mean_kernel(x, r):  # pragma: no cover - compiled
    h, w = x.shape
    rows = np.empty((h, w), np.float64)
    for i in range(h):  # running sum along each row over [j - r, j + r] ∩ [0, w)
        s = 0.0
        for k in range(min(r, w - 1) + 1):
            s += x[i, k]
        for j in range(w):
            rows[i, j] = s / (min(j + r, w - 1) - max(j - r, 0) + 1)
            if j + r + 1 < w:
                s += x[i, j + r + 1]
            if j - r >= 0:
                s -= x[i, j - r]
    out = np.empty((h, w), np.float64)
    acc = np.zeros(w, np.float64)  # running column sums, rows [i - r, i + r] ∩ [0, h)
    for k in range(min(r, h - 1) + 1):
        acc += rows[k]
    for i in range(h):
        n = min(i + r, h - 1) - max(i - r, 0) + 1
        for j in range(w):
            out[i, j] = acc[j] / n
        if i + r + 1 < h:
            acc += rows[i + r + 1]
        if i - r >= 0:
            acc -= rows[i - r]
    return out


# Serial on purpose: Numba's OpenMP pool and PyTorch's (the network runs just before)
# spin-wait against each other on a loaded machine, which made the next network call
# 10x slower; one thread does 12 MP in ~70 ms, the whole job is memory-bound anyway.
@_jit()
def _apply_kernel(guide, mean_a, mean_b, scale, lo, hi, out):  # pragma: no cover - compiled
    big_h, big_w = guide.shape
    h, w = mean_a.shape
    sy = h / big_h
    sx = w / big_w
    x0 = np.empty(big_w, np.int64)
    fx = np.empty(big_w, np.float32)
    for x in range(big_w):
        p = max((x + 0.5) * sx - 0.5, 0.0)
        i = min(int(p), w - 1)
        x0[x] = i
        fx[x] = p - i
    for y in range(big_h):
        p = max((y + 0.5) * sy - 0.5, 0.0)
        r0 = min(int(p), h - 1)
        r1 = min(r0 + 1, h - 1)
        fy = p - r0
        # This output row's coefficients along the grid columns (one extra for the x + 1 tap);
        # the guide's scale is folded into a.
        a_row = np.empty(w + 1, np.float32)
        b_row = np.empty(w + 1, np.float32)
        for i in range(w):
            a_row[i] = (mean_a[r0, i] + fy * (mean_a[r1, i] - mean_a[r0, i])) * scale
            b_row[i] = mean_b[r0, i] + fy * (mean_b[r1, i] - mean_b[r0, i])
        a_row[w] = a_row[w - 1]
        b_row[w] = b_row[w - 1]
        for x in range(big_w):
            i = x0[x]
            f = fx[x]
            a = a_row[i] + f * (a_row[i + 1] - a_row[i])
            b = b_row[i] + f * (b_row[i + 1] - b_row[i])
            out[y, x] = min(max(a * np.float32(guide[y, x]) + b, lo), hi)


# --------------------------------------------------------------------------- public API

def box_mean(x, radius: int) -> np.ndarray:
    """Mean over the ``(2·radius + 1)²`` window around each pixel, clipped at the border.

    Parameters
    ----------
    x : array_like
        ``(H, W)`` real values.
    radius : int
        Window radius in pixels (0 returns ``x``).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64.  Running sums: O(1) per pixel for any radius.
    """
    _check_radius_eps(radius, 1.0)
    return _box_mean_kernel(np.ascontiguousarray(_as_map(x, "x"), np.float64), int(radius))


def guided_filter_coefficients(guide, src, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Window-averaged linear coefficients ``(mean_a, mean_b)`` of the guided filter.

    Parameters
    ----------
    guide, src : array_like
        ``(H, W)`` guide (e.g. luma in [0, 1]) and source map (e.g. disparity).
    radius : int
        Window radius in pixels.
    eps : float
        Regularisation, in squared guide units: edges whose local guide variance is well
        above ``eps`` are kept, weaker texture is smoothed over.

    Returns
    -------
    mean_a, mean_b : numpy.ndarray
        ``(H, W)`` float64; the filter output is ``mean_a · guide + mean_b``.
    """
    _check_radius_eps(radius, eps)
    g = np.asarray(_as_map(guide, "guide"), np.float64)
    p = np.asarray(_as_map(src, "src"), np.float64)
    if g.shape != p.shape:
        raise ValueError(f"guide and src must have one shape, got {g.shape} and {p.shape}")
    mean_i, mean_p = box_mean(g, radius), box_mean(p, radius)
    var_i = np.maximum(box_mean(g * g, radius) - mean_i * mean_i, 0.0)
    a = (box_mean(g * p, radius) - mean_i * mean_p) / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius), box_mean(b, radius)


def guided_filter(guide, src, radius: int, eps: float) -> np.ndarray:
    """Guided filter of ``src`` by ``guide`` at one resolution; ``(H, W)`` float32."""
    mean_a, mean_b = guided_filter_coefficients(guide, src, radius, eps)
    return (mean_a * np.asarray(guide, np.float64) + mean_b).astype(np.float32)


def _clip_bounds(clip) -> tuple[float, float]:
    if clip is None:
        return -np.inf, np.inf
    lo, hi = (float(v) for v in clip)
    if not lo <= hi:
        raise ValueError(f"clip must be (lo, hi) with lo <= hi, got {clip!r}")
    return lo, hi


def apply_coefficients(guide, mean_a, mean_b, *, guide_scale: float = 1.0,
                       clip: tuple[float, float] | None = None) -> np.ndarray:
    """``bilinear(mean_a) · guide · guide_scale + bilinear(mean_b)`` at the guide's resolution.

    Parameters
    ----------
    guide : numpy.ndarray
        ``(H, W)`` full-resolution guide, uint8, uint16 or float32.
    mean_a, mean_b : array_like
        ``(h, w)`` coefficients on a grid covering the same field of view (pixel centres
        as described in the module docstring).
    guide_scale : float
        Factor from ``guide`` values to the units the coefficients were fitted in
        (``1/255`` for uint8 luma fitted as [0, 1]).
    clip : (lo, hi), optional
        Clamp the output to this range.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32.  One fused parallel pass (Numba, one thread).
    """
    g = _as_map(guide, "guide")
    if g.dtype not in (np.uint8, np.uint16, np.float32):
        g = g.astype(np.float32)
    a = np.ascontiguousarray(_as_map(mean_a, "mean_a"), np.float32)
    b = np.ascontiguousarray(_as_map(mean_b, "mean_b"), np.float32)
    if a.shape != b.shape:
        raise ValueError(f"mean_a and mean_b must have one shape, got {a.shape} and {b.shape}")
    lo, hi = _clip_bounds(clip)
    out = np.empty(g.shape, np.float32)
    _apply_kernel(np.ascontiguousarray(g), a, b, np.float32(guide_scale), np.float32(lo), np.float32(hi), out)
    return out


def apply_coefficients_torch(guide, mean_a, mean_b, *, guide_scale: float = 1.0,
                             clip: tuple[float, float] | None = None):
    """:func:`apply_coefficients` for a ``torch.Tensor`` guide on any device (e.g. CUDA).

    Returns a float32 tensor on the guide's device.
    """
    import torch
    import torch.nn.functional as F

    coef = torch.from_numpy(np.stack([np.asarray(mean_a, np.float32) * np.float32(guide_scale),
                                      np.asarray(mean_b, np.float32)]))[None].to(guide.device)
    coef = F.interpolate(coef, size=tuple(guide.shape), mode="bilinear", align_corners=False)[0]
    out = guide.to(torch.float32)
    out.mul_(coef[0]).add_(coef[1])
    if clip is not None:
        out.clamp_(*_clip_bounds(clip))
    return out


def guided_upsample(guide, guide_low, src_low, radius: int, eps: float, *, guide_scale: float = 1.0,
                    clip: tuple[float, float] | None = None) -> np.ndarray:
    """Fast guided filter: coefficients at low resolution, applied at full resolution.

    Parameters
    ----------
    guide : numpy.ndarray
        ``(H, W)`` full-resolution guide (e.g. uint8 luma); its values times
        ``guide_scale`` are in the units of ``guide_low``.
    guide_low, src_low : array_like
        ``(h, w)`` the guide area-averaged to the grid, and the source map on that grid.
    radius : int
        Window radius in grid pixels.
    eps : float
        Regularisation in squared ``guide_low`` units (see :func:`guided_filter_coefficients`).
    guide_scale : float
        Factor from ``guide`` values to ``guide_low`` units (``1/255`` for uint8 luma).
    clip : (lo, hi), optional
        Clamp the output to this range.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32.
    """
    mean_a, mean_b = guided_filter_coefficients(guide_low, src_low, radius, eps)
    return apply_coefficients(guide, mean_a, mean_b, guide_scale=guide_scale, clip=clip)


# --------------------------------------------------------------------------- NumPy references

def window_mean_reference(x: np.ndarray, radius: int) -> np.ndarray:
    """Clipped-window means by explicit slicing (float64); slow, for tests."""
    x = np.asarray(x, np.float64)
    h, w = x.shape
    out = np.empty((h, w), np.float64)
    for y in range(h):
        for x_ in range(w):
            out[y, x_] = x[max(0, y - radius): y + radius + 1, max(0, x_ - radius): x_ + radius + 1].mean()
    return out


def guided_filter_reference(guide: np.ndarray, src: np.ndarray, radius: int, eps: float,
                            *, coefficients: bool = False):
    """Plain NumPy guided filter (explicit clipped windows, float64); slow, for tests.

    Returns ``q`` ``(H, W)`` float64, or ``(mean_a, mean_b)`` with ``coefficients=True``.
    """
    _check_radius_eps(radius, eps)
    g = np.asarray(guide, np.float64)
    p = np.asarray(src, np.float64)
    mean_i = window_mean_reference(g, radius)
    mean_p = window_mean_reference(p, radius)
    cov_ip = window_mean_reference(g * p, radius) - mean_i * mean_p
    var_i = window_mean_reference(g * g, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a = window_mean_reference(a, radius)
    mean_b = window_mean_reference(b, radius)
    if coefficients:
        return mean_a, mean_b
    return mean_a * g + mean_b


def bilinear_resize_reference(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize with half-pixel centres and edge clamping (as
    ``torch.nn.functional.interpolate(..., align_corners=False)`` when upsampling); float64."""
    h, w = x.shape
    out_h, out_w = size

    def taps(n_in: int, n_out: int):
        pos = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        i0 = np.minimum(np.floor(pos).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, pos - i0

    y0, y1, wy = taps(h, out_h)
    x0, x1, wx = taps(w, out_w)
    x = np.asarray(x, np.float64)
    top = x[y0][:, x0] * (1 - wx) + x[y0][:, x1] * wx
    bottom = x[y1][:, x0] * (1 - wx) + x[y1][:, x1] * wx
    return top * (1 - wy)[:, None] + bottom * wy[:, None]


def guided_upsample_reference(guide: np.ndarray, guide_low: np.ndarray, src_low: np.ndarray, radius: int, eps: float,
                              *, guide_scale: float = 1.0) -> np.ndarray:
    """Plain NumPy fast guided filter (reference of :func:`guided_upsample`); float64."""
    mean_a, mean_b = guided_filter_reference(guide_low, src_low, radius, eps, coefficients=True)
    size = np.shape(guide)
    a = bilinear_resize_reference(mean_a, size)
    b = bilinear_resize_reference(mean_b, size)
    return a * (np.asarray(guide, np.float64) * guide_scale) + b
