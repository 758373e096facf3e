"""Renderer speed on a 12-megapixel frame (4032×3024) at max CoC radius 16, 32 and 64 px.

`cpp` and `numba` render the full frame through the public `pybokeh.render`
(input checks, CoC map, highlight map and kernel).  The naive O(N·r²) gather
baseline runs on a 256×256 crop; `extra_info["scaled_to_frame_s"]` scales its
time to the frame by its work, Σ(πr² + 1) over the frame's pixels against the
crop's.  Run:

    pytest bench/bench_render.py --benchmark-only --benchmark-json=bench-render.json
    python bench/summarize.py bench-render.json
"""
from __future__ import annotations

import numba
import numpy as np
import pytest

import pybokeh
from pybokeh.color import srgb_to_linear

H, W = 3024, 4032
CROP = 256
RADII = (16, 32, 64)


def frame():
    """A deterministic test frame: textured photo-like image and a disparity map
    with a ramp (ground), a subject and foreground objects, spanning the whole
    range of radii."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:H, :W].astype(np.float32)
    base = (np.sin(xx / 37.0) * np.cos(yy / 23.0) * 0.25 + 0.5)[..., None] * np.array([0.9, 0.7, 0.5], np.float32)
    image = np.clip(base + rng.normal(0, 0.08, (H, W, 3)).astype(np.float32), 0, 1)
    lights = rng.integers(0, H * W, 2000)
    image.reshape(-1, 3)[lights] = 1.0                                  # clipped point lights
    image = (image * 255 + 0.5).astype(np.uint8)
    disparity = yy / H                                                   # ground plane: far at top
    disparity[np.hypot(yy - 1800, xx - 2000) < 700] = 0.5              # subject
    disparity[np.hypot(yy - 2900, xx - 500) < 400] = 1.0               # foreground object
    return image, disparity.astype(np.float32)


@pytest.fixture(scope="module")
def scene():
    return frame()


@pytest.mark.parametrize("radius", RADII)
@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_render_12mp(benchmark, scene, backend, radius):
    image, disparity = scene
    benchmark.group = f"12 MP, max radius {radius} px"
    benchmark.extra_info.update(megapixels=H * W / 1e6, radius=radius, backend=backend,
                                threads=pybokeh.renderer.dispatch.default_threads())
    # focus 0.5: max |CoC| = K * 0.5 = radius
    kwargs = dict(max_blur=2.0 * radius, backend=backend)
    # Compile / warm up every path the timed renders take (all depths and radii, on a 1/16 sample).
    pybokeh.render(image[::16, ::16].copy(), disparity[::16, ::16].copy(), 0.5, **kwargs)
    out = benchmark.pedantic(pybokeh.render, args=(image, disparity, 0.5), kwargs=kwargs, rounds=3, iterations=1)
    assert out.shape == image.shape


@numba.njit(parallel=True, cache=False)
def _naive_gather(lin, coc):
    """Per-pixel disc gather with the pixel's own radius: O(N r²), no occlusion."""
    h, w = coc.shape
    out = np.empty_like(lin)
    for y in numba.prange(h):
        for x in range(w):
            r = abs(coc[y, x])
            ri = int(r)
            acc0 = acc1 = acc2 = 0.0
            n = 0.0
            for dy in range(-ri, ri + 1):
                yy = min(max(y + dy, 0), h - 1)
                for dx in range(-ri, ri + 1):
                    if dx * dx + dy * dy <= r * r:
                        xx = min(max(x + dx, 0), w - 1)
                        acc0 += lin[yy, xx, 0]
                        acc1 += lin[yy, xx, 1]
                        acc2 += lin[yy, xx, 2]
                        n += 1.0
            out[y, x, 0] = acc0 / n
            out[y, x, 1] = acc1 / n
            out[y, x, 2] = acc2 / n
    return out


@pytest.mark.parametrize("radius", RADII)
def test_naive_gather_crop(benchmark, scene, radius):
    image, disparity = scene
    y0, x0 = 2600, 900                                                  # ground and foreground object
    crop = np.ascontiguousarray(image[y0:y0 + CROP, x0:x0 + CROP])
    lin = srgb_to_linear(crop / np.float32(255))
    coc = pybokeh.coc_map(disparity, 0.5, max_blur=2.0 * radius)[y0:y0 + CROP, x0:x0 + CROP].copy()
    _naive_gather(lin[:8, :8].copy(), coc[:8, :8].copy())                # compile
    full = pybokeh.coc_map(disparity, 0.5, max_blur=2.0 * radius)
    work = lambda c: float((np.pi * np.square(c, dtype=np.float64) + 1.0).sum())  # noqa: E731
    scale = work(full) / work(coc)
    benchmark.group = f"12 MP, max radius {radius} px"
    benchmark.extra_info.update(radius=radius, backend="naive gather (crop)", crop=CROP, scale=scale)
    benchmark.pedantic(_naive_gather, args=(lin, coc), rounds=3, iterations=1)
    benchmark.extra_info["scaled_to_frame_s"] = benchmark.stats.stats.mean * scale
