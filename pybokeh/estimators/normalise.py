"""Estimator outputs to the project's disparity convention: float32 in [0, 1], brighter = nearer."""
from __future__ import annotations

import numpy as np

__all__ = ["normalise_relative", "normalise_metric", "RELATIVE_PERCENTILES", "METRIC_PERCENTILE"]

#: Percentiles that define the [0, 1] range of a relative (affine-invariant) disparity
#: map: robust to a few outliers at either end.
RELATIVE_PERCENTILES = (1.0, 99.0)
#: Percentile of inverse depth that becomes 1 for metric outputs (as the packaged
#: model's training target, :mod:`pybokeh.nets.depth_target`).
METRIC_PERCENTILE = 99.0


def normalise_relative(values: np.ndarray) -> np.ndarray:
    """Affine-invariant disparity (larger = nearer, unknown scale and shift) to [0, 1].

    The 1st percentile becomes 0 and the 99th 1 (clipped): without a known shift,
    a min–max style stretch is all one can do; the renderer normalises the same way.
    """
    lo, hi = np.percentile(values, RELATIVE_PERCENTILES)
    if not hi > lo:
        return np.zeros(values.shape, np.float32)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def normalise_metric(depth: np.ndarray) -> np.ndarray:
    """Metric depth (larger = farther) to disparity in [0, 1]: ``(1/z) / q99(1/z)``, clipped.

    Dividing keeps the map proportional to inverse depth (far = 0 at infinity), the
    convention of the packaged model; non-positive depths count as infinitely far.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(depth > 0, 1.0 / depth, 0.0)
    ref = np.percentile(inverse, METRIC_PERCENTILE)
    if not ref > 0:
        return np.zeros(depth.shape, np.float32)
    return np.clip(inverse / ref, 0.0, 1.0).astype(np.float32)
