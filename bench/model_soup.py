"""Average the weights of generators fine-tuned from one start (a uniform "model soup").

    python bench/model_soup.py runs/soup.safetensors pybokeh/models/pix2pix_depth.safetensors \
        runs/v3_desk_ft/generator.safetensors runs/v3_desk_ft_s1/generator.safetensors
    pybokeh eval-depth --weights runs/soup.safetensors --data ../shared/data/rgbd --predictor estimate-depth --json

Weight averaging only makes sense for networks that share a basin: fine-tunes of one
generator (``pybokeh train --init``), not independently seeded runs (Wortsman et al. 2022,
"Model soups").  Every file must have the same architecture; the average is taken in
float32 and written in float32 with the first file's metadata plus the list of ingredients.
"""
from __future__ import annotations

import argparse
import sys

import torch

from pybokeh.nets.checkpoint import load_generator, save_generator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="generator .safetensors file to write")
    parser.add_argument("weights", nargs="+", help="generator .safetensors files (two or more)")
    args = parser.parse_args()
    if len(args.weights) < 2:
        parser.error("give at least two generator files")
    loaded = [load_generator(w) for w in args.weights]
    models = [m.float() for m, _ in loaded]
    meta = loaded[0][1]
    arch = models[0].config.to_dict()
    for w, m in zip(args.weights, models):
        if m.config.to_dict() != arch or m.input_size != models[0].input_size:
            print(f"model_soup.py: error: {w} has another architecture than {args.weights[0]}", file=sys.stderr)
            return 2
    soup = models[0]
    with torch.no_grad():
        states = [m.state_dict() for m in models]
        soup.load_state_dict({k: sum(s[k].float() for s in states) / len(states) for k in states[0]})
    meta = {k: v for k, v in meta.items() if k not in ("format", "version", "architecture", "input_size", "input",
                                                       "depth_target")}
    meta["soup"] = list(args.weights)
    save_generator(args.out, soup, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
