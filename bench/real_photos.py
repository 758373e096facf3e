"""Issue 10's real-photo figures: glitter, the street_8 block, seams and whitening.

Renders the photos of ``../shared/data/photos`` named in issue 10 with their provided
disparity maps, with the default settings and with a candidate (default:
``highlight_boost=0``), and prints (definitions in ``tests/renderer/quality/photo_checks.py``):

* glitter count (|CoC| < 3 px, > 25 levels of Rec. 709 luminance over every input
  pixel within 4 px; CoC from ``pybokeh.coc_map`` at the photo's size) on
  inputs_new_11 (focus (1330, 470)), inputs_13 (480, 600), inputs_21 (650, 480);
* inputs_street_8 (disparity JPEG read as mode L, focus (1450, 1200)): the largest
  neighbour difference in rows 600-700, cols 1650-1760 (and 1660-1760, clear of
  the cap's silhouette), with the map as given and
  Gaussian-smoothed (sigma 1.5);
* seams: neighbour differences in blurred regions with the 8-bit map vs the smoothed
  float map (inputs_new_11, inputs_street_8);
* whitening of saturated colours against the ``highlight_boost=0`` render;
* the fairy lights of inputs_21: the disc structure (discs of lights stay).

Usage::

    python bench/real_photos.py [--candidate "highlight_boost=0"] [--set key=value ...]
                                [--data DIR] [--sheet DIR] [--json]

``--candidate`` / ``--set`` take comma-separated ``key=value`` render keywords
(Python literals); ``--set`` applies to both renders (e.g. ``backend='numba'``).
``--sheet DIR`` writes before/after crops (photo | default | candidate | glitter of
the default in red) as PNG, and ``DIR/sheet.jpg``, all crops in one image; the same
function, :func:`write_sheet`, can write the sheet for ``docs/``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "renderer" / "quality"))
import photo_checks as P  # noqa: E402
from quality_scenes import parse_keywords  # noqa: E402  (bench/ is on sys.path when run as a script)

GLITTER_PHOTOS = ("inputs_new_11", "inputs_13", "inputs_21")
#: Issue 10's figures for today's renderer (default vs highlight_boost=0).
ISSUE_TODAY = {"inputs_new_11": (10994, 72), "inputs_13": (3480, 884), "inputs_21": (427, 356),
               "street_8_block": 41}
#: Issue 10's block region (rows 600-700, cols 1650-1760), and the same 10 px clear of the cap's silhouette (a real
#: edge of 12-17 levels at cols 1650-1653).
STREET_ROWS, STREET_COLS, STREET_CLEAR_COLS = slice(600, 701), slice(1650, 1761), slice(1660, 1761)
#: (y0, y1, x0, x1): inputs_new_11's cap brim (seams), inputs_21's fairy lights (must keep bright discs).
BRIM, FAIRY = (150, 330, 1150, 1450), (200, 600, 180, 580)
#: Crops for the before/after sheet: (photo, x0, y0, x1, y1, what to look at).
SHEET_CROPS = (
    ("inputs_new_11", 1150, 200, 1550, 600, "hair under the cap brim, glasses; brim: seams"),
    ("inputs_new_11", 500, 900, 900, 1300, "bandana, red shirt: the densest glitter"),
    ("inputs_new_11", 1450, 550, 1850, 950, "orange backpack: glitter"),
    ("inputs_13", 400, 350, 800, 750, "sleeve glitter"),
    ("inputs_21", 550, 950, 950, 1350, "gold glitter"),
    ("inputs_21", 180, 200, 580, 600, "fairy lights: must stay crisp discs"),
    ("inputs_street_8", 1500, 450, 1900, 850, "the block right of the cap"),
    ("blb_280", 760, 300, 1160, 700, "rim-lit cheek"),
)


def default_data_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for base in (here.parent, here.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return here.parent / "shared" / "data"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidate", type=parse_keywords, default={"highlight_boost": 0.0}, metavar="K=V[,K=V]",
                   help="render keywords of the candidate (default highlight_boost=0)")
    p.add_argument("--set", type=parse_keywords, action="append", default=[], metavar="K=V[,K=V]",
                   help="render keywords applied to both renders")
    p.add_argument("--data", type=Path, default=None, help="the shared data directory (default ../shared/data)")
    p.add_argument("--sheet", type=Path, default=None, metavar="DIR", help="write before/after crops here")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


class Renders:
    """Renders each photo once per setting (default / candidate, given / smoothed map)."""

    def __init__(self, data: Path, common: dict, candidate: dict):
        import pybokeh

        self.pybokeh, self.data = pybokeh, data
        self.settings = {"default": dict(common), "candidate": {**common, **candidate}}
        self._cache: dict = {}

    def inputs(self, name: str):
        key = ("in", name)
        if key not in self._cache:
            photo, depth, focus = P.load(self.data, name)
            coc = self.pybokeh.coc_map(depth, focus, image_shape=photo.shape[:2])
            self._cache[key] = (photo, depth, focus, coc)
        return self._cache[key]

    def get(self, name: str, setting: str, smooth: bool = False) -> np.ndarray:
        key = (name, setting, smooth)
        if key not in self._cache:
            photo, depth, focus, _ = self.inputs(name)
            if smooth:
                depth = P.smooth_map(depth)
            self._cache[key] = self.pybokeh.render(photo, depth, focus, **self.settings[setting])
        return self._cache[key]


def measure(r: Renders) -> dict:
    res = {"glitter": {}, "street_8": {}, "seams": {}, "whitening": {}}
    for name in GLITTER_PHOTOS:
        photo, _, _, coc = r.inputs(name)
        res["glitter"][name] = {s: P.glitter_count(photo, r.get(name, s), coc) for s in ("default", "candidate")}
    for s in ("default", "candidate"):
        res["street_8"][s] = {
            "given": P.max_neighbour_diff(r.get("inputs_street_8", s), STREET_ROWS, STREET_COLS),
            "smoothed": P.max_neighbour_diff(r.get("inputs_street_8", s, smooth=True), STREET_ROWS, STREET_COLS),
            "clear": P.max_neighbour_diff(r.get("inputs_street_8", s), STREET_ROWS, STREET_CLEAR_COLS),
        }
    edges = {}
    for name in ("inputs_new_11", "inputs_street_8"):
        photo, depth, _, coc = r.inputs(name)
        edges[name] = P.depth_edges(depth, photo.shape[:2])
        res["seams"][name] = {s: P.seam_stats(r.get(name, s), r.get(name, s, smooth=True), coc, exclude=edges[name])
                              for s in ("default", "candidate")}
    y0, y1, x0, x1 = BRIM
    coc = r.inputs("inputs_new_11")[3][y0:y1, x0:x1]
    res["seams"]["inputs_new_11 cap brim"] = {
        s: P.seam_stats(r.get("inputs_new_11", s)[y0:y1, x0:x1],
                        r.get("inputs_new_11", s, smooth=True)[y0:y1, x0:x1], coc,
                        exclude=edges["inputs_new_11"][y0:y1, x0:x1]) for s in ("default", "candidate")}
    y0, y1, x0, x1 = FAIRY
    res["fairy_lights_disc_structure"] = {s: P.disc_structure(r.get("inputs_21", s)[y0:y1, x0:x1])
                                          for s in ("default", "candidate")}
    no_boost = dict(r.settings["default"], highlight_boost=0.0)
    for name in ("inputs_new_11", "inputs_13", "inputs_21", "inputs_street_8", "blb_280"):
        photo, depth, focus, coc = r.inputs(name)
        ref = r.pybokeh.render(photo, depth, focus, **no_boost)
        res["whitening"][name] = {s: P.whitening(photo, r.get(name, s), ref, coc) for s in ("default", "candidate")}
    return res


def print_markdown(res: dict, candidate: dict) -> None:
    cand = ",".join(f"{k}={v}" for k, v in candidate.items()) or "defaults"
    print(f"Real photos, default settings vs candidate ({cand})")
    print()
    print("| glitter count (|CoC| < 3 px, > 25 levels over every input pixel within 4 px) | default | candidate | "
          "default / candidate | issue 10 today (default vs boost 0) |")
    print("|---|---|---|---|---|")
    for name, g in res["glitter"].items():
        ratio = g["default"] / max(g["candidate"], 1)
        today = ISSUE_TODAY[name]
        print(f"| {name} | {g['default']:,} | {g['candidate']:,} | {ratio:.2f} | {today[0]:,} vs {today[1]:,} |")
    print()
    print("| inputs_street_8, largest neighbour difference, rows 600-700 | default | candidate |")
    print("|---|---|---|")
    labels = {"given": "cols 1650-1760, map as given (JPEG read as L)",
              "smoothed": "cols 1650-1760, map Gaussian-smoothed (sigma 1.5)",
              "clear": "cols 1660-1760 (clear of the cap's edge), map as given"}
    for m, label in labels.items():
        print(f"| {label} | {res['street_8']['default'][m]} | {res['street_8']['candidate'][m]} |")
    print()
    print("| seams: where |CoC| >= 1 px, no depth edge within 4 px (photo_checks.depth_edges) and the render with the smoothed float map is flat (<= 2 levels) | "
          "setting | flat pairs | pairs stepping >= 6 levels with the 8-bit map | largest step |")
    print("|---|---|---|---|---|")
    for name, per in res["seams"].items():
        for s, st in per.items():
            print(f"| {name} | {s} | {st['smooth_pairs']:,} | {st['seam_pairs']:,} | {st['max_step']} |")
    print()
    fl = res["fairy_lights_disc_structure"]
    print("| inputs_21 fairy lights (x 180-580, y 200-600): disc structure (mean |luma - 15 px box mean|) | "
          "default | candidate |")
    print("|---|---|---|")
    print(f"| discs stay (tests/renderer/quality/test_real_photos.py: default >= 1.05 x boost 0) | {fl['default']:.2f} | "
          f"{fl['candidate']:.2f} |")
    print()
    print("| whitening: saturated colours (a channel 255, another < 160, |CoC| >= 2) whose darkest channel rises "
          "> 30 levels over boost 0 | saturated px | default whitened | candidate whitened |")
    print("|---|---|---|---|")
    for name, per in res["whitening"].items():
        d, c = per["default"], per["candidate"]
        print(f"| {name} | {d['saturated']:,} | {d['whitened']:,} ({100 * d['fraction']:.1f} %) | "
              f"{c['whitened']:,} ({100 * c['fraction']:.1f} %) |")


def _label(img: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    tile = Image.fromarray(img)
    canvas = Image.new("RGB", (tile.width, tile.height + 16), "black")
    canvas.paste(tile, (0, 16))
    ImageDraw.Draw(canvas).text((4, 2), text, fill="white")
    return np.asarray(canvas)


def crop_strip(r: Renders, name: str, box, note: str = "", candidate_label: str = "candidate") -> np.ndarray:
    """One row: photo | default | candidate | default with its glitter pixels in red."""
    photo, _, _, coc = r.inputs(name)
    x0, y0, x1, y1 = box
    default, cand = r.get(name, "default"), r.get(name, "candidate")
    marked = default.copy()
    marked[P.glitter_mask(photo, default, coc)] = (255, 0, 0)
    tiles = [_label(a[y0:y1, x0:x1], t) for a, t in ((photo, f"{name} {note}"), (default, "default"),
                                                      (cand, candidate_label), (marked, "default: glitter in red"))]
    gap = np.full((tiles[0].shape[0], 4, 3), 128, np.uint8)
    return np.concatenate(sum(([t, gap] for t in tiles), [])[:-1], axis=1)


def write_sheet(out_dir: Path, renders: Renders | None = None, data: Path | None = None, candidate: dict | None = None,
                crops=SHEET_CROPS, candidate_label: str = "candidate", sheet_name: str = "sheet.jpg") -> Path:
    """Write each crop's strip as PNG and all strips stacked as ``out_dir/sheet_name``
    (JPEG quality 90); returns the sheet's path.  For ``docs/``: call it with the
    candidate settings and a ``docs/...`` directory."""
    from PIL import Image

    if renders is None:
        renders = Renders(data or default_data_dir(), {}, candidate or {"highlight_boost": 0.0})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    strips = []
    for name, x0, y0, x1, y1, note in crops:
        strip = crop_strip(renders, name, (x0, y0, x1, y1), note, candidate_label)
        Image.fromarray(strip).save(out_dir / f"{name}_{x0}_{y0}.png")
        strips.append(strip)
    width = max(s.shape[1] for s in strips)
    strips = [np.pad(s, ((0, 6), (0, width - s.shape[1]), (0, 0))) for s in strips]
    path = out_dir / sheet_name
    Image.fromarray(np.concatenate(strips, axis=0)).save(path, quality=90)
    return path


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data = args.data or default_data_dir()
    if not (data / "photos").is_dir():
        raise SystemExit(f"no photos under {data}; pass --data")
    common = {}
    for kw in args.set:
        common.update(kw)
    t0 = time.perf_counter()
    renders = Renders(data, common, args.candidate)
    res = measure(renders)
    print(f"measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.sheet:
        label = ",".join(f"{k}={v}" for k, v in args.candidate.items())
        print(f"sheet: {write_sheet(args.sheet, renders, candidate_label=label)}", file=sys.stderr)
    if args.json:
        print(json.dumps({"candidate": args.candidate, "common": common, **res}, indent=1))
    else:
        print_markdown(res, args.candidate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
