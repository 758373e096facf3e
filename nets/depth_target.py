"""The network's depth target: per-image scale-normalised inverse depth in [-1, 1].

Convention (stored in every saved generator's metadata as :data:`TARGET_CONVENTION`):

``disparity = clip((1 / depth) / q99(1 / depth over valid pixels), 0, 1)`` and
``target = 2 · disparity − 1``, so ``+1`` is the nearest surface (its 99th-percentile
inverse depth; the nearest 1 % saturate) and values fall towards ``−1`` with distance
(brighter = nearer, as everywhere in pybokeh).  The normalisation is computed on the
crop the network sees, so at inference the full photo's disparity is relative to its
own nearest surface.

Why per image and by scale only:

* One photo does not determine metric scale, and the training sources disagree on it
  (table-tops at 0.5 m, rooms at 4 m, Middlebury scaled from calibration); a fixed
  metric range would make the network guess the scale and waste most of the Tanh range.
* Dividing (not min-max stretching) keeps disparity proportional to inverse depth, so
  ``1 / disparity`` is depth up to one unknown factor — exactly what the NYU protocol's
  per-image median scaling removes (:mod:`pybokeh.nets.metrics`), and all the renderer
  needs (focus is chosen on the map).  A min-max map would also lose the shift.
* The 99th percentile instead of the maximum ignores a few noisy near pixels.
"""
from __future__ import annotations

import numpy as np

__all__ = ["TARGET_CONVENTION", "depth_to_target", "target_to_disparity", "disparity_to_depth"]

PERCENTILE = 99.0
DISPARITY_FLOOR = 1e-2  # 1/disparity ≤ 100× the reference depth when converting back

TARGET_CONVENTION = {
    "name": "scaled-inverse-depth",
    "percentile": PERCENTILE,
    "output_range": [-1.0, 1.0],
    "disparity": "(output + 1) / 2, brighter = nearer, 1 = nearest surface (99th percentile)",
    "depth": "1 / max(disparity, 0.01), relative (unknown scale)",
}


def depth_to_target(depth_m: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Network target for a depth map.

    Parameters
    ----------
    depth_m : numpy.ndarray
        ``(H, W)`` depth along the optical axis, any positive unit (metres, mm), float or
        integer; 0, negative or NaN values are invalid; ``+inf`` is valid and means
        infinitely far (sky in synthetic frames): disparity 0, target -1.
    valid : numpy.ndarray of bool, optional
        Extra validity mask, ``(H, W)``; combined with the depth's own.

    Returns
    -------
    target : numpy.ndarray
        ``(H, W)`` float32 in [-1, 1]; -1 at invalid pixels (masked out of every loss).
    valid : numpy.ndarray
        ``(H, W)`` bool.
    """
    d = np.asarray(depth_m, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"depth_m must be (H, W), got shape {d.shape}")
    ok = d > 0  # False for NaN; True for +inf (at infinity)
    if valid is not None:
        if np.shape(valid) != d.shape:
            raise ValueError(f"valid must have shape {d.shape}, got {np.shape(valid)}")
        ok &= np.asarray(valid, dtype=bool)
    target = np.full(d.shape, -1.0, np.float32)
    if not ok.any():
        return target, ok
    inv = 1.0 / d[ok]
    ref = np.percentile(inv, PERCENTILE)
    if ref > 0:  # else everything is at infinity: disparity 0 everywhere
        target[ok] = 2.0 * np.minimum(inv / ref, 1.0) - 1.0
    return target, ok


def target_to_disparity(output):
    """Network output in [-1, 1] → disparity in [0, 1] (numpy array or torch tensor)."""
    return ((output + 1.0) * 0.5).clip(0.0, 1.0)


def disparity_to_depth(disparity: np.ndarray) -> np.ndarray:
    """Relative depth ``1 / max(disparity, 0.01)`` (float32; unknown scale)."""
    return (1.0 / np.maximum(np.asarray(disparity, np.float32), DISPARITY_FLOOR)).astype(np.float32)
