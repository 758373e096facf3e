"""Markdown table of grouped depth scores from ``pybokeh eval-depth --json`` outputs.

    pybokeh eval-depth --weights runs/NAME --data ../shared/data/rgbd --json > NAME.json   # for each run
    python bench/group_table.py NAME.json [...] [--alignment disparity] [--baselines]

One row per file (its model), columns AbsRel / δ1 per group under one alignment
(``disparity``: least-squares scale and shift of inverse depth; ``median``: median
scaling of depth); ``--baselines`` adds the constant and "lower is nearer" rows of the
first file.  The best AbsRel and δ1 of each group are bold.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", help="eval-depth --json outputs")
    p.add_argument("--alignment", choices=("disparity", "median"), default="disparity")
    p.add_argument("--baselines", action="store_true", help="add the baselines of the first report")
    p.add_argument("--names", nargs="*", help="row names (default: the file stems)")
    args = p.parse_args(argv)
    reports = [json.loads(pathlib.Path(r).read_text()) for r in args.reports]
    names = args.names or [pathlib.Path(r).stem for r in args.reports]
    if len(names) != len(reports):
        p.error("--names needs one name per report")
    groups = list(reports[0]["groups"])
    rows = [(n, {g: r["groups"][g]["methods"]["model"][args.alignment] for g in groups if g in r["groups"]})
            for n, r in zip(names, reports)]
    if args.baselines:
        for b in ("constant", "lower-nearer"):
            rows.append((f"*{b}*", {g: reports[0]["groups"][g]["methods"][b][args.alignment] for g in groups}))
    best = {g: (min(r[g]["abs_rel"] for _, r in rows if g in r), max(r[g]["delta1"] for _, r in rows if g in r))
            for g in groups}
    counts = {g: reports[0]["groups"][g]["count"] for g in groups}
    print(f"| model ({args.alignment} alignment) | " + " | ".join(f"{g} ({counts[g]}) AbsRel / δ1" for g in groups) + " |")
    print("|---|" + "---|" * len(groups))
    for name, r in rows:
        cells = []
        for g in groups:
            if g not in r:
                cells.append("–")
                continue
            a, d = r[g]["abs_rel"], r[g]["delta1"]
            a_s = f"**{a:.3f}**" if a == best[g][0] else f"{a:.3f}"
            d_s = f"**{d:.3f}**" if d == best[g][1] else f"{d:.3f}"
            cells.append(f"{a_s} / {d_s}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
