"""Scoring a generator on RGB-D frames with the NYU Depth v2 protocol."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

import numpy as np

from .depth_target import disparity_to_depth
from .inference import predict_disparity
from .metrics import METRIC_NAMES, depth_metrics, mean_metrics
from .unet import UNetGenerator

__all__ = ["score_frame", "evaluate_pairs", "summarize", "format_table"]


def score_frame(model: UNetGenerator, rgb: np.ndarray, depth_m: np.ndarray, *, mode: str = "resize",
                size: int | None = None) -> dict[str, float] | None:
    """Metrics of one frame: predict disparity, invert to relative depth, median-scale, score.

    ``rgb`` is ``(H, W, 3)`` uint8 or float in [0, 1]; ``depth_m`` ``(H, W)`` metres, 0 = invalid.
    """
    disparity = predict_disparity(model, rgb, mode=mode, size=size)
    return depth_metrics(disparity_to_depth(disparity), depth_m)


def evaluate_pairs(model: UNetGenerator, pairs: Iterable[tuple[str, str, np.ndarray, np.ndarray]], *,
                   mode: str = "resize", size: int | None = None, progress=None) -> list[dict[str, Any]]:
    """Per-image rows ``{"source", "name", metrics...}`` for ``(source, name, rgb, depth_m)`` pairs.

    Frames without a scorable pixel are left out.
    """
    rows = []
    for source, name, rgb, depth in pairs:
        m = score_frame(model, rgb, depth, mode=mode, size=size)
        if m is not None:
            rows.append({"source": source, "name": name, **m})
        if progress is not None:
            progress.update(1)
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"mean": {...}, "per_source": {source: {...}}}``; each mean is over images."""
    by_source = defaultdict(list)
    for r in rows:
        by_source[r["source"]].append(r)
    return {"mean": mean_metrics(rows), "per_source": {s: mean_metrics(v) for s, v in sorted(by_source.items())}}


def format_table(summary: dict[str, Any]) -> str:
    """Plain-text table: one line per source, then the mean over all images."""
    head = f"{'source':<34}{'n':>5}" + "".join(f"{k:>10}" for k in METRIC_NAMES)
    lines = [head, "-" * len(head)]
    for name, m in list(summary["per_source"].items()) + [("ALL (mean over images)", summary["mean"])]:
        if name.startswith("ALL"):
            lines.append("-" * len(head))
        lines.append(f"{name[:33]:<34}{m['count']:>5}" + "".join(f"{m[k]:>10.4f}" for k in METRIC_NAMES))
    return "\n".join(lines)
