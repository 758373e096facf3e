"""What pybokeh reads from every photo in shared/data/phone (the figures quoted in the README).

    python bench/phone_depth.py [--data ../shared/data]

For each file: where the depth came from, the stored map and the registered one, kind and
units; then the two checks against independent references: the pug's map against
pillow_heif's own decode (Spearman rank correlation) and, for the GDepth files, the decoded
depth at ``GFocus:FocalPoint`` against ``GFocus:FocalDistance``.  Prints no metadata beyond
what the decoding used (two of the files carry GPS positions).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
from PIL import Image

from pybokeh.phone import read_embedded_depth, read_photo_with_depth


def main(argv: list[str] | None = None) -> int:
    here = pathlib.Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=pathlib.Path, default=here.parent / "shared" / "data")
    args = p.parse_args(argv)
    phone = args.data / "phone"
    files = sorted(f for f in phone.iterdir() if f.suffix.lower() in (".jpg", ".heic"))
    print("| file | depth source | stored map | registered to photo | kind | range (as decoded) |")
    print("|---|---|---|---|---|---|")
    for f in files:
        got = read_photo_with_depth(f)
        if got.depth is None:
            print(f"| {f.name} | no embedded depth | — | photo {got.image.shape[1]}×{got.image.shape[0]} | — | — |")
            continue
        w, h = got.metadata["stored_size"]
        units = got.units or "relative / unspecified"
        print(f"| {f.name} | {got.source} | {w}×{h} | {got.depth.shape[1]}×{got.depth.shape[0]} "
              f"(photo {got.image.shape[1]}×{got.image.shape[0]}) | {got.kind}, {units} | "
              f"{float(got.depth.min()):.4g}–{float(got.depth.max()):.4g} |")

    from scipy.stats import spearmanr

    pug = read_embedded_depth(phone / "pillowheif_pug.heic")
    ref = np.asarray(Image.open(phone / "pillowheif_pug_depth_reference.png"), np.float32)
    print(f"\npillowheif_pug.heic vs pillowheif_pug_depth_reference.png: Spearman rank correlation "
          f"{spearmanr(pug.values.ravel(), ref.ravel()).statistic:.6f}")
    for name in ("exifr_xmp_depth_map.jpg", "mde_Android_Depth_Map.jpg"):
        got = read_embedded_depth(phone / name)
        m = got.metadata
        hh, ww = got.values.shape
        v = got.values[int(m["FocalPointY"] * hh), int(m["FocalPointX"] * ww)]
        print(f"{name}: decoded depth at GFocus:FocalPoint {v:.6f}, GFocus:FocalDistance {m['FocalDistance']:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
