"""Depth from one photo on real photos without metric ground truth.

``../shared/data/photos`` holds photos with a reference disparity map (predicted by
the source projects' own estimators, or rendered for the BLB scenes; see its README).
Taking those maps as pseudo ground truth (depth = 1 / max(disparity, 0.02), disparity
normalised to [0, 1]), this scores :func:`pybokeh.estimate_depth` and the "lower in
the frame is nearer" prior of ``bench/depth_baselines.py`` with the metrics of
``pybokeh eval-depth`` (median scaling, mean over photos)::

    python bench/depth_photos.py --photos ../shared/data/photos

It says how the packaged model does on outdoor and people photos unlike its training
data; the reference maps are themselves estimates, so read the numbers as a
comparison between the two methods, not as accuracy.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

from pybokeh.nets.baselines import lower_nearer_depth
from pybokeh.nets.data.photos import read_photo_pairs
from pybokeh.nets.metrics import depth_metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default="../shared/data/photos")
    args = parser.parse_args(argv)
    from pybokeh import estimate_depth

    rows = {"estimate_depth": [], "lower-nearer": []}
    found = read_photo_pairs(pathlib.Path(args.photos))
    if not found:
        parser.error(f"no photo / disparity pairs under {args.photos}")
    for pair in found:
        photo, truth = pair.load()
        for name, pred in (("estimate_depth", 1.0 / np.maximum(estimate_depth(photo, device="cpu"), 0.01)),
                           ("lower-nearer", lower_nearer_depth(photo))):
            m = depth_metrics(pred, truth)
            rows[name].append((f"{pair.source}/{pair.name}", m["abs_rel"], m["delta1"]))
    print(f"{len(found)} photos under {args.photos}\n")
    print("| photo | estimate_depth AbsRel / δ1 | lower-nearer AbsRel / δ1 |")
    print("|---|---|---|")
    for (name, a1, d1), (_, a2, d2) in zip(rows["estimate_depth"], rows["lower-nearer"]):
        print(f"| {name} | {a1:.3f} / {d1:.3f} | {a2:.3f} / {d2:.3f} |")
    mean = {k: (np.mean([r[1] for r in v]), np.mean([r[2] for r in v])) for k, v in rows.items()}
    print(f"| **mean** | **{mean['estimate_depth'][0]:.3f} / {mean['estimate_depth'][1]:.3f}** | "
          f"**{mean['lower-nearer'][0]:.3f} / {mean['lower-nearer'][1]:.3f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
