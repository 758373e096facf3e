"""Grouped depth scores of several generators' ``estimate_depth`` maps averaged (an ensemble).

    python bench/depth_ensemble.py runs/A/generator.safetensors runs/B/generator.safetensors \
        [--data ../shared/data/rgbd] > ensemble.grouped.json
    python bench/group_table.py ensemble.grouped.json --alignment disparity --baselines

Scores exactly as ``pybokeh eval-depth --predictor estimate-depth`` does (eval split plus
``photos`` and ``phone`` beside the data folder, both alignments, the baselines), except that each
photo's disparity is the mean of ``estimate_depth(photo, weights=W)`` over the files.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pybokeh.depth import estimate_depth
from pybokeh.nets.data import open_frames
from pybokeh.nets.data.phone import read_phone_pairs
from pybokeh.nets.data.photos import read_photo_pairs
from pybokeh.nets.depth_target import disparity_to_depth
from pybokeh.nets.groups import eval_items, evaluate_grouped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help="generator .safetensors files")
    parser.add_argument("--data", default="../shared/data/rgbd")
    args = parser.parse_args()
    all_frames = open_frames(args.data)
    photo_dir = Path(args.data).resolve().parent / "photos"
    photos = read_photo_pairs(photo_dir) if photo_dir.is_dir() else []
    phone_dir = Path(args.data).resolve().parent / "phone"
    phone = read_phone_pairs(phone_dir) if phone_dir.is_dir() else []

    def predict(rgb):
        return disparity_to_depth(sum(estimate_depth(rgb, weights=w) for w in args.weights) / len(args.weights))

    items = eval_items([f for f in all_frames if f.split == "eval"], all_frames, photos, phone)
    result = evaluate_grouped(predict, items, min_depth=1e-3)
    json.dump({"weights": " + ".join(args.weights), "predictor": "estimate-depth, averaged",
               "groups": result["groups"]}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
