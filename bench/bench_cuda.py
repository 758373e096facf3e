"""CUDA vs C++ renderer on a 12-megapixel frame (4032×3024) at max blur radius 16, 32 and 64 px.

Run (needs a CUDA device; skipped otherwise)::

    pytest bench/bench_cuda.py --benchmark-columns=min,median,max --benchmark-group-by=param:radius

Both backends render the same image and CoC map (a photo-like scene, see
tests/renderer/cuda/gpu_scenes.py).  The ``cuda`` timings are CUDA-event times on the
device, after warm-up, of the kernel on torch tensors already on the GPU
(``extra_info["cuda_event_ms_*"]``; pytest-benchmark's own wall times include
the final stream synchronisation), with the highlight gain map of the default
``highlight_boost`` precomputed on the device (``extra_info["gain_map_ms_median"]``:
computing that map, done once per ``pybokeh.render`` call).
``extra_info["speedup_vs_cpp"]`` is the ratio of medians measured in the same
run.  Target on an H100: ≤ 10 ms at r = 64 px and ≥ 50× the ``cpp`` backend.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "renderer" / "cuda"))
from gpu_scenes import random_coc, random_image  # noqa: E402

from pybokeh import Aperture  # noqa: E402
from pybokeh.highlights import DEFAULT_HIGHLIGHT_BOOST, highlight_gain_map  # noqa: E402
from pybokeh.renderer import cuda_backend, device_inputs  # noqa: E402
from pybokeh.renderer.dispatch import default_threads  # noqa: E402

torch = pytest.importorskip("torch")
_REASON = cuda_backend.unavailable_reason() or ("" if torch.cuda.is_available() else "torch has no CUDA")
pytestmark = pytest.mark.skipif(bool(_REASON), reason=f"needs a CUDA device: {_REASON}")

HEIGHT, WIDTH = 3024, 4032  # as bench/bench_render.py
RADII = (16, 32, 64)
BOOST = DEFAULT_HIGHLIGHT_BOOST
_cpp_medians: dict[int, float] = {}


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(12)
    image = random_image(rng, HEIGHT, WIDTH, np.uint8)
    cocs = {r: random_coc(rng, HEIGHT, WIDTH, float(r)) for r in RADII}
    return image, cocs, {r: highlight_gain_map(image, BOOST, cocs[r]) for r in RADII}


@pytest.mark.parametrize("radius", RADII)
def test_cpp(benchmark, frames, radius):
    from pybokeh import _core

    image, cocs, gain = frames
    ap = Aperture()
    threads = default_threads()
    benchmark.extra_info.update(backend="cpp", radius=radius, threads=threads, megapixels=HEIGHT * WIDTH / 1e6)
    luts, extents = ap.kernel_tables()
    benchmark.pedantic(_core.render, args=(image, cocs[radius], ap.blades, luts, extents, gain[radius], threads), rounds=3,
                       warmup_rounds=1)
    _cpp_medians[radius] = benchmark.stats.stats.median


@pytest.mark.parametrize("radius", RADII)
def test_cuda(benchmark, frames, radius):
    image, cocs, gain = frames
    ap = Aperture()
    img = torch.from_numpy(image).cuda()
    coc = torch.from_numpy(cocs[radius]).cuda()
    gain_t = torch.from_numpy(gain[radius]).cuda()
    out = torch.empty_like(img)

    def run():
        device_inputs.cuda_kernel(img, coc, out, ap, gain_t)

    times = _event_times(run)
    gain_times = _event_times(lambda: highlight_gain_map(img, BOOST, coc))  # done once per render() call
    info = dict(backend="cuda", radius=radius, device=torch.cuda.get_device_name(),
                megapixels=HEIGHT * WIDTH / 1e6, cuda_event_ms_min=min(times),
                cuda_event_ms_median=statistics.median(times), cuda_event_ms_max=max(times),
                gain_map_ms_median=statistics.median(gain_times))
    if radius in _cpp_medians:
        info["speedup_vs_cpp"] = _cpp_medians[radius] / (statistics.median(times) / 1000.0)
    benchmark.extra_info.update(info)
    benchmark.pedantic(run, rounds=10, warmup_rounds=2)
    # Same frame, same answer as the C++ backend (a benchmark of a wrong result is worthless).
    if radius == RADII[0]:
        from pybokeh import _core

        luts, extents = ap.kernel_tables()
        ref = _core.render(image, cocs[radius], ap.blades, luts, extents, gain, default_threads())
        d = np.abs(out.cpu().numpy().astype(int) - ref).max(axis=-1)
        assert d.max() <= 2 and np.mean(d > 1) <= 1e-4  # see assert_frame_parity in tests/renderer/cuda/cuda_checks.py


def _event_times(fn, warmup: int = 3, rounds: int = 20) -> list[float]:
    """CUDA-event times (ms) of ``fn`` on the current stream, after warm-up (module load, memory pool, clocks)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times
