"""Before/after sheet of real photos for ``docs/``: photo | an older build | this build.

Each build renders the crops of :data:`real_photos.SHEET_CROPS` (whole photos with
their provided disparity maps, default settings) in its own process; the older
build is an installed copy of pybokeh on another path::

    git worktree add /tmp/before <commit> && pip install --no-deps --no-build-isolation \\
        --target /tmp/before_site /tmp/before -C cmake.define.PYBOKEH_CUDA=OFF
    python bench/before_after_sheet.py --before /tmp/before_site --label "before (<commit>)" \\
        --out docs/images/real_photos_before_after.jpg
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
QUALITY_TESTS = HERE.parent / "tests" / "renderer" / "quality"  # photo_checks.py
sys.path.insert(0, str(HERE))
from real_photos import SHEET_CROPS, _label, default_data_dir  # noqa: E402

#: Crop size in the sheet (px, centred in each SHEET_CROPS box), to keep the JPEG small.
TILE = 320

_RENDER = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
import photo_checks as P, pybokeh
crops, out = {crops!r}, {{}}
for name in sorted({{c[0] for c in crops}}):
    photo, depth, focus = P.load({data!r}, name)
    img = pybokeh.render(photo, depth, focus)
    for c in crops:
        if c[0] == name:
            out[f"{{c[0]}}_{{c[1]}}_{{c[2]}}"] = img[c[2]:c[4], c[1]:c[3]]
np.savez({dest!r}, **out)
"""


def render_crops(site: str | None, data: Path, dest: Path) -> dict:
    """Crops rendered by the pybokeh on ``site`` (None: the installed one), by key ``name_x0_y0``."""
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    crops = [c[:5] for c in SHEET_CROPS]
    code = _RENDER.format(tests=str(QUALITY_TESTS), crops=crops, data=str(data), dest=str(dest))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tempfile.gettempdir())
    with np.load(dest) as f:
        return dict(f)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", required=True, help="folder holding the older build's pybokeh package")
    p.add_argument("--label", default="before", help="caption of the older build's tiles")
    p.add_argument("--out", type=Path, required=True, help="sheet to write (JPEG)")
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default ../shared/data)")
    args = p.parse_args(argv)
    from PIL import Image

    from pybokeh.io import read_photo

    data = args.data or default_data_dir()
    with tempfile.TemporaryDirectory() as tmp:
        before = render_crops(args.before, data, Path(tmp) / "before.npz")
        after = render_crops(None, data, Path(tmp) / "after.npz")
    sys.path.insert(0, str(QUALITY_TESTS))
    import photo_checks as P

    strips = []
    for name, x0, y0, x1, y1, note in SHEET_CROPS:
        key = f"{name}_{x0}_{y0}"
        photo = read_photo(data / "photos" / P.PHOTOS[name].image)[y0:y1, x0:x1]
        cy, cx = (y1 - y0 - TILE) // 2, (x1 - x0 - TILE) // 2
        cut = (slice(max(cy, 0), max(cy, 0) + TILE), slice(max(cx, 0), max(cx, 0) + TILE))
        tiles = [_label(a[cut], t) for a, t in ((photo, f"{name}: {note}"), (before[key], args.label),
                                                 (after[key], "after (this build)"))]
        gap = np.full((tiles[0].shape[0], 4, 3), 128, np.uint8)
        strips.append(np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2]], axis=1))
    width = max(s.shape[1] for s in strips)
    strips = [np.pad(s, ((0, 6), (0, width - s.shape[1]), (0, 0))) for s in strips]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(strips, axis=0)).save(args.out, quality=85)
    print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
