"""Monocular depth metrics (NYU Depth v2 protocol), per image then averaged.

For each image, over pixels where the ground truth is valid and inside
``[min_depth, max_depth]``: the prediction is aligned to the ground truth (relative-depth
models have no metric scale) — ``"median"``: scaled by ``median(gt) / median(pred)``;
``"disparity"``: its inverse fitted to the inverse ground truth by least-squares scale and
shift (the MiDaS protocol for affine-invariant disparity), then inverted back — clipped
to ``[min_depth, max_depth]``, and

* ``abs_rel`` = mean(|p − g| / g), ``sq_rel`` = mean((p − g)² / g),
* ``rmse`` = sqrt(mean((p − g)²)) (metres), ``rmse_log`` = sqrt(mean((ln p − ln g)²)),
* ``log10`` = mean(|log10 p − log10 g|),
* ``delta1/2/3`` = fraction with max(p/g, g/p) < 1.25, 1.25², 1.25³.

Everything is computed in float64.  :func:`mean_metrics` averages per-image results.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

__all__ = ["METRIC_NAMES", "ALIGNMENTS", "depth_metrics", "mean_metrics", "align_inverse_depth"]

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")
LOWER_IS_BETTER = {"abs_rel", "sq_rel", "rmse", "rmse_log", "log10"}
ALIGNMENTS = ("median", "disparity", "none")


def align_inverse_depth(pred: np.ndarray, gt: np.ndarray, max_depth: float) -> np.ndarray:
    """Depth ``1 / (s / pred + b)`` with ``(s, b)`` minimising ``Σ (s / pred + b − 1 / gt)²``.

    ``pred`` and ``gt`` are 1-D arrays of positive depths (the scored pixels).  The fitted
    inverse depth is floored at ``1 / max_depth`` before inverting (a negative or zero
    fit means "beyond the range"); a constant ``pred`` gets ``s = 0``, ``b = mean(1 / gt)``.
    """
    x, y = 1.0 / pred, 1.0 / gt
    var = np.var(x)
    if var <= 1e-12 * max(np.mean(x) ** 2, 1e-30):
        s, b = 0.0, float(np.mean(y))
    else:
        s = float(np.mean((x - x.mean()) * (y - y.mean())) / var)
        b = float(y.mean() - s * x.mean())
    return 1.0 / np.maximum(s * x + b, 1.0 / max_depth)


def depth_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, *, median_scaling: bool = True,
                  min_depth: float = 1e-3, max_depth: float = 10.0,
                  alignment: str | None = None) -> dict[str, float] | None:
    """Metrics of one predicted depth map against ground truth.

    Parameters
    ----------
    pred : numpy.ndarray
        ``(H, W)`` predicted depth, positive (relative scale is fine with median scaling).
    gt : numpy.ndarray
        ``(H, W)`` ground-truth depth in metres; 0 or non-finite = invalid.
    valid : numpy.ndarray of bool, optional
        Extra mask of pixels to score.
    median_scaling : bool
        Scale ``pred`` by ``median(gt) / median(pred)`` over the scored pixels (when
        ``alignment`` is not given).
    min_depth, max_depth : float
        Ground truth outside this range is not scored; predictions are clipped to it.
    alignment : {"median", "disparity", "none"}, optional
        How ``pred`` is aligned to ``gt`` (module docstring); overrides ``median_scaling``.

    Returns
    -------
    dict or None
        Metric name → value, or ``None`` when no pixel can be scored.
    """
    if alignment is None:
        alignment = "median" if median_scaling else "none"
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must have one shape")
    mask = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth) & np.isfinite(pred) & (pred > 0)
    if valid is not None:
        if np.shape(valid) != gt.shape:
            raise ValueError(f"valid must have shape {gt.shape}, got {np.shape(valid)}")
        mask &= np.asarray(valid, bool)
    if not mask.any():
        return None
    p, g = pred[mask], gt[mask]
    if alignment == "median":
        p = p * (np.median(g) / np.median(p))
    elif alignment == "disparity":
        p = align_inverse_depth(p, g, max_depth)
    p = np.clip(p, min_depth, max_depth)
    ratio = np.maximum(p / g, g / p)
    diff = p - g
    return {
        "abs_rel": float(np.mean(np.abs(diff) / g)),
        "sq_rel": float(np.mean(diff ** 2 / g)),
        "rmse": float(np.sqrt(np.mean(diff ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2))),
        "log10": float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25 ** 2)),
        "delta3": float(np.mean(ratio < 1.25 ** 3)),
    }


def mean_metrics(per_image: Iterable[Mapping[str, float] | None]) -> dict[str, float]:
    """Average of per-image metric dicts (``None`` entries skipped); adds ``count``."""
    rows = [r for r in per_image if r is not None]
    out = {k: float(np.mean([r[k] for r in rows])) if rows else float("nan") for k in METRIC_NAMES}
    out["count"] = len(rows)
    return out
