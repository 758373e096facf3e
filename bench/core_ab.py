"""A/B speed of two builds of the C++ kernel (``pybokeh._core``) on ``bench_render``'s 12 MP frame.

Renderer changes must stay within 10 % of the build before them; on this shared,
noisy machine only an interleaved comparison is fair.  Each build runs in a worker
process of its own (two copies of ``_core`` cannot live in one process: the second
load returns the first module), both get the same inputs (the installed package's
CoC and highlight maps), and the kernel alone is timed, alternating A and B, best
of ``--rounds``::

    cp .venv/lib/python3.11/site-packages/pybokeh/_core*.so /tmp/new_core.so   # after building B
    python bench/core_ab.py /tmp/old_core.so /tmp/new_core.so [--rounds 3] [--threads 2] [--small]
    python bench/core_ab.py A.so B.so --identical 300   # a refactor: outputs equal bit for bit?
    python bench/core_ab.py A.so B.so --max-diff 500    # a change of rounding: how far apart?

``--identical N`` renders N seeded random scenes with both builds instead of timing
(sizes 1-160 × 1-200, uint8/uint16/float32, random, ramp, disc and quantised CoC up
to 70 px, 0/5/6/9 blades, sparse gains or none, 1-3 threads) and reports the first
that differs.
"""
from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_render import RADII  # noqa: E402


