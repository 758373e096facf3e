"""Two baseline renderers, both in linear light from the 8-bit photo and the per-pixel CoC.

* ``gaussian_stack``: the whole image blurred with Gaussians of sigma = rho / 2 at
  the radius ladder rho = 0, 1, 2, ... px; each pixel interpolates linearly between
  the two levels bracketing its ``|r|``.
* ``disk_scatter``: every pixel spreads its colour uniformly over an antialiased
  disk of its own radius (weights sum to 1), with no occlusion ordering; output =
  accumulated colour / accumulated weight.  This is the "plain energy-conserving
  disk scatter" the renderer must beat on every scene.
"""
from __future__ import annotations

import math

import numpy as np

from .color import linear_to_srgb8, srgb8_to_linear


def _fft_filter(planes: np.ndarray, transfer_fn, pad: int) -> np.ndarray:
    """Linear (zero-padded) convolution of (H, W, C) planes with a kernel given by its
    transfer function ``transfer_fn(shape) -> rfft2 array``."""
    h, w = planes.shape[:2]
    shape = (h + 2 * pad, w + 2 * pad)
    spec = np.fft.rfft2(planes, s=shape, axes=(0, 1))
    out = np.fft.irfft2(spec * transfer_fn(shape)[..., None], s=shape, axes=(0, 1))
    # The kernel is centred on index 0 (wrapped), so the frame sits at the origin.
    return out[:h, :w]


def _gaussian_transfer(sigma: float):
    def fn(shape):
        fy = np.fft.fftfreq(shape[0])[:, None]
        fx = np.fft.rfftfreq(shape[1])[None, :]
        return np.exp(-2.0 * (math.pi * sigma) ** 2 * (fx * fx + fy * fy))

    return fn


def _kernel_transfer(kernel: np.ndarray):
    """Transfer function of a small centred (2n+1)^2 kernel, wrapped to index 0."""
    n = kernel.shape[0] // 2

    def fn(shape):
        full = np.zeros(shape, dtype=np.float64)
        full[: 2 * n + 1, : 2 * n + 1] = kernel
        full = np.roll(full, (-n, -n), axis=(0, 1))
        return np.fft.rfft2(full)

    return fn


def _check_photo_coc(photo: np.ndarray, coc: np.ndarray) -> None:
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError("photo must be uint8 (H, W, 3)")
    if coc.shape != photo.shape[:2]:
        raise ValueError("coc must be (H, W) like the photo")


def gaussian_stack(photo: np.ndarray, coc: np.ndarray, radius_step: float = 1.0) -> np.ndarray:
    """Baseline (a): per-pixel Gaussian blur stack, no occlusion handling.

    Parameters
    ----------
    photo : uint8 (H, W, 3) sRGB
    coc : float (H, W), signed CoC radius in px (only |coc| is used)
    radius_step : float
        Spacing of the radius ladder; level k blurs with sigma = k * radius_step / 2.

    Returns
    -------
    uint8 (H, W, 3) sRGB
    """
    _check_photo_coc(photo, coc)
    lin = srgb8_to_linear(photo).astype(np.float64)
    planes = np.concatenate([lin, np.ones(lin.shape[:2] + (1,))], axis=2)
    a = np.abs(coc).astype(np.float64) / radius_step
    out = np.zeros_like(lin)
    for k in range(int(math.ceil(a.max())) + 1):
        weight = np.clip(1.0 - np.abs(a - k), 0.0, None)  # hat: linear between levels
        if not weight.any():
            continue
        sigma = 0.5 * k * radius_step
        if sigma == 0.0:
            level = lin
        else:
            blurred = _fft_filter(planes, _gaussian_transfer(sigma), int(math.ceil(4 * sigma)) + 1)
            level = blurred[..., :3] / blurred[..., 3:4]  # normalised at the frame border
        out += weight[..., None] * level
    return linear_to_srgb8(out)


def _disk_kernel(radius: float) -> np.ndarray:
    """Antialiased disk: weight clip(radius + 0.5 - |o|, 0, 1) at integer offsets, sum 1."""
    n = int(math.ceil(radius + 0.5))
    y, x = np.mgrid[-n : n + 1, -n : n + 1]
    k = np.clip(radius + 0.5 - np.hypot(x, y), 0.0, 1.0)
    return k / k.sum()


def disk_scatter(photo: np.ndarray, coc: np.ndarray, max_levels: int = 48) -> np.ndarray:
    """Baseline (b): energy-conserving disk scatter without occlusion ordering.

    Every pixel spreads its linear colour over an antialiased disk of radius |coc|
    (weights summing to 1); output = accumulated colour / accumulated weight.  Pixels
    sharing a radius are scattered together by one FFT convolution; when the map has
    more than ``max_levels`` distinct radii, each pixel's weight is split linearly
    between the two nearest levels of a 0.5 px ladder.

    Parameters
    ----------
    photo : uint8 (H, W, 3) sRGB
    coc : float (H, W), signed CoC radius in px (only |coc| is used)

    Returns
    -------
    uint8 (H, W, 3) sRGB
    """
    _check_photo_coc(photo, coc)
    lin = srgb8_to_linear(photo).astype(np.float64)
    a = np.round(np.abs(coc).astype(np.float64) * 64.0) / 64.0
    levels = np.unique(a)
    if len(levels) <= max_levels:
        masks = [(rho, (a == rho).astype(np.float64)) for rho in levels]
    else:
        ladder = np.arange(0.0, a.max() + 0.5, 0.5)
        masks = [(rho, np.clip(1.0 - np.abs(a - rho) / 0.5, 0.0, None)) for rho in ladder]
    num = np.zeros(lin.shape[:2] + (4,))
    pad = int(math.ceil(a.max())) + 2
    for rho, m in masks:
        if not m.any():
            continue
        planes = np.concatenate([lin * m[..., None], m[..., None]], axis=2)
        kernel = _disk_kernel(rho)
        if kernel.shape[0] == 1:
            num += planes
        else:
            num += _fft_filter(planes, _kernel_transfer(kernel), pad)
    return linear_to_srgb8(num[..., :3] / np.maximum(num[..., 3:4], 1e-12))
