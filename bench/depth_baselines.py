"""Depth baselines and the packaged estimator, scored like ``pybokeh eval-depth``.

Run from the repository root (needs the ``depth`` extra only for ``estimate-depth*``)::

    python bench/depth_baselines.py --data ../shared/data/rgbd --method constant
    python bench/depth_baselines.py --data ../shared/data/rgbd --method lower-nearer
    python bench/depth_baselines.py --data ../shared/data/rgbd --method estimate-depth
    python bench/depth_baselines.py --data ../shared/data/rgbd --method estimate-depth-bilinear
    python bench/depth_baselines.py --data ../shared/data/rgbd --method lower-nearer --exclude-source osd_tabletop_pcl

Protocol: the one of ``pybokeh eval-depth`` (:mod:`pybokeh.nets.metrics`): per image over
valid pixels with ground truth in (1 mm, 10 m), median scaling, then the mean over images.

Methods (the prediction is a relative depth map at the ground truth's resolution):

``constant``
    The same depth everywhere.  After median scaling every pixel is the image's median
    ground-truth depth: the floor any depth model must beat.
``lower-nearer``
    A prior that only knows "lower in the frame is nearer": depth ``2 - y``, with ``y``
    the row's centre as a fraction of the height (``(row + 0.5) / H``, 0 at the top, 1 at
    the bottom), i.e. the top row is twice as far as the bottom row and depth falls
    linearly in between.  The same for every column and every photo.
``estimate-depth``
    :func:`pybokeh.estimate_depth` with the packaged model (network + guided upsampling),
    converted to depth like ``eval-depth`` does (``1 / max(disparity, 0.01)``).
``estimate-depth-bilinear``
    The same network with plain bilinear upsampling (isolates the guided filter's effect).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

import numpy as np

from pybokeh.nets.baselines import constant_depth, lower_nearer_depth
from pybokeh.nets.data import open_frames
from pybokeh.nets.depth_target import disparity_to_depth
from pybokeh.nets.evaluate import format_table, summarize
from pybokeh.nets.metrics import depth_metrics

METHODS = ("constant", "lower-nearer", "estimate-depth", "estimate-depth-bilinear")


def _estimator(upsample: str, weights: str | None) -> Callable[[np.ndarray], np.ndarray]:
    from pybokeh import estimate_depth

    return lambda rgb: disparity_to_depth(estimate_depth(rgb, upsample=upsample, device="cpu", weights=weights))


def predictor(method: str, weights: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    if method == "constant":
        return constant_depth
    if method == "lower-nearer":
        return lower_nearer_depth
    if method == "estimate-depth":
        return _estimator("guided", weights)
    if method == "estimate-depth-bilinear":
        return _estimator("bilinear", weights)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="rgbd layout directory, e.g. ../shared/data/rgbd")
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--weights", help="estimate-depth*: a generator file instead of the packaged model")
    p.add_argument("--split", choices=("eval", "train"), default="eval")
    p.add_argument("--exclude-source", action="append", default=[], metavar="SOURCE",
                   help="leave this source out (repeatable), e.g. osd_tabletop_pcl")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)

    predict = predictor(args.method, args.weights)
    frames = [f for f in open_frames(args.data) if f.split == args.split and f.source not in args.exclude_source]
    rows = []
    for frame in frames:
        rgb, depth = frame.load()
        m = depth_metrics(predict(rgb), depth)
        if m is not None:
            rows.append({"source": frame.source, "name": frame.name, **m})
    summary = summarize(rows)
    if args.json:
        json.dump({"method": args.method, "weights": args.weights, "excluded": args.exclude_source,
                   "data": args.data, "split": args.split, **summary}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"method: {args.method}" + (f" (weights {args.weights})" if args.weights else "")
              + (f", excluding {', '.join(args.exclude_source)}" if args.exclude_source else "")
              + f"\ndata: {args.data} (split {args.split}, {len(rows)} images)")
        print(format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
