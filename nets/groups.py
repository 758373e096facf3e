"""Depth evaluation grouped by what users shoot, beside the trivial baselines.

Groups (eval split of an rgbd-layout data set, plus optional photos):

``in-domain``
    Eval frames of set-ups the training split also holds (``osd_tabletop_pcl``).
``unseen indoor``
    Indoor sensors and scenes never trained on (``ucn_realsense_tabletop``,
    ``pcl_tutorial_clouds``, ``tsdf_fusion_closeup``).
``outdoor``
    Driving scenes with sparse LiDAR (``dgp_outdoor_lidar`` scene_01 — the model may
    have trained on scene_02 — and ``nuscenes_mmdet3d``), scored up to 80 m.
``people``
    Standing people (``normalgan_people_kinect2``).  Their depth covers the person only
    (background masked out), so the scores say how well the body's own relief is
    predicted, and nothing about separating subject from background.
``photos``
    Real photos scored against reference disparity maps that are themselves other
    models' estimates or renders: pseudo ground truth (:mod:`pybokeh.nets.data.photos`).
``phone``
    Phone and depth-camera photos scored against the depth their device embedded
    (TrueDepth, dual-camera disparity, Lens Blur stereo, Intel R200): portraits, a pet,
    flowers, tables, as users shoot them, but the maps are the devices' measurements or
    estimates, not ground truth (:mod:`pybokeh.nets.data.phone`).

Other eval sources fall into ``in-domain`` when the training split holds them, else into
``other``.  Every group is scored for the model and for the ``constant`` and
``lower-nearer`` baselines (:mod:`pybokeh.nets.baselines`), each with two alignments:
per-image median scaling of depth, and least-squares scale and shift of inverse depth
(:mod:`pybokeh.nets.metrics`); means are over images.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable

import numpy as np

from .baselines import BASELINES
from .metrics import depth_metrics, mean_metrics

__all__ = ["GROUPS", "SOURCE_GROUPS", "group_of", "eval_items", "evaluate_grouped", "format_grouped", "EVAL_ALIGNMENTS"]

#: name → (max depth scored in metres or relative units, note printed with the group)
GROUPS = {
    "in-domain": (10.0, "eval frames of set-ups seen in training"),
    "unseen indoor": (10.0, "indoor sensors and scenes never trained on"),
    "outdoor": (80.0, "driving scenes, sparse LiDAR up to 65 m"),
    "people": (10.0, "depth on the person only: judges the body's relief, not subject vs background"),
    "photos": (100.0, "pseudo ground truth: reference maps are other models' estimates"),
    "phone": (100.0, "device depth (phone sensors and stereo), not ground truth"),
    "other": (10.0, "eval sources without a group"),
}
SOURCE_GROUPS = {
    "osd_tabletop_pcl": "in-domain",
    "ucn_realsense_tabletop": "unseen indoor",
    "pcl_tutorial_clouds": "unseen indoor",
    "tsdf_fusion_closeup": "unseen indoor",
    "dgp_outdoor_lidar": "outdoor",
    "nuscenes_mmdet3d": "outdoor",
    "normalgan_people_kinect2": "people",
}
EVAL_ALIGNMENTS = ("median", "disparity")
SHOWN = ("abs_rel", "delta1")


def group_of(source: str, train_sources: Iterable[str] = ()) -> str:
    """Group of an eval frame from ``source`` (see the module docstring)."""
    if source in SOURCE_GROUPS:
        return SOURCE_GROUPS[source]
    return "in-domain" if source in set(train_sources) else "other"


def eval_items(frames: Iterable, all_frames: Iterable, photos: Iterable = (), phone: Iterable = ()) -> list[tuple]:
    """The ``items`` of :func:`evaluate_grouped`: eval ``frames`` (grouped with :func:`group_of`,
    the training sources taken from ``all_frames``), then the ``photos`` (group ``photos``) and
    the ``phone`` captures (group ``phone``)."""
    train_sources = {f.source for f in all_frames if f.split == "train"}
    items = [(group_of(f.source, train_sources), f.source, f.name, f.load) for f in frames]
    return (items + [("photos", p.source, p.name, p.load) for p in photos]
            + [("phone", p.source, p.name, p.load) for p in phone])


def evaluate_grouped(predict: Callable[[np.ndarray], np.ndarray],
                     items: Iterable[tuple[str, str, str, Callable[[], tuple[np.ndarray, np.ndarray]]]],
                     *, min_depth: float = 1e-3, max_depths: dict[str, float] | None = None,
                     progress=None) -> dict[str, Any]:
    """Score ``predict`` and the baselines on ``(group, source, name, load)`` items.

    Parameters
    ----------
    predict : callable
        ``(H, W, 3)`` uint8 photo → ``(H, W)`` positive relative depth.
    items : iterable
        ``load()`` returns the photo and its ground-truth depth (0 = invalid).
    min_depth : float
        Ground truth below this is not scored.
    max_depths : dict, optional
        Group → maximum scored depth, instead of the one in :data:`GROUPS`.

    Returns
    -------
    dict
        ``{"groups": {group: {"count", "max_depth", "note", "methods": {method: {alignment:
        mean metrics}}}}, "per_image": [rows]}``, groups in :data:`GROUPS` order.
    """
    methods = {"model": predict, **BASELINES}
    rows: list[dict[str, Any]] = []
    for group, source, name, load in items:
        rgb, gt = load()
        max_depth = (max_depths or {}).get(group, GROUPS[group][0])
        for method, fn in methods.items():
            pred = fn(rgb)
            for alignment in EVAL_ALIGNMENTS:
                m = depth_metrics(pred, gt, min_depth=min_depth, max_depth=max_depth, alignment=alignment)
                if m is not None:
                    rows.append({"group": group, "source": source, "name": name, "method": method,
                                 "alignment": alignment, **m})
        if progress is not None:
            progress.update(1)
    by = defaultdict(list)
    for r in rows:
        by[r["group"], r["method"], r["alignment"]].append(r)
    groups: dict[str, Any] = {}
    for group, (max_depth, note) in GROUPS.items():
        if not any(k[0] == group for k in by):
            continue
        groups[group] = {"max_depth": (max_depths or {}).get(group, max_depth), "note": note,
                         "count": len({(r["source"], r["name"]) for r in by[group, "model", "median"]}),
                         "methods": {m: {a: mean_metrics(by[group, m, a]) for a in EVAL_ALIGNMENTS} for m in methods}}
    return {"groups": groups, "per_image": rows}


def format_grouped(result: dict[str, Any]) -> str:
    """Plain-text table: per group, the model and the baselines under both alignments."""
    head = (f"{'group':<15}{'n':>4}  {'method':<13}" + "".join(f"{a + ' ' + k:>18}" for a in EVAL_ALIGNMENTS
                                                                 for k in SHOWN))
    lines = [head, "-" * len(head)]
    for group, g in result["groups"].items():
        first = True
        for method, by_align in g["methods"].items():
            cells = "".join(f"{by_align[a][k]:>18.4f}" for a in EVAL_ALIGNMENTS for k in SHOWN)
            lead = f"{group:<15}{g['count']:>4}" if first else " " * 19
            lines.append(f"{lead}  {method:<13}{cells}")
            first = False
        lines.append(f"{'':19}  ({g['note']}; scored to {g['max_depth']:g})")
    lines.append("median = per-image median scaling of depth; disparity = least-squares scale and shift of inverse "
                 "depth; AbsRel lower is better, delta1 higher is better; means over images")
    return "\n".join(lines)


