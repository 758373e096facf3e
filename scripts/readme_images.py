"""Re-render the README's pictures with the installed pybokeh (run after a renderer change).

    python scripts/readme_images.py [--data ../shared/data]

Writes ``docs/images/hikers_bokeh.jpg`` and ``hikers_bokeh_back_hexagon.jpg`` (MPIB
``inputs_new_11`` with its disparity map at 2000×1333, shown at 960 px wide) and the
phone renders ``phone_pug_bokeh.jpg`` / ``phone_portrait_bokeh.jpg`` (``pybokeh render
FILE`` with no flags, downscaled to the sizes the README states).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"


def save(img: np.ndarray, name: str, width: int, height: int) -> None:
    Image.fromarray(img).resize((width, height), Image.LANCZOS).save(IMAGES / name, quality=88)
    print(IMAGES / name)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = p.parse_args(argv)
    import pybokeh
    from pybokeh.io import read_depth, read_photo

    photos = args.data / "photos" / "mpib"
    photo = read_photo(photos / "inputs_new_11_all-in-focus.jpg")   # 2000x1333
    depth = read_depth(photos / "inputs_new_11_disparity.jpg")
    save(pybokeh.render(photo, depth, (1330, 470)), "hikers_bokeh.jpg", 960, 639)
    save(pybokeh.render(photo, depth, (500, 700), blades=6, rotation_deg=15), "hikers_bokeh_back_hexagon.jpg", 960, 639)
    with tempfile.TemporaryDirectory() as tmp:
        for src, name, size in (("pillowheif_pug.heic", "phone_pug_bokeh.jpg", (640, 480)),
                                ("fidmaa_jpeg_depth_data.jpg", "phone_portrait_bokeh.jpg", (360, 480))):
            out = Path(tmp) / "out.png"
            subprocess.run([sys.executable, "-m", "pybokeh.cli", "render", str(args.data / "phone" / src), "-o", str(out)],
                           check=True, cwd=tmp)
            save(np.asarray(Image.open(out).convert("RGB")), name, *size)


if __name__ == "__main__":
    main()
