"""Quality of ``pybokeh.render`` on exact thin-lens scenes, per family, against two baselines.

Renders seeded scenes of every family in ``tests/renderer/quality/scenes`` (layered, saturated,
clipped, lights, strands, receding, depth8; see ``tests/renderer/quality/scenes/families.py``) with
the physically exact aperture-averaged reference, gives ``pybokeh.render`` only
what a user has (the 8-bit pinhole photo and the depth map as the family delivers
it) and prints Markdown tables of PSNR (dB, uint8 sRGB) against the reference, over
the whole image and over the depth-edge band: per family, pybokeh (one column per
variant) vs the per-pixel Gaussian blur stack vs the plain energy-conserving disk
scatter, the overall mean, and the smallest per-scene margin of each pybokeh
variant over the plain scatter.

Usage::

    python bench/quality_scenes.py                       # all families, 6 scenes each, defaults
    python bench/quality_scenes.py --highlight-boost 0 4 8 16
    python bench/quality_scenes.py --family lights strands --scenes 10 --per-scene
    python bench/quality_scenes.py --variant highlight_boost=8 --variant "highlight_boost=8,backend='numba'"
    python bench/quality_scenes.py --family layered --scenes 12 --mc   # the original table + reference error

Each ``--variant`` is one pybokeh column: comma-separated ``key=value`` keywords of
``pybokeh.render`` (values are Python literals; anything else is taken as a string);
``--highlight-boost G ...`` adds one variant per value; ``--set key=value`` applies to
every variant.  Without variants the renderer's defaults are scored.

References and baselines depend only on the scenes, so they are cached on disk
(``$PYBOKEH_SUITE_CACHE`` or ``~/.cache/pybokeh/suite``; keyed by the generator
arguments and a digest of ``tests/renderer/quality/scenes``): a sweep recomputes only pybokeh.
``--mc`` also renders each reference with a second, 2x finer and offset aperture
grid and reports their PSNR (the reference's own error; not cached).
``--save DIR`` writes one contact sheet per scene (photo | reference | pybokeh ... |
gaussian | scatter) as PNG.
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "renderer" / "quality"))
import scenes as S  # noqa: E402

DEFAULT_SCENES = 6


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 256x192, got {text!r}") from exc
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError("size must be at least 32x32")
    return w, h


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_keywords(spec: str) -> dict:
    """``"a=1,b='x'"`` -> ``{"a": 1, "b": "x"}`` (values as Python literals, else strings)."""
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_value(value.strip())
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", nargs="+", default=list(S.FAMILIES), choices=list(S.FAMILIES), metavar="F",
                   help=f"families to score (default all: {' '.join(S.FAMILIES)})")
    p.add_argument("--scenes", type=int, default=DEFAULT_SCENES, help="scenes per family (seeds seed0 .. seed0+n-1)")
    p.add_argument("--seed0", type=int, default=0, help="first seed")
    p.add_argument("--size", type=_parse_size, default=(256, 192), help="frame WxH (default 256x192)")
    p.add_argument("--max-coc", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="range of the largest |CoC| per scene, px (default: each family's own)")
    p.add_argument("--highlight-boost", type=float, nargs="+", default=None, metavar="G",
                   help="one pybokeh variant per highlight_boost value")
    p.add_argument("--variant", type=parse_keywords, action="append", default=[], metavar="K=V[,K=V]",
                   help="one pybokeh variant with these render keywords (repeatable)")
    p.add_argument("--set", type=parse_keywords, action="append", default=[], metavar="K=V[,K=V]",
                   help="render keywords applied to every variant (repeatable)")
    p.add_argument("--blades", type=int, nargs="+", default=None,
                   help="layered family only: aperture blade counts to draw from (default 0 0 6 8)")
    p.add_argument("--cell-px", type=float, default=S.DEFAULT_CELL_PX, help="reference quadrature cell, px")
    p.add_argument("--mc", action="store_true", help="also measure the reference's own error (slow)")
    p.add_argument("--per-scene", action="store_true", help="also print every scene's scores")
    p.add_argument("--no-pybokeh", action="store_true", help="score the baselines only")
    p.add_argument("--no-cache", action="store_true", help="recompute references and baselines")
    p.add_argument("--cache-dir", type=Path, default=None, help="cache directory (default: see above)")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.add_argument("--save", type=Path, default=None, metavar="DIR", help="write contact sheets here")
    return p


def variants_from_args(args) -> list[tuple[str, dict]]:
    """``[(column name, render keywords)]`` of the pybokeh variants to score."""
    common = {}
    for kw in args.set:
        common.update(kw)
    variants = [dict(v) for v in args.variant]
    if args.highlight_boost:
        variants += [{"highlight_boost": g} for g in args.highlight_boost]
    if not variants:
        variants = [{}]
    out = []
    for v in variants:
        kw = {**common, **v}
        name = "pybokeh" + ("" if not v else " " + ",".join(
            f"G={val:g}" if k == "highlight_boost" and isinstance(val, (int, float)) else f"{k}={val}"
            for k, val in v.items()))
        out.append((name, kw))
    return out


def make_scene(family: str, seed: int, width: int, height: int, max_coc, blades) -> S.Scene:
    if family == "layered" and blades:
        scene = S.random_scene(seed, height=height, width=width,
                               max_coc_range=tuple(max_coc or S.FAMILIES["layered"].max_coc_range),
                               blade_choices=tuple(blades))
        scene.family = "layered"
        return scene
    return S.family_scene(family, seed, height=height, width=width, max_coc_range=max_coc)


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
    return "inf" if math.isinf(v) else ("n/a" if math.isnan(v) else f"{v:.2f}")


def _pair(d: dict) -> str:
    return f"{_fmt(d['whole'])} / {_fmt(d['band'])}"


def _nanmean(values) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def summarize(rows: list[dict], methods: list[str], pybokeh_methods: list[str]) -> dict:
    """Per family and overall: mean PSNR per method, and per pybokeh variant the smallest
    per-scene margin over the plain scatter (whole, band) with the scene that has it."""

    def block(sel):
        mean = {m: {k: _nanmean([r["psnr"][m][k] for r in sel]) for k in ("whole", "band")} for m in methods}
        margin = {}
        for m in pybokeh_methods:
            margin[m] = {}
            for k in ("whole", "band"):
                pairs = [(r["psnr"][m][k] - r["psnr"]["scatter"][k], f"{r['family']}/{r['seed']}") for r in sel
                         if not math.isnan(r["psnr"][m][k])]
                worst = min(pairs) if pairs else (math.nan, "")
                margin[m][k] = {"min": worst[0], "scene": worst[1]}
        return {"scenes": len(sel), "mean": mean, "min_margin_vs_scatter": margin}

    fams = list(dict.fromkeys(r["family"] for r in rows))
    return {"families": {f: block([r for r in rows if r["family"] == f]) for f in fams}, "overall": block(rows)}


def print_markdown(rows, summary, methods, pybokeh_methods, args, width, height) -> None:
    print(f"PSNR (dB) against the exact thin-lens reference, {width}x{height}, uint8 sRGB, whole / depth-edge band; "
          f"{args.scenes} scenes per family from seed {args.seed0}")
    print()
    head = ["family", "n"] + list(methods) + [f"min Δ vs scatter, {m.removeprefix('pybokeh').strip() or 'pybokeh'}"
                                              for m in pybokeh_methods]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")

    def line(name, blk, bold=False):
        cells = [name, str(blk["scenes"])] + [_pair(blk["mean"][m]) for m in methods]
        for m in pybokeh_methods:
            mm = blk["min_margin_vs_scatter"][m]
            cells.append(f"{_fmt(mm['whole']['min'])} / {_fmt(mm['band']['min'])}")
        if bold:
            cells = [f"**{c}**" if c else c for c in cells]
        print("| " + " | ".join(cells) + " |")

    for fam, blk in summary["families"].items():
        line(fam, blk)
    line("all", summary["overall"], bold=True)
    if pybokeh_methods:
        print()
        for m in pybokeh_methods:
            mm = summary["overall"]["min_margin_vs_scatter"][m]
            print(f"{m}: worst scene vs scatter: whole {_fmt(mm['whole']['min'])} dB ({mm['whole']['scene']}), "
                  f"band {_fmt(mm['band']['min'])} dB ({mm['band']['scene']})")
    if not args.per_scene:
        return
    print()
    head = ["family", "seed", "focus on", "max CoC px", "blades", "band %", "depth"] + methods
    if args.mc:
        head += ["ref vs 2x-finer ref", "max baseline shift dB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        cells = [r["family"], str(r["seed"]), r["focus_on"], f"{r['max_coc_px']:.1f}",
                 str(r["blades"]) if r["blades"] else "disk", f"{100 * r['band_fraction']:.0f}", r["depth"]]
        cells += [_pair(r["psnr"][m]) for m in methods]
        if args.mc:
            cells += [_pair(r["reference_self_psnr"]), f"{r['baseline_shift_db']:.4f}"]
        print("| " + " | ".join(cells) + " |")
    if args.mc:
        fams = list(dict.fromkeys(r["family"] for r in rows))
        print()
        for f in fams:
            sel = [r["reference_self_psnr"] for r in rows if r["family"] == f]
            print(f"reference vs 2x-finer reference, {f}: min whole {_fmt(min(s['whole'] for s in sel))} dB, "
                  f"min band {_fmt(min(s['band'] for s in sel))} dB")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scenes < 1:
        raise SystemExit("--scenes must be >= 1")
    render = None
    variants = [] if args.no_pybokeh else variants_from_args(args)
    if variants:
        import pybokeh

        render = pybokeh.render
    pybokeh_methods = [name for name, _ in variants]
    methods = pybokeh_methods + ["gaussian", "scatter"]
    width, height = args.size
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)

    rows = []
    t_start = time.perf_counter()
    for family in args.family:
        for seed in range(args.seed0, args.seed0 + args.scenes):
            scene = make_scene(family, seed, width, height, args.max_coc, args.blades)
            t0 = time.perf_counter()
            key = {"family": family, "seed": seed, "size": [width, height], "max_coc": args.max_coc,
                   "blades": args.blades if family == "layered" else None}
            case = (S.make_case(scene, args.cell_px) if args.no_cache
                    else S.cached_case(scene, key, args.cell_px, args.cache_dir))
            t_case = time.perf_counter() - t0
            outputs = {}
            for name, kw in variants:
                outputs[name] = render(case.photo, case.depth, **{**case.render_kwargs, **kw})
            outputs.update(case.baselines)
            scores = S.evaluate(case.reference, outputs, case.band)
            delivery = scene.delivery
            row = {
                "family": family, "seed": seed, "layers": len(scene.layers), "focus_on": scene.focus_role,
                "max_coc_px": round(scene.max_coc, 2), "blades": scene.blades,
                "f_number": round(scene.f_number, 2), "focal_length_mm": scene.focal_length_mm,
                "sensor_width_mm": scene.sensor_width_mm, "band_fraction": round(float(case.band.mean()), 3),
                "depth": "metric" if not delivery else f"8-bit disparity, JPEG q{delivery.get('jpeg_quality')}",
                "info": {k: v for k, v in scene.info.items() if isinstance(v, (int, float, str, list))},
                "psnr": {m: {"whole": scores[m][0], "band": scores[m][1]} for m in methods},
                "case_s": round(t_case, 2),
            }
            if args.mc:
                fine = S.render_reference(scene, cell_px=args.cell_px / 2, offset=(0.21, 0.67))
                row["reference_self_psnr"] = {"whole": S.psnr(case.reference, fine),
                                              "band": S.psnr(case.reference, fine, case.band)}
                row["baseline_shift_db"] = max(
                    abs(S.psnr(out, case.reference, m) - S.psnr(out, fine, m))
                    for out in case.baselines.values() for m in (None, case.band)
                    if not math.isnan(S.psnr(out, fine, m))
                )
            rows.append(row)
            if args.save:
                _contact_sheet({"photo": case.photo, "reference": case.reference, **outputs},
                               args.save / f"{family}_{seed:03d}.png")
            print(f"{family} {seed}: {t_case:.1f} s reference + baselines", file=sys.stderr)
    print(f"total {time.perf_counter() - t_start:.0f} s", file=sys.stderr)

    summary = summarize(rows, methods, pybokeh_methods)
    if args.json:
        print(json.dumps({"scenes": rows, "summary": summary, "size": [width, height],
                          "variants": [{"name": n, "kwargs": kw} for n, kw in variants],
                          "cell_px": args.cell_px}, indent=1, default=str))
        return 0
    print_markdown(rows, summary, methods, pybokeh_methods, args, width, height)
    return 0


if __name__ == "__main__":
    sys.exit(main())