def load_core(path: str):
    """Load the extension module at ``path`` as ``pybokeh._core`` in this process (once per process)."""
    loader = importlib.machinery.ExtensionFileLoader("pybokeh._core", path)
    spec = importlib.util.spec_from_file_location("pybokeh._core", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    if Path(module.__file__).resolve() != Path(path).resolve():
        raise RuntimeError(f"{path}: this process already holds {module.__file__}")
    return module


def _worker(path: str, conn) -> None:
    """Serves one build: ("cases", n, seed) -> the outputs' bytes digests; ("time", radius, small, threads)
    -> seconds of one render of the frame; None ends."""
    import hashlib

    core = load_core(path)
    import pybokeh
    from bench_render import frame
    from pybokeh import Aperture
    from pybokeh.highlights import DEFAULT_HIGHLIGHT_BOOST, highlight_gain_map

    conn.send(core.__file__)
    inputs = {}
    while (msg := conn.recv()) is not None:
        if msg[0] in ("cases", "outputs"):
            kind, n, seed = msg
            rng, results = np.random.default_rng(seed), []
            for case in range(n):
                image, coc, blades, rotation, gain, threads = random_case(rng, case)
                luts, extents = Aperture(blades, rotation).kernel_tables()
                out = core.render(image, coc, blades, luts, extents, gain, threads)
                results.append(hashlib.sha256(out.tobytes()).hexdigest() if kind == "cases" else out)
            conn.send(results)
        else:
            _, radius, small, threads = msg
            if (radius, small) not in inputs:
                image, disparity = frame()
                if small:
                    h, w = image.shape[0] // 2, image.shape[1] // 2
                    image, disparity = image[:h, :w].copy(), disparity[:h, :w].copy()
                coc = pybokeh.coc_map(disparity, 0.5, max_blur=2.0 * radius, image_shape=image.shape[:2])
                try:  # what render() hands its kernel (the radius grid, where the package has one)
                    from pybokeh.lens import round_to_kernel_grid
                    coc = round_to_kernel_grid(coc)
                except ImportError:
                    pass
                inputs = {(radius, small): (image, coc, highlight_gain_map(image, DEFAULT_HIGHLIGHT_BOOST, coc))}
            image, coc, gain = inputs[(radius, small)]
            luts, extents = Aperture(0).kernel_tables()
            t = time.perf_counter()
            core.render(image, coc, 0, luts, extents, gain, threads)
            conn.send(time.perf_counter() - t)


class Build:
    """One ``_core`` build in its worker process."""

    def __init__(self, path: str):
        self.conn, child = multiprocessing.get_context("spawn").Pipe()
        self.proc = multiprocessing.get_context("spawn").Process(target=_worker, args=(path, child), daemon=True)
        self.proc.start()
        self.file = self.conn.recv()

    def ask(self, *msg):
        self.conn.send(msg)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join()


def random_case(rng: np.random.Generator, case: int):
    """One seeded kernel input: ``(image, coc, blades, rotation_deg, gain, threads)``."""
    h, w = int(rng.integers(1, 160)), int(rng.integers(1, 200))
    img = rng.random((h, w, 3))
    img[rng.random((h, w)) < 0.03] = 1.0
    dtype = (np.uint8, np.uint16, np.float32)[case % 3]
    scale = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[dtype]
    image = (img * scale).astype(dtype)
    rmax = float(rng.choice([2.0, 8.0, 20.0, 70.0]))
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    kind = case % 4
    if kind == 0:
        coc = rng.uniform(-rmax, rmax, (h, w))
    elif kind == 1:
        coc = np.linspace(-rmax, rmax, h)[:, None] + 0 * xx
    elif kind == 2:
        coc = np.full((h, w), -rmax)
        coc[np.hypot(yy - h / 2, xx - w / 2) < min(h, w) / 3] = 0.0
    else:
        coc = np.round(rng.uniform(-rmax, rmax, (h, w)) / 2.0) * 2.0
    if (case // 4) % 2:  # on render()'s radius grid (pybokeh.lens.COC_STEPS_PER_PX)
        coc = np.round(coc * 64.0) / 64.0
    blades, rotation = int(rng.choice([0, 5, 6, 9])), float(rng.uniform(0, 60))
    gain = None if rng.random() < 0.3 else (rng.random((h, w)) * 8 * (rng.random((h, w)) < 0.05)).astype(np.float32)
    return image, np.ascontiguousarray(coc, np.float32), blades, rotation, gain, int(rng.choice([1, 2, 3]))


def compare_outputs(a: Build, b: Build, n: int, seed: int) -> int:
    """Render ``n`` random scenes with both builds; 0 when every output is equal bit for bit."""
    da, db = a.ask("cases", n, seed), b.ask("cases", n, seed)
    rng = np.random.default_rng(seed)
    for case, (x, y) in enumerate(zip(da, db)):
        image, coc, blades, *_ = random_case(rng, case)
        if x != y:
            print(f"case {case} differs: {image.shape[1]}x{image.shape[0]} {image.dtype}, blades {blades}, "
                  f"max |CoC| {np.abs(coc).max():g}")
            return 1
    print(f"identical on {n} scenes (seed {seed})")
    return 0


def largest_differences(a: Build, b: Build, n: int, seed: int) -> None:
    """Render ``n`` random scenes with both builds; print how many differ and the largest difference per dtype
    (in code values for integer outputs)."""
    oa, ob = a.ask("outputs", n, seed), b.ask("outputs", n, seed)
    worst: dict[str, float] = {}
    differ = 0
    for x, y in zip(oa, ob):
        d = float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max(initial=0.0))
        differ += d > 0
        worst[str(x.dtype)] = max(worst.get(str(x.dtype), 0.0), d)
    print(f"{differ} of {n} scenes differ (seed {seed}); largest difference: "
          + ", ".join(f"{k} {v:.3g}" for k, v in worst.items()))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="build A (_core .so), the baseline")
    p.add_argument("b", help="build B (_core .so)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--small", action="store_true", help="a quarter of the frame (3 MP)")
    p.add_argument("--identical", type=int, metavar="N", help="compare outputs on N random scenes instead")
    p.add_argument("--max-diff", type=int, metavar="N",
                   help="render N random scenes instead and print the largest output difference per dtype")
    p.add_argument("--seed", type=int, default=0, help="first scene seed for --identical / --max-diff")
    args = p.parse_args(argv)
    builds = {"A": Build(args.a), "B": Build(args.b)}
    print(f"A: {builds['A'].file}\nB: {builds['B'].file}")
    try:
        if args.identical:
            raise SystemExit(compare_outputs(builds["A"], builds["B"], args.identical, args.seed))
        if args.max_diff:
            largest_differences(builds["A"], builds["B"], args.max_diff, args.seed)
            return
        size = "2016x1512" if args.small else "4032x3024"
        print(f"{size}, {args.threads} threads, best of {args.rounds}, interleaved")
        print("| max radius px | A (s) | B (s) | B / A |\n|---|---|---|---|")
        for radius in RADII:
            times = {k: [] for k in builds}
            for _ in range(args.rounds):
                for k, build in builds.items():
                    times[k].append(build.ask("time", radius, args.small, args.threads))
            a, b = min(times["A"]), min(times["B"])
            print(f"| {radius} | {a:.3f} | {b:.3f} | {b / a:.3f} |", flush=True)
    finally:
        for build in builds.values():
            build.close()


if __name__ == "__main__":
    main()
