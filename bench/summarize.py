"""Turn a pytest-benchmark JSON file into the Markdown tables of the README.

    python bench/summarize.py bench-render.json
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    data = json.load(open(path))
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw", "?")
    rows = defaultdict(dict)
    for b in data["benchmarks"]:
        info = b["extra_info"]
        name = info.get("backend", b["name"])
        seconds = info.get("scaled_to_frame_s", b["stats"]["mean"])
        rows[info.get("radius")][name] = seconds
    names = sorted({n for r in rows.values() for n in r}, key=lambda n: (n.startswith("naive"), n))
    print(f"Machine: {cpu}, {machine.get('cpu', {}).get('count', '?')} logical CPUs, "
          f"Python {machine.get('python_version', '?')}\n")
    print("| max radius | " + " | ".join(f"{n} (s)" for n in names) + " | " +
          " | ".join(f"{n} / cpp" for n in names if n != "cpp") + " |")
    print("|---" * (1 + 2 * len(names) - 1) + "|")
    for radius in sorted(rows):
        r = rows[radius]
        cells = [f"{r[n]:.3f}" if n in r else "–" for n in names]
        ratios = [f"{r[n] / r['cpp']:.2f}×" if n in r and "cpp" in r else "–" for n in names if n != "cpp"]
        print(f"| {radius} px | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    if "cpp" in rows.get(16, {}) and "cpp" in rows.get(64, {}):
        print(f"\ncpp time at r=64 / r=16: {rows[64]['cpp'] / rows[16]['cpp']:.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
