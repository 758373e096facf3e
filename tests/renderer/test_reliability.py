"""Regression tests of the renderer's reliability defects found by fuzzing and sanitizers (issue 15).

The command-line defects (items 3-5: photo formats, decompression bombs, writes) are in
``tests/cli/test_cli_reliability.py``.

Each test names the defect it guards against.  Crash-prone cases run in
subprocesses, so that an abort fails the test instead of the test run.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pybokeh
from pybokeh import Aperture, _core
from pybokeh.highlights import MAX_HIGHLIGHT_BOOST
from pybokeh.lens import COC_STEPS_PER_PX, MAX_COC_RADIUS
from pybokeh.renderer import kernel_math as km
from pybokeh.renderer.dispatch import MAX_THREADS

HERE = Path(__file__).resolve().parent


def issue_scene():
    """The reproducer of the stack overflow: clipped lights on a disparity ramp."""
    rng = np.random.default_rng(0)
    img = (rng.random((64, 64, 3)) * 60).astype(np.uint8)
    img[rng.random((64, 64)) < 0.02] = 255
    return img, np.tile(np.linspace(0, 1, 64), (64, 1))


def run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=HERE, timeout=300)


# ------------------------------------------------ 1. out-of-range values reaching C++

@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_huge_highlight_boost_is_rejected_before_any_kernel(backend):
    img, d = issue_scene()
    for bad in (1e39, 1e6, MAX_HIGHLIGHT_BOOST * 1.001, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="highlight_boost"):
            pybokeh.render(img, d, 1.0, max_blur=40.0, highlight_boost=bad, backend=backend)


def test_largest_highlight_boost_keeps_the_backends_together():
    # At the bound the float32 kernels still match the float64-free NumPy reference.
    img, d = issue_scene()
    outs = [pybokeh.render(img, d, 1.0, max_blur=40.0, highlight_boost=MAX_HIGHLIGHT_BOOST, backend=b)
            for b in ("cpp", "numba", "numpy")]
    for out in outs[1:]:
        assert np.abs(out.astype(int) - outs[0].astype(int)).max() <= 1
    assert outs[0].mean() > pybokeh.render(img, d, 1.0, max_blur=40.0, highlight_boost=0, backend="cpp").mean()


def test_limits_agree_between_python_and_the_compiled_module():
    assert _core.MAX_HIGHLIGHT_GAIN == MAX_HIGHLIGHT_BOOST
    assert _core.MAX_COC_RADIUS == MAX_COC_RADIUS
    assert _core.COC_STEPS_PER_PX == COC_STEPS_PER_PX
    from pybokeh.renderer import kernel_math
    assert kernel_math.COC_STEPS_PER_PX == COC_STEPS_PER_PX  # the Numba/NumPy transcription's copy
    assert _core.MAX_THREADS == MAX_THREADS
    assert _core.MAX_PIXELS == 2**31 - 1


def core_args(h=16, w=16):
    luts, extents = Aperture(6, 10.0).kernel_tables()
    img = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    coc = np.linspace(-20, 20, h * w, dtype=np.float32).reshape(h, w)
    return img, coc, 6, luts, extents


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, 4096.5, -1e30])
def test_core_rejects_coc_the_bins_cannot_hold(bad):
    # UBSan: floor_i overflowed and layer_edge shifted by more than 31 for such values.
    img, coc, blades, luts, extents = core_args()
    coc[3, 5] = bad
    with pytest.raises(ValueError, match="coc must be finite"):
        _core.render(img, coc, blades, luts, extents, None, 1)


@pytest.mark.parametrize("coc_kind", ["int32", "float64", "int16 strided", "int16 wrong shape"])
def test_core_accepts_float32_or_int16_coc_only(coc_kind):
    img, coc, blades, luts, extents = core_args()
    bad = {"int32": lambda: np.zeros(coc.shape, np.int32), "float64": lambda: coc.astype(np.float64),
           "int16 strided": lambda: np.zeros((16, 32), np.int16)[:, ::2],
           "int16 wrong shape": lambda: np.zeros((16, 15), np.int16)}[coc_kind]()
    with pytest.raises(ValueError, match="coc must be"):
        _core.render(img, bad, blades, luts, extents, None, 1)
    extreme = np.full(coc.shape, -32768, np.int16)  # -512 px: every int16 is a valid radius
    extreme[::2] = 32767
    assert _core.render(img, extreme, blades, luts, extents, None, 2).shape == img.shape


def test_grid_steps_are_exact_and_keep_radii_int16_cannot_hold():
    from pybokeh.lens import MAX_STEP_RADIUS, grid_steps, round_to_kernel_grid

    rng = np.random.default_rng(4)
    coc = round_to_kernel_grid(rng.uniform(-MAX_STEP_RADIUS, MAX_STEP_RADIUS, (300, 1000)).astype(np.float32))
    steps = grid_steps(coc)
    assert steps.dtype == np.int16 and steps.shape == coc.shape
    np.testing.assert_array_equal(steps.astype(np.float32) / COC_STEPS_PER_PX, coc)
    for big in (512.0, -512.015625, 4000.0):  # beyond int16 steps: the float map comes back
        wide = coc.copy()
        wide[-1, -1] = big
        assert grid_steps(wide) is wide
    assert grid_steps(np.zeros((0, 5), np.float32)).shape == (0, 5)


@pytest.mark.parametrize("bad", [np.inf, np.nan, -0.5, 1000.5, 1e38])
def test_core_rejects_gains_outside_its_range(bad):
    img, coc, blades, luts, extents = core_args()
    gain = np.zeros(coc.shape, np.float32)
    gain[2, 2] = bad
    with pytest.raises(ValueError, match="highlight_gain"):
        _core.render(img, coc, blades, luts, extents, gain, 2)


def test_bins_are_defined_for_every_float():
    # fine_light_bin(inf) was -1 (frexp's exponent), an index before the histogram.
    for value, expected in ((math.nan, 0), (-3.0, 0), (1.9, 0), (2.0, 1), (1e30, km.FINE_LIGHT_BINS - 1),
                            (math.inf, km.FINE_LIGHT_BINS - 1)):
        assert km.fine_light_bin(np.float32(value)) == expected
    assert km.radius_bin(1e30, km.MAX_BINS_PER_SIDE, km.LAYER_EDGES) == km.MAX_BINS_PER_SIDE - 1


# ------------------------------------------------------------- 2. threads and memory

@pytest.mark.parametrize("threads,error", [(2**40, ValueError), (0, ValueError), (MAX_THREADS + 1, ValueError),
                                           (1.5, TypeError), (True, TypeError), ("2", TypeError)])
def test_bad_thread_counts_raise_clear_errors(threads, error):
    img, d = issue_scene()
    with pytest.raises(error, match="threads"):
        pybokeh.render(img, d, 0.5, threads=threads, backend="cpp")
    img8, coc, blades, luts, extents = core_args()
    with pytest.raises(error, match="threads"):
        _core.render(img8, coc, blades, luts, extents, None, threads)


def test_numpy_integer_thread_counts_are_accepted():
    img, d = issue_scene()
    a = pybokeh.render(img, d, 0.5, threads=np.int64(3), backend="cpp")
    b = pybokeh.render(img, d, 0.5, threads=np.uint8(1), backend="numba")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def limit_address_space(extra_mb: int) -> str:
    """Code that caps the address space at what the process maps now plus ``extra_mb``."""
    return f"""
    import os, resource
    mapped = int(open('/proc/self/statm').read().split()[0]) * os.sysconf('SC_PAGE_SIZE')
    resource.setrlimit(resource.RLIMIT_AS, (mapped + {extra_mb} * 2**20, mapped + {extra_mb} * 2**20))
    """


# AddressSanitizer maps terabytes of shadow memory: no address-space limit fits beside it.
needs_address_space_limits = pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                                                reason="RLIMIT_AS cannot be set under AddressSanitizer")


@needs_address_space_limits
def test_allocation_failures_in_worker_threads_raise_memory_error():
    # std::bad_alloc in a worker thread used to call std::terminate (exit 134).  Under a
    # range of address-space limits the render must either finish or raise MemoryError.
    setup = """
    import numpy as np
    from pybokeh import Aperture, _core
    n = 2000
    img = np.zeros((n, n, 3), np.uint8); img[::7, ::5] = 255
    coc = np.tile(np.linspace(-30, 30, n, dtype=np.float32), (n, 1))
    gain = np.zeros((n, n), np.float32); gain[::7, ::5] = 8.0
    luts, ext = Aperture().kernel_tables()
    """
    render = """
    try:
        _core.render(img, coc, 0, luts, ext, gain, 2)
        print("rendered")
    except MemoryError:
        print("MemoryError")
    """
    outcomes = set()
    for extra_mb in (30, 60, 100, 140, 180, 240, 320, 1000):
        code = textwrap.dedent(setup) + textwrap.dedent(limit_address_space(extra_mb)) + textwrap.dedent(render)
        result = run_python(code)
        assert result.returncode == 0, f"+{extra_mb} MB: exit {result.returncode}\n{result.stderr[-2000:]}"
        outcomes.add(result.stdout.strip())
    assert outcomes == {"rendered", "MemoryError"}, outcomes  # the sweep reached both ends


@needs_address_space_limits
def test_threads_that_cannot_start_leave_their_work_to_the_others():
    # threads=1000 under a memory cap: thread stacks cannot all be mapped (std::system_error
    # used to terminate the process); the threads that did start finish the render.
    setup = """
    import numpy as np
    from pybokeh import Aperture, _core
    n = 400
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (n, n, 3), dtype=np.uint8)
    coc = np.tile(np.linspace(-12, 12, n, dtype=np.float32), (n, 1))
    luts, ext = Aperture().kernel_tables()
    b = _core.render(img, coc, 0, luts, ext, None, 1)
    """
    render = """
    try:
        a = _core.render(img, coc, 0, luts, ext, None, 1000)
        print("same" if np.array_equal(a, b) else "different")
    except MemoryError:  # the started threads took the memory a band needed: fine, no abort
        print("MemoryError")
    """
    outcomes = []
    for extra_mb in (200, 400, 800):  # room for the render and 20-100 thread stacks of 8 MB, not for 400
        result = run_python(textwrap.dedent(setup) + textwrap.dedent(limit_address_space(extra_mb)) +
                            textwrap.dedent(render))
        assert result.returncode == 0, f"+{extra_mb} MB: exit {result.returncode}\n{result.stderr[-2000:]}"
        outcomes.append(result.stdout.strip())
    assert "different" not in outcomes and "same" in outcomes, outcomes


def test_numba_renders_from_several_python_threads_under_the_workqueue_layer():
    # Numba's workqueue layer aborts ("Concurrent access has been detected") when two
    # threads enter parallel code at once; the backend serialises calls under it.
    code = """
    import threading
    import numpy as np
    import numba
    import pybokeh
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    depth = np.tile(np.linspace(0, 1, 64), (48, 1))
    expected = pybokeh.render(img, depth, 0.5, backend="numba", threads=2)
    results = []
    def work():
        for _ in range(3):
            results.append(pybokeh.render(img, depth, 0.5, backend="numba", threads=2))
    workers = [threading.Thread(target=work) for _ in range(4)]
    for t in workers: t.start()
    for t in workers: t.join()
    assert len(results) == 12 and all(np.array_equal(r, expected) for r in results)
    print(numba.threading_layer())
    """
    result = run_python(code, env={"NUMBA_THREADING_LAYER": "workqueue"})
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-2000:]}"
    assert result.stdout.strip() == "workqueue"


# ------------------------------------------------------------------ 8. minor API items

@pytest.mark.parametrize("focus", [math.inf, -math.inf])
def test_infinite_disparity_focus_names_the_focus(focus):
    img, d = issue_scene()
    with pytest.raises(ValueError, match="focus must be finite"):
        pybokeh.render(img, d, focus)


def test_huge_rotation_keeps_the_polygon():
    # 90 + 1e30 + 360 k / blades rounded every vertex to one angle: a zero-area aperture
    # that cpp rejected and numba rendered.
    ap = Aperture(6, 1e30)
    assert -1.0 <= ap.ext_lo < 0.0 < ap.ext_hi <= 1.0 and -360 < ap.rotation_deg < 360
    assert Aperture(5, 370.0).ext_lo == pytest.approx(Aperture(5, 10.0).ext_lo)


@pytest.mark.parametrize("blades", [0, 5, 6])
def test_coverage_stamp_runs_write_inside_the_row(blades):
    """A run of coverage splats starts at any column in [x0, x1] and writes its first markers
    at ``column + index``: all must fall in the row's ``gw + 1`` cells.  A splat ending
    exactly on the image edge (column 7 + radius 2.5 = 9.5 in a 10-wide row) has a
    zero-weight marker one cell past it; the C++ twin wrote it out of bounds (AddressSanitizer,
    tests/renderer/test_sanitizers.py), Numba writes unchecked."""
    from pybokeh import Aperture
    from pybokeh.renderer import numba_backend as nb

    luts, extents = Aperture(blades, 10.0).kernel_tables()
    rows = nb.STAMP_ROWS
    for gw, r in [(10, 2.5), (10, 1.5), (64, 7.5), (64, 3.2), (9, 4.0), (33, 8.0)]:  # grid radius <= 8
        for side in (0, 1):
            m = np.zeros(rows, np.int64)
            idx = np.zeros((rows, 4), np.int64)
            w = np.zeros((rows, 4), np.float32)
            _, x0, x1 = nb._build_stamp(np.float32(r), 1.0, gw, np.float32(gw - 0.5), blades, luts[side],
                                        extents[side, 0], extents[side, 1], m, idx, w)
            used = m > 0
            assert used.any()
            lo = min(idx[k, 0] for k in np.nonzero(used)[0])
            hi = max(idx[k, m[k] - 1] for k in np.nonzero(used)[0])
            if x0 <= x1:
                assert x0 + lo >= 0 and x1 + hi <= gw, (gw, r, x0, x1, lo, hi)
