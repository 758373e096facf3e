"""A/B speed of two builds of the C++ kernel (``pybokeh._core``) on ``bench_render``'s 12 MP frame.

Renderer changes must stay within 10 % of the build before them; on this shared,
noisy machine only an interleaved comparison in one process is fair.  Both
modules get the same inputs (the installed package's CoC and highlight maps) and
the kernel alone is timed, alternating A and B, best of ``--rounds``::

    cp .venv/lib/python3.11/site-packages/pybokeh/_core*.so /tmp/new_core.so   # after building B
    python bench/core_ab.py /tmp/old_core.so /tmp/new_core.so [--rounds 3] [--threads 2] [--small]
"""
from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import RADII, frame  # noqa: E402


def load_core(path: str):
    """Load the extension module at ``path`` (it initialises as ``pybokeh._core``) without installing it."""
    loader = importlib.machinery.ExtensionFileLoader("pybokeh._core", path)
    spec = importlib.util.spec_from_file_location("pybokeh._core", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="build A (_core .so), the baseline")
    p.add_argument("b", help="build B (_core .so)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--small", action="store_true", help="a quarter of the frame (3 MP)")
    args = p.parse_args(argv)

    import pybokeh
    from pybokeh import Aperture
    from pybokeh.highlights import DEFAULT_HIGHLIGHT_BOOST, highlight_gain_map

    cores = {"A": load_core(args.a), "B": load_core(args.b)}
    image, disparity = frame()
    if args.small:
        h, w = image.shape[0] // 2, image.shape[1] // 2
        image, disparity = image[:h, :w].copy(), disparity[:h, :w].copy()
    aperture = Aperture(0)
    luts, extents = aperture.kernel_tables()
    print(f"{image.shape[1]}x{image.shape[0]}, {args.threads} threads, best of {args.rounds}, interleaved")
    print("| max radius px | A (s) | B (s) | B / A |\n|---|---|---|---|")
    for radius in RADII:
        coc = pybokeh.coc_map(disparity, 0.5, max_blur=2.0 * radius, image_shape=image.shape[:2])
        gain = highlight_gain_map(image, DEFAULT_HIGHLIGHT_BOOST, coc)
        times = {k: [] for k in cores}
        for _ in range(args.rounds):
            for k, core in cores.items():
                t = time.perf_counter()
                core.render(image, coc, aperture.blades, luts, extents, gain, args.threads)
                times[k].append(time.perf_counter() - t)
        a, b = min(times["A"]), min(times["B"])
        print(f"| {radius} | {a:.3f} | {b:.3f} | {b / a:.3f} |", flush=True)


if __name__ == "__main__":
    main()
