"""Write a trained generator as the packaged model: float16 safetensors with metadata.

    python scripts/export_model.py runs/gan128_8k/generator.safetensors \
        pybokeh/models/pix2pix_depth.safetensors --card card.json

The output keeps the generator's ``pybokeh`` metadata (architecture, input size, depth
target, training run) and adds ``"dtype": "float16"`` plus the JSON object in ``--card``
(licences, training command, metrics) under ``"model_card"``.  Loading is the usual
:func:`pybokeh.nets.load_generator` (weights are cast to the model's float32).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from safetensors.torch import load_file, save_file

from pybokeh.nets.checkpoint import META_KEY, read_generator_meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="generator.safetensors written by pybokeh train")
    p.add_argument("dst", help="output file")
    p.add_argument("--card", help="JSON file merged into the metadata under 'model_card'")
    args = p.parse_args(argv)
    meta = read_generator_meta(args.src)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_file(args.src).items()}
    meta["dtype"] = "float16"
    if args.card:
        with open(args.card) as f:
            meta["model_card"] = json.load(f)
    save_file(tensors, args.dst, metadata={META_KEY: json.dumps(meta, sort_keys=True), "format": "pt"})
    os.chmod(args.dst, 0o644)  # safetensors writes 0600; the file ships in the wheel
    n = sum(t.numel() for t in tensors.values())
    print(f"{args.dst}: {len(tensors)} tensors, {n / 1e6:.2f} M parameters, float16")
    return 0


if __name__ == "__main__":
    sys.exit(main())
