"""Turn a pytest-benchmark JSON file into the Markdown tables of the README.

    python bench/summarize.py bench-render.json
    python bench/summarize.py bench-peer.json

Times (seconds, mean of the rounds) per max radius and backend, with ratios to
``cpp``; where the file holds GEGL's timings (``bench_peer.py``), GEGL net of its
PNG I/O and the ratio ``GEGL net / cpp``; where it holds memory runs, peak RSS
above the baseline against the image's size.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict

GEGL, GEGL_IO = "gegl (process)", "gegl PNG I/O"


def main(path: str) -> None:
    data = json.load(open(path))
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw", "?")
    rows = defaultdict(dict)
    memory = []
    io = None
    for b in data["benchmarks"]:
        info = b["extra_info"]
        name = info.get("backend", b["name"])
        if "peak_rss_above_baseline_mb" in info:
            memory.append(info)
            continue
        seconds = info.get("scaled_to_frame_s", b["stats"]["mean"])
        if name == GEGL_IO:
            io = seconds
            continue
        rows[info.get("radius")][name] = seconds
    print(f"Machine: {cpu}, {machine.get('cpu', {}).get('count', '?')} logical CPUs, "
          f"Python {machine.get('python_version', '?')}\n")
    if rows:
        _times(rows, io)
    if memory:
        _memory(memory)


def _times(rows: dict, io: float | None) -> None:
    names = sorted({n for r in rows.values() for n in r}, key=lambda n: (n.startswith(("naive", "gegl")), n))
    peer = io is not None and any(GEGL in r for r in rows.values())
    head = [f"{n} (s)" for n in names] + [f"{n} / cpp" for n in names if n != "cpp"]
    if peer:
        head += ["gegl net of PNG I/O (s)", "gegl net / cpp"]
    print("| max radius | " + " | ".join(head) + " |")
    print("|---" * (1 + len(head)) + "|")
    for radius in sorted(rows):
        r = rows[radius]
        cells = [f"{r[n]:.3f}" if n in r else "–" for n in names]
        cells += [f"{r[n] / r['cpp']:.2f}×" if n in r and "cpp" in r else "–" for n in names if n != "cpp"]
        if peer:
            net = r[GEGL] - io if GEGL in r else None
            cells += [f"{net:.3f}" if net is not None else "–",
                      f"{net / r['cpp']:.2f}×" if net is not None and "cpp" in r else "–"]
        print(f"| {radius} px | " + " | ".join(cells) + " |")
    if io is not None:
        print(f"\nGEGL PNG load + save (the same process with a per-pixel op instead of the blur): {io:.3f} s")
    if "cpp" in rows.get(16, {}) and "cpp" in rows.get(64, {}):
        print(f"\ncpp time at r=64 / r=16: {rows[64]['cpp'] / rows[16]['cpp']:.2f}")


def _memory(memory: list) -> None:
    print("\n| backend | frame (MP) | max radius | image (MB) | peak RSS above baseline (MB) | ratio to the image |")
    print("|---|---|---|---|---|---|")
    for m in memory:
        print(f"| {m['backend']} | {m['megapixels']:.0f} | {m['radius']} px | {m['image_mb']:.0f} | "
              f"{m['peak_rss_above_baseline_mb']:.0f} | {m['ratio_to_image']:.1f}× |")


if __name__ == "__main__":
    main(sys.argv[1])
