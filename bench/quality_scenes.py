"""Quality of ``pybokeh.render`` on exact layered scenes, against two baselines.

Renders seeded random layered scenes (``tests/scenes.py``) with the physically exact
aperture-averaged reference, gives ``pybokeh.render`` only the 8-bit pinhole photo
and the metric depth map, and prints a Markdown table of PSNR (dB, uint8 sRGB)
against the reference, over the whole image and over the edge band, for pybokeh
(one column per ``--highlight-boost`` value) and the two baselines (per-pixel
Gaussian blur stack; plain disk scatter without occlusion ordering).

Usage::

    python bench/quality_scenes.py [--scenes 12] [--highlight-boost 1 2 4] [--json]
                                   [--size 256x192] [--max-coc 4 25] [--mc] [--save DIR]
                                   [--no-pybokeh]

``--mc`` also renders each reference with a second, 2x finer and offset aperture
grid and reports their PSNR against each other (the reference's own error).
``--save DIR`` writes one contact sheet per scene (photo | reference | pybokeh ... |
gaussian | scatter) as PNG.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import scenes as S  # noqa: E402


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 256x192, got {text!r}") from exc
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError("size must be at least 32x32")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=12, help="number of scenes (seeds seed0 .. seed0+n-1)")
    p.add_argument("--seed0", type=int, default=0, help="first seed")
    p.add_argument("--size", type=_parse_size, default=(256, 192), help="frame WxH (default 256x192)")
    p.add_argument("--max-coc", type=float, nargs=2, default=(4.0, 25.0), metavar=("LO", "HI"),
                   help="range of the largest |CoC| per scene, px (default 4 25)")
    p.add_argument("--highlight-boost", type=float, nargs="+", default=None, metavar="G",
                   help="highlight_boost values to score (default: the renderer's default only)")
    p.add_argument("--blades", type=int, nargs="+", default=None,
                   help="aperture blade counts to draw from (default 0 0 6 8; 0 = disk)")
    p.add_argument("--cell-px", type=float, default=S.DEFAULT_CELL_PX, help="reference quadrature cell, px")
    p.add_argument("--mc", action="store_true", help="also measure the reference's own error")
    p.add_argument("--no-pybokeh", action="store_true", help="score the baselines only")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.add_argument("--save", type=Path, default=None, metavar="DIR", help="write contact sheets here")
    return p


def _contact_sheet(images: dict, path: Path) -> None:
    from PIL import Image, ImageDraw

    tiles = []
    for name, img in images.items():
        tile = Image.fromarray(img)
        canvas = Image.new("RGB", (tile.width, tile.height + 14), "black")
        canvas.paste(tile, (0, 14))
        ImageDraw.Draw(canvas).text((3, 1), name, fill="white")
        tiles.append(canvas)
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 2 * (len(tiles) - 1), tiles[0].height), "gray")
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + 2
    sheet.save(path)


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scenes < 1:
        raise SystemExit("--scenes must be >= 1")
    render = None
    if not args.no_pybokeh:
        import pybokeh

        render = getattr(pybokeh, "render", None)
        if render is None:
            raise SystemExit("pybokeh.render is not available (run with --no-pybokeh to score baselines)")
    boosts = args.highlight_boost if args.highlight_boost else [None]
    methods = [] if render is None else [
        "pybokeh" if g is None else f"pybokeh G={g:g}" for g in boosts
    ]
    methods += ["gaussian", "scatter"]
    width, height = args.size
    gen_kwargs = dict(height=height, width=width, max_coc_range=tuple(args.max_coc))
    if args.blades:
        gen_kwargs["blade_choices"] = tuple(args.blades)
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)

    rows = []
    for seed in range(args.seed0, args.seed0 + args.scenes):
        scene = S.random_scene(seed, **gen_kwargs)
        t0 = time.perf_counter()
        case = S.make_case(scene, args.cell_px)
        t_case = time.perf_counter() - t0
        outputs = {}
        for g, name in zip(boosts, methods):
            if render is None:
                break
            kwargs = scene.render_kwargs()
            if g is not None:
                kwargs["highlight_boost"] = g
            outputs[name] = render(case.photo, case.depth, **kwargs)
        outputs.update(case.baselines)
        scores = S.evaluate(case.reference, outputs, case.band)
        row = {
            "seed": seed, "layers": len(scene.layers), "focus_on": scene.focus_role,
            "max_coc_px": round(scene.max_coc, 2), "blades": scene.blades,
            "f_number": round(scene.f_number, 2), "focal_length_mm": scene.focal_length_mm,
            "sensor_width_mm": scene.sensor_width_mm, "band_fraction": round(float(case.band.mean()), 3),
            "psnr": {m: {"whole": scores[m][0], "band": scores[m][1]} for m in methods},
            "reference_s": round(t_case, 2),
        }
        if args.mc:
            fine = S.render_reference(scene, cell_px=args.cell_px / 2, offset=(0.21, 0.67))
            row["reference_self_psnr"] = {"whole": S.psnr(case.reference, fine),
                                          "band": S.psnr(case.reference, fine, case.band)}
            row["baseline_shift_db"] = max(
                abs(S.psnr(out, case.reference, m) - S.psnr(out, fine, m))
                for out in case.baselines.values() for m in (None, case.band)
            )
        rows.append(row)
        if args.save:
            _contact_sheet({"photo": case.photo, "reference": case.reference, **outputs},
                           args.save / f"scene_{seed:03d}.png")
        print(f"scene {seed}: done ({t_case:.1f} s reference + baselines)", file=sys.stderr)

    mean = {m: {k: float(np.mean([r["psnr"][m][k] for r in rows])) for k in ("whole", "band")} for m in methods}
    if args.json:
        print(json.dumps({"scenes": rows, "mean": mean, "size": [width, height],
                          "max_coc": list(args.max_coc), "cell_px": args.cell_px}, indent=1))
        return 0

    head = ["seed", "layers", "focus on", "max CoC px", "blades", "band %"]
    head += [f"{m} whole / band" for m in methods]
    if args.mc:
        head += ["ref vs 2x-finer ref", "max baseline shift dB"]
    print(f"PSNR (dB) against the exact reference, {width}x{height}, uint8 sRGB; "
          f"edge band = within max(|r|)+1 px of a depth edge")
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        cells = [str(r["seed"]), str(r["layers"]), r["focus_on"], f"{r['max_coc_px']:.1f}",
                 str(r["blades"]) if r["blades"] else "disk", f"{100 * r['band_fraction']:.0f}"]
        cells += [f"{_fmt(r['psnr'][m]['whole'])} / {_fmt(r['psnr'][m]['band'])}" for m in methods]
        if args.mc:
            cells += [f"{_fmt(r['reference_self_psnr']['whole'])} / {_fmt(r['reference_self_psnr']['band'])}",
                      f"{r['baseline_shift_db']:.4f}"]
        print("| " + " | ".join(cells) + " |")
    cells = ["**mean**", "", "", "", "", ""]
    cells += [f"**{_fmt(mean[m]['whole'])} / {_fmt(mean[m]['band'])}**" for m in methods]
    if args.mc:
        cells += [f"{_fmt(min(r['reference_self_psnr']['whole'] for r in rows))} min", ""]
    print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
