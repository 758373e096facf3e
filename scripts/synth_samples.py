"""Sheet of synthetic RGB-D samples for the README: docs/images/synth_samples.jpg.

    python scripts/synth_samples.py [--data ../shared/data/rgbd] [--out docs/images/synth_samples.jpg]

Textures are crops of the train split of --data (as in training); each tile shows the
photo above its exact depth as disparity (white = near, black = sky at infinity).
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from pybokeh.nets.data import open_frames
from pybokeh.nets.synth import TextureBank, synth_frame
from pybokeh.nets.synth.pool import N_TEXTURES
from pybokeh.nets.synth.scenes import KINDS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/rgbd")
    p.add_argument("--out", default="docs/images/synth_samples.jpg")
    p.add_argument("--cols", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    photos = []
    for f in [f for f in open_frames(args.data) if f.split == "train"][::4]:
        with Image.open(f.rgb_path) as im:
            im = im.convert("RGB")
            s = 256 / min(im.size)
            photos.append(np.asarray(im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.LANCZOS)))
    bank = TextureBank(photos, N_TEXTURES, np.random.default_rng([args.seed, 0x7E47]))
    tiles = []
    for i in range(2 * args.cols):
        kind = KINDS[i % len(KINDS)]
        rgb, depth, _ = synth_frame(np.random.default_rng([args.seed, 1000 + i]), bank, shape=(120, 160), kind=kind)
        disp = np.where(np.isfinite(depth), 1.0 / depth, 0.0)
        disp = np.clip(disp / np.percentile(disp, 99), 0, 1)
        tiles.append(np.concatenate([rgb, np.repeat((disp * 255).astype(np.uint8)[..., None], 3, -1)], 0))
    pad = lambda a: np.pad(a, ((2, 2), (2, 2), (0, 0)), constant_values=255)  # noqa: E731
    rows = [np.concatenate([pad(t) for t in tiles[r * args.cols:(r + 1) * args.cols]], 1) for r in range(2)]
    Image.fromarray(np.concatenate(rows, 0)).save(args.out, quality=85)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
