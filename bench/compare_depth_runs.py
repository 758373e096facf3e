"""Paired comparison of two depth models on the same frames (bootstrap over images).

    pybokeh eval-depth --weights runs/gan128_8k --data ../shared/data/rgbd --json --per-image > gan.json
    pybokeh eval-depth --weights runs/l1_128_8k --data ../shared/data/rgbd --json --per-image > l1.json
    python bench/compare_depth_runs.py gan.json l1.json

For each metric: the mean per-image difference A − B, its 95 % bootstrap interval
(10 000 resamples of the images, seed 0) and on how many images A is better.  An interval
that contains 0 means the eval split cannot tell the two models apart.

``--group G [--alignment disparity|median]`` compares the model rows of one group of the
grouped evaluation instead (``in-domain``, ``unseen indoor``, ``outdoor``, ``people``,
``photos``), e.g. ``--group outdoor --alignment disparity``.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

HIGHER_IS_BETTER = {"delta1", "delta2", "delta3"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="eval-depth --json --per-image output of model A")
    p.add_argument("b", help="the same for model B")
    p.add_argument("--metrics", default="abs_rel,delta1,rmse,sq_rel")
    p.add_argument("--group", help="compare one group of the grouped evaluation")
    p.add_argument("--alignment", choices=("median", "disparity"), default="median", help="with --group")
    args = p.parse_args(argv)

    def rows(path):
        report = json.load(open(path))
        if args.group is None:
            return report["per_image"]
        return [r for r in report["per_image_grouped"] if r["group"] == args.group and r["method"] == "model"
                and r["alignment"] == args.alignment]

    rows_a, rows_b = rows(args.a), rows(args.b)
    if not rows_a:
        raise SystemExit(f"no rows for group {args.group!r} in {args.a}")
    key = [(r["source"], r["name"]) for r in rows_a]
    if key != [(r["source"], r["name"]) for r in rows_b]:
        raise SystemExit("the two files score different frames")
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(key), (10000, len(key)))
    print(f"A = {args.a}\nB = {args.b}\n{len(key)} images")
    for m in args.metrics.split(","):
        d = np.array([ra[m] - rb[m] for ra, rb in zip(rows_a, rows_b)])
        lo, hi = np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
        better = int((d > 0).sum() if m in HIGHER_IS_BETTER else (d < 0).sum())
        print(f"{m:>8}: A - B = {d.mean():+.4f}  95% CI [{lo:+.4f}, {hi:+.4f}]  A better on {better}/{len(d)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
