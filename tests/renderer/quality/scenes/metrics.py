"""Quality metrics: PSNR on uint8 sRGB images and the depth-edge band.

``psnr`` on uint8 sRGB images (peak 255, mean over pixels and the 3 channels).
``edge_band``: a pixel is a *depth-edge pixel* when one of its 4-neighbours belongs
to a different surface (by default: has a different depth); its *reach* is
``max(|r(z_p)|, |r(z_q)|) + 1`` px over those neighbours ``q``.  The band is every
pixel whose centre lies within the reach of some depth-edge pixel's centre
(Euclidean), i.e. within blur reach of the depth discontinuity (which lies half a
pixel from the edge pixel).
"""
from __future__ import annotations

import math

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of two uint8 images (peak 255), optionally over a boolean (H, W) mask."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    diff = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        diff = diff[mask]
        if diff.size == 0:
            return math.nan
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def _dilate_disk(mask: np.ndarray, radius: float) -> np.ndarray:
    """Pixels whose centre is within Euclidean ``radius`` of a True pixel's centre."""
    h, w = mask.shape
    n = int(math.floor(radius))
    # Horizontal dilation by every half-width via a running count (cumsum).
    cs = np.concatenate([np.zeros((h, 1), np.int64), np.cumsum(mask, axis=1)], axis=1)
    cols = np.arange(w)
    out = np.zeros_like(mask)
    for dy in range(-n, n + 1):
        half = int(math.floor(math.sqrt(max(radius * radius - dy * dy, 0.0)) + 1e-9))
        lo = np.clip(cols - half, 0, w)
        hi = np.clip(cols + half + 1, 0, w)
        row_hit = (cs[:, hi] - cs[:, lo]) > 0
        if dy >= 0:
            out[dy:] |= row_hit[: h - dy]
        else:
            out[:dy] |= row_hit[-dy:]
    return out


def edge_band(depth: np.ndarray, coc: np.ndarray, surfaces: np.ndarray | None = None) -> np.ndarray:
    """Boolean (H, W): pixels within blur reach of a depth discontinuity.

    A depth-edge pixel p has a 4-neighbour q with a different depth (or, when
    ``surfaces`` is given, on a different surface: a continuous slanted plane has a
    different depth at every pixel but no discontinuity); its reach is
    ``max(|coc[p]|, |coc[q]|) + 1`` (max over such q).  The band holds every pixel
    whose centre is within the reach of some edge pixel's centre.
    """
    labels = depth if surfaces is None else surfaces
    h, w = depth.shape
    a = np.abs(coc).astype(np.float64)
    reach = np.zeros((h, w))
    for axis in (0, 1):
        lo = [slice(None), slice(None)]
        hi = [slice(None), slice(None)]
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        edge = labels[lo] != labels[hi]
        pair = np.where(edge, np.maximum(a[lo], a[hi]) + 1.0, 0.0)
        reach[lo] = np.maximum(reach[lo], pair)
        reach[hi] = np.maximum(reach[hi], pair)
    reach = np.round(reach, 3)  # few distinct values: one per pair of layers
    if np.unique(reach).size > 64:
        # Continuous depth on a surface boundary: many distinct reaches; round them
        # up to 1/4 px (a band at most 1/4 px wider) to bound the dilations.
        reach = np.ceil(reach * 4.0) / 4.0
    band = np.zeros((h, w), dtype=bool)
    for rad in np.unique(reach[reach > 0]):
        band |= _dilate_disk(reach == rad, float(rad))
    return band


def evaluate(reference: np.ndarray, outputs: dict, band: np.ndarray) -> dict:
    """``{name: (psnr whole, psnr edge band)}`` of each uint8 output against the reference."""
    return {k: (psnr(v, reference), psnr(v, reference, band)) for k, v in outputs.items()}
