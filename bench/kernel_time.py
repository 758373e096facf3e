"""CPU and wall time of the cpp kernel alone on the 12 MP benchmark frame.

    python bench/kernel_time.py [--radii 16 64] [--rounds 3]

Prints, per max CoC radius: the single-threaded CPU time (``time.process_time``,
which other jobs on a shared machine inflate far less than wall time) and the
wall time with all available threads; the CoC map (int16 steps of the
kernels' radius grid, as ``render`` hands it over) and the highlight map are
computed once beforehand and not counted.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from bench_render import frame  # noqa: E402

import pybokeh  # noqa: E402
from pybokeh.aperture import Aperture  # noqa: E402
from pybokeh.highlights import highlight_gain_map  # noqa: E402
from pybokeh.lens import Lens  # noqa: E402
from pybokeh.renderer.dispatch import default_threads, get_backend  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radii", type=float, nargs="+", default=[16, 32, 64])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    image, disparity = frame()
    _, kernel = get_backend("cpp")
    threads = default_threads()
    print(f"| max radius | cpp kernel CPU time, 1 thread (s) | cpp kernel wall time, {threads} threads (s) |")
    print("|---|---|---|")
    for radius in args.radii:
        coc = Lens("disparity", 2.0 * radius).kernel_coc(disparity, 0.5, disparity.shape, steps=True)
        gain = highlight_gain_map(image, pybokeh.DEFAULT_HIGHLIGHT_BOOST, coc)
        cpu, wall = [], []
        for _ in range(args.rounds):
            t = time.process_time()
            kernel(image, coc, Aperture(0), gain, 1)
            cpu.append(time.process_time() - t)
            t = time.perf_counter()
            kernel(image, coc, Aperture(0), gain, threads)
            wall.append(time.perf_counter() - t)
        print(f"| {radius:g} px | {min(cpu):.2f} | {min(wall):.2f} |")


if __name__ == "__main__":
    main()
