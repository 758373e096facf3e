"""The highlight model (pybokeh.highlights): energy back to under-recorded lights only.

Each property is checked on NumPy arrays and, where torch is installed, on CPU tensors
(the same code runs on the GPU path).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import pybokeh
from pybokeh.color import srgb_to_linear
from pybokeh.highlights import (AREA_SHARE, CLIP_RAMP, DEFAULT_HIGHLIGHT_BOOST, SPREAD_RAMP, clipped_mask,
                                highlight_gain_map)

G = 16.0
LIBRARIES = ["numpy", pytest.param("torch", marks=pytest.mark.skipif(
    pytest.importorskip("numpy") is None or __import__("importlib").util.find_spec("torch") is None,
    reason="torch is not installed"))]


def gains(image, coc, strength=G, library="numpy"):
    """The gain map as a NumPy array, computed by ``library``."""
    if library == "torch":
        import torch

        out = highlight_gain_map(torch.from_numpy(np.ascontiguousarray(image)), strength, torch.from_numpy(coc))
        return None if out is None else out.numpy()
    return highlight_gain_map(image, strength, coc)


def dark_frame(shape=(80, 120), value=12, dtype=np.uint8):
    return np.full((*shape, 3), value, dtype)


def blur(shape, r):
    return np.full(shape, -r, np.float32)


@pytest.mark.parametrize("library", LIBRARIES)
def test_no_clipping_or_no_boost_gives_none(library):
    image = dark_frame()
    image[10, 10] = int(255 * (1 - CLIP_RAMP))  # just below the clip ramp
    assert gains(image, blur(image.shape[:2], 10), library=library) is None
    image[20, 20] = 255
    assert gains(image, blur(image.shape[:2], 10), 0.0, library=library) is None
    assert gains(image, blur(image.shape[:2], 10), library=library) is not None


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_a_white_light_in_the_dark_gets_nearly_the_full_boost(library, dtype):
    top = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    image = (dark_frame(dtype=np.float32, value=0.02) * top).astype(dtype)
    image[40, 60] = top
    g = gains(image, blur(image.shape[:2], 12), library=library)
    assert g.dtype == np.float32 and g.shape == image.shape[:2]
    assert 0.8 * G < g[40, 60] <= G  # a lone pixel: point-likeness 1 / (1 + 1/9)
    assert np.count_nonzero(g) == 1


@pytest.mark.parametrize("library", LIBRARIES)
def test_saturated_colours_are_surfaces_not_lights(library):
    # A red jacket (R clipped, G and B low) is no light: it must not bloom into white,
    # whether it is a small patch or a large area.
    image = dark_frame()
    image[10:14, 10:14] = (255, 30, 20)      # small saturated patch
    image[30:70, 50:110] = (255, 40, 10)     # large saturated area
    image[50, 20] = (230, 255, 20)           # a yellow-green speck clipped in one channel
    g = gains(image, blur(image.shape[:2], 12), library=library)
    assert g.max() < 0.12 * G


@pytest.mark.parametrize("library", LIBRARIES)
def test_warm_lights_clipped_in_one_channel_are_lights(library):
    # Fairy lights on a phone: red clipped, green and blue high (near-white, warm).
    image = dark_frame()
    for x in range(20, 100, 8):
        image[40, x] = (255, 222, 170)
    g = gains(image, blur(image.shape[:2], 12), library=library)
    assert g[40, 20:100:8].min() > 0.7 * G


@pytest.mark.parametrize("library", LIBRARIES)
def test_large_clipped_areas_get_a_moderate_share_only_when_white(library):
    image = dark_frame(shape=(120, 160))
    image[:60] = 255                          # an overexposed white sky over a dark ground
    g = gains(image, blur(image.shape[:2], 12), library=library)
    # Its edge (where the dark ground is near) glows as a sky a few times the clip would;
    # deep inside, nothing unclipped is near (s = 1) and the output clips anyway.
    edge = g[59, 20:140]
    assert g.max() <= AREA_SHARE * G + 1e-4 and edge.min() > 0.5 * AREA_SHARE * G
    image[:60] = (205, 230, 255)              # a pale blue sky with only blue clipped
    g = gains(image, blur(image.shape[:2], 12), library=library)
    assert g.max() < 0.02 * G


@pytest.mark.parametrize("library", LIBRARIES)
def test_bright_surroundings_reduce_the_boost(library):
    image = dark_frame()
    image[:, 60:] = 200                       # a bright cloud on the right
    image[40, 20] = 255
    image[40, 100] = 255
    g = gains(image, blur(image.shape[:2], 12), library=library)
    assert g[40, 100] < 0.8 * g[40, 20]  # sqrt(1 - s): 0.65 for this cloud


@pytest.mark.parametrize("library", LIBRARIES)
def test_lights_near_the_focus_plane_do_not_become_sparks(library):
    # The light term ramps in over |CoC| 2-6 px, and no pixel may be boosted beyond
    # filling its own blur disc at the clip level (pi r^2 - 1).
    image = dark_frame()
    image[40, 20:100:10] = 255
    coc = np.zeros(image.shape[:2], np.float32)
    radii = [0.3, 0.8, 1.5, 2.0, 3.0, 4.0, 6.0, 9.0]
    for x, r in zip(range(20, 100, 10), radii):
        coc[:, x] = r
    g = gains(image, coc, library=library)[40, 20:100:10]
    for value, r in zip(g, radii):
        assert value <= max(0.0, math.pi * r * r - 1.0) + 1e-5
        if r <= SPREAD_RAMP[0]:  # only the small area share of a lone pixel remains
            assert value < 0.2 * AREA_SHARE * G
    assert g[-1] > 0.8 * G and np.all(np.diff(g) >= -1e-6)


def test_torch_and_numpy_agree_on_random_images():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    for dtype in (np.uint8, np.uint16, np.float32):
        for shape in ((64, 96), (37, 211), (5, 3), (1, 2)):
            unit = rng.random((*shape, 3), dtype=np.float32) * 0.95
            unit[: shape[0] // 2] *= 0.1
            unit[rng.random(shape) < 0.05] = 1.0
            unit[rng.random(shape) < 0.05, rng.integers(0, 3)] = rng.uniform(0.97, 1.0)
            image = unit if dtype == np.float32 else np.round(unit * np.iinfo(dtype).max).astype(dtype)
            image.reshape(-1, 3)[0] = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
            coc = (rng.random(shape, dtype=np.float32) - 0.5) * 30
            ref = highlight_gain_map(image, G, coc)
            out = highlight_gain_map(torch.from_numpy(image), G, torch.from_numpy(coc)).numpy()
            np.testing.assert_array_equal(out > 0, ref > 0)
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("shape,density", [((40, 60), 0.02), ((40, 60), 0.3), ((1, 9), 0.5), ((23, 1), 0.5),
                                           ((17, 31), 1.0)])
def test_sparse_and_dense_window_counts_agree(library, shape, density):
    # Few clipped pixels are counted from their sorted keys, many through an integral image:
    # the same exact counts either way, windows at the image edges included.
    from pybokeh.arrays import namespace
    from pybokeh.highlights import CLUSTER_RADIUS, POINT_RADIUS, _window_counter

    rng = np.random.default_rng(int(density * 100) + shape[0])
    candidates = rng.random(shape) < density
    mask = candidates & (rng.random(shape) < 0.7)
    if library == "torch":
        import torch
        candidates, mask = torch.from_numpy(candidates), torch.from_numpy(mask)
    ops = namespace(mask)
    ys, xs = ops.nonzero(candidates)
    inside = mask[ys, xs]
    for k in (POINT_RADIUS, CLUSTER_RADIUS, 0):
        sparse = _window_counter(inside, ys, xs, shape, ops, sparse=True)(ys, xs, k)
        dense = _window_counter(inside, ys, xs, shape, ops, sparse=False)(ys, xs, k)
        sparse, dense = (np.asarray(a) for a in (sparse, dense))
        m = np.asarray(mask).astype(int)
        brute = [m[max(0, y - k):y + k + 1, max(0, x - k):x + k + 1].sum()
                 for y, x in zip(np.asarray(ys), np.asarray(xs))]
        np.testing.assert_array_equal(sparse, brute)
        np.testing.assert_array_equal(dense, brute)


def test_the_gain_scales_with_highlight_boost():
    image = dark_frame()
    image[40, 60] = 255
    image[10:30, 10:40] = 255
    coc = blur(image.shape[:2], 12)
    np.testing.assert_allclose(gains(image, coc, 2 * G), 2 * gains(image, coc, G), rtol=1e-6)


def test_boosted_light_becomes_a_bright_disc():
    image = np.full((81, 81, 3), 20, np.uint8)
    image[40, 40] = 255                               # a small clipped light
    depth = np.zeros((81, 81), np.float32)
    depth[0, 0] = 1.0                                 # the map's near end; the light sits at its far end
    plain = pybokeh.render(image, depth, 1.0, max_blur=10, highlight_boost=0.0)
    boosted = pybokeh.render(image, depth, 1.0, max_blur=10)
    energy = lambda im: srgb_to_linear(im / np.float32(255)).sum()
    # The default boost gives back several times the light's energy ...
    assert energy(boosted) - energy(plain) > 0.8 * DEFAULT_HIGHLIGHT_BOOST * 0.9
    # ... spread as a flat disc of the CoC radius (10 px), not a point.
    lum = srgb_to_linear(boosted / np.float32(255))[..., 1]
    assert lum[40, 40 + 7] > 0.5 * lum[40, 40] and lum[40, 40 + 13] < 0.05 * lum[40, 40] + 0.01


@pytest.mark.parametrize("shape", [(501, 701), (1333, 2000), (9, 2000)])
def test_sizes_not_divisible_by_the_sampling_step(shape):
    # The surroundings are sampled every few pixels; the last, partial block
    # of an odd-sized image must still have a sample.
    image = np.zeros((*shape, 3), np.uint8)
    image[-1, -1] = image[0, 0] = 255
    g = highlight_gain_map(image, G, blur(shape, 12))
    assert g[-1, -1] > 0.8 * G and g[0, 0] > 0.8 * G


def test_clipped_mask_marks_any_channel_at_the_top():
    image = np.zeros((2, 3, 3), np.uint16)
    image[0, 1, 2] = 65535
    np.testing.assert_array_equal(clipped_mask(image), [[False, True, False], [False, False, False]])


def documented_gains(image: np.ndarray, coc: np.ndarray, strength: float) -> np.ndarray:
    """The module doc's formula, written out here in float64 with literal constants and
    plain windows (for images whose surroundings window is at most 4 px, where the
    renderer samples every pixel)."""
    h, w = image.shape[:2]
    unit = image.astype(np.float64) / 255.0
    lin = np.where(unit <= 0.04045, unit / 12.92, ((unit + 0.055) / 1.055) ** 2.4)
    k = np.clip((unit - 0.98) / 0.02, 0.0, 1.0)             # clip ramp 98 % .. 100 %
    q, n = k.max(axis=-1), k.mean(axis=-1)
    light = np.maximum(np.clip((lin.min(-1) / lin.max(-1) - 0.1) / 0.3, 0.0, 1.0), n * n)
    clipped = image.max(axis=-1) >= 253                     # at the top (within half the ramp)
    unclipped = image.max(axis=-1) < 255
    lum = lin @ np.array([0.2126, 0.7152, 0.0722])
    radius = max(2, round(0.01 * math.hypot(h, w)))
    assert radius <= 4

    def window(a, y, x, k):
        return a[max(0, y - k):y + k + 1, max(0, x - k):x + k + 1]

    gain = np.zeros((h, w))
    for y, x in zip(*np.nonzero(q > 0)):
        blob = window(clipped, y, x, 3).sum()
        cluster = window(clipped, y, x, 8).sum() / 17 ** 2
        point = 1.0 / (1.0 + blob / 9.0) * np.clip(1.0 - cluster / 0.15, 0.0, 1.0) ** 2
        around = window(unclipped, y, x, radius)
        s = window(lum, y, x, radius)[around].mean() if around.any() else 1.0
        r = abs(float(coc[y, x]))
        spread = np.clip((r - 2.0) / 4.0, 0.0, 1.0)
        g = q[y, x] * strength * (light[y, x] * point * math.sqrt(1.0 - s) * spread
                                  + 0.25 * n[y, x] ** 4 * (1.0 - point) * (1.0 - s) ** 2)
        gain[y, x] = min(g, max(math.pi * r * r - 1.0, 0.0))
    return gain


@pytest.mark.parametrize("library", LIBRARIES)
def test_gain_is_the_documented_formula(library):
    """Every factor of the formula in its interior (0 < q, n, L, P, s, R < 1), the area
    term and the cap, against the formula written out independently above."""
    image = dark_frame(shape=(60, 80), value=60)
    image[20, 20] = (255, 250, 240)     # near-white light: n = (1 + 1/51) / 3 (a channel on the ramp)
    image[10, 60] = (255, 200, 150)     # warm light: L = (0.305 - 0.1) / 0.3, between surface and light
    image[5, 40] = (255, 255, 40)       # yellow, clipped in two channels: L = n^2 = 4/9 (white = 0)
    image[40, 12] = (252, 252, 252)     # on the clip ramp only: q = 0.41, not counted as clipped
    image[42:45, 50:53] = 255           # a 3x3 white blob: P = 1/2 (1 - 9/289/0.15)^2, area term
    image[50:53, 70:73] = 255           # the same blob next to the focus plane: the cap pi r^2 - 1 binds
    image[30:35, 30:35] = 170           # bright surroundings for the light below them
    image[36, 32] = 255
    coc = np.full(image.shape[:2], -4.0, np.float32)    # spread ramp halfway: R = 1/2
    coc[10, 60] = 7.5                                   # R = 1 (in front of the focus plane)
    coc[42:45, 50:53] = -12.0
    coc[50:53, 70:73] = 1.2                             # cap pi 1.44 - 1 = 3.52 px² of extra energy
    strength = 100.0
    got = gains(image, coc, strength, library=library)
    want = documented_gains(image, coc, strength)
    np.testing.assert_array_equal(got > 0, want > 0)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-5)
    # The light at (20, 20) by hand: q = 1, L = 1, n on the ramp, P of a lone pixel, s of the
    # uniform surroundings, R = 1/2; and the blob's cap.
    n = (1.0 + (250 / 255 - 0.98) / 0.02) / 3.0
    point = 0.9 * (1.0 - 1.0 / 289.0 / 0.15) ** 2
    s = ((60 / 255 + 0.055) / 1.055) ** 2.4
    assert 0.3 < n < 0.4 and 0.04 < s < 0.05
    assert want[20, 20] == pytest.approx(
        strength * (point * math.sqrt(1.0 - s) * 0.5 + 0.25 * n ** 4 * (1.0 - point) * (1.0 - s) ** 2), rel=1e-9)
    assert want[50, 70] == pytest.approx(math.pi * 1.2 ** 2 - 1.0)
    q = (252 / 255 - 0.98) / 0.02
    s_ramp = (24 * s + ((252 / 255 + 0.055) / 1.055) ** 2.4) / 25   # it lights its own surroundings
    assert want[40, 12] == pytest.approx(strength * q * math.sqrt(1.0 - s_ramp) * 0.5, rel=1e-9)


_GAIN_MAP_RSS = """
import gc, json
import numpy as np
from pybokeh.highlights import highlight_gain_map

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))

h, w = 3000, 4000
image = np.full((h, w, 3), 20, np.uint8)
rng = np.random.default_rng(0)
ys, xs = rng.integers(0, h, 500), rng.integers(0, w, 500)
image[ys, xs] = 255
coc = np.full((h, w), -12.0, np.float32)
highlight_gain_map(image[:64, :64], 16.0, coc[:64, :64])  # imports and first-call allocations
gc.collect()
before = rss()
gain = highlight_gain_map(image, 16.0, coc)
after = rss()
print(json.dumps({"grew": after - before, "nonzero": int(np.count_nonzero(gain)), "lit": len(set(zip(ys, xs))),
                  "first": float(gain[ys[0], xs[0]]), "shape": list(gain.shape), "dtype": str(gain.dtype)}))
"""


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_gain_map_commits_memory_only_around_its_lights():
    # A 12 MP gain map is 48 MB of float32 zeros with a few thousand entries; only the pages holding
    # those entries may become resident (NumPy's huge pages made the whole map resident after ~24
    # writes: the process grew by 46 MB).  Measured in a fresh process, where nothing else allocates.
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _GAIN_MAP_RSS], capture_output=True, text=True, timeout=120,
                          check=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["shape"] == [3000, 4000] and r["dtype"] == "float32" and r["nonzero"] == r["lit"] and r["first"] > 0
    assert r["grew"] <= 16 * 2**20, f"computing a sparse gain map grew the process by {r['grew'] / 2**20:.0f} MB"


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)])
@pytest.mark.parametrize("hits", [0, 1, 7, 300, 20000])  # a few lights (packed words) to blown-out areas
@pytest.mark.parametrize("order", ["C", "F"])
def test_pixels_above_a_threshold_are_the_plain_nonzero(dtype, top, hits, order):
    from pybokeh.arrays import namespace
    from pybokeh.highlights import _pixels_above

    rng = np.random.default_rng(hits)
    shape = (173, 229, 3)
    image = (rng.random(shape) * 0.9 * top).astype(dtype)
    pixels = rng.integers(0, shape[0] * shape[1], hits)
    image.reshape(-1, 3)[pixels, rng.integers(0, 3, hits)] = top  # one channel of each hit clipped
    image = np.asarray(image, order=order)
    threshold = 0.95 * top
    ys, xs = _pixels_above(image, threshold, namespace(image))
    expect = np.nonzero(image.max(axis=2) > threshold)
    np.testing.assert_array_equal(ys, expect[0])
    np.testing.assert_array_equal(xs, expect[1])


def test_gains_from_grid_steps_are_the_gains_from_the_rounded_map():
    # render() finds the candidates while it computes the CoC map, then reads the radii from the
    # int16 steps the C++ kernel takes: the same gains as the one-step map of the float radii.
    from pybokeh.highlights import highlight_candidates, highlight_gains
    from pybokeh.lens import grid_steps, round_to_kernel_grid

    rng = np.random.default_rng(5)
    image = (rng.random((90, 130, 3)) * 200).astype(np.uint8)
    image[rng.random((90, 130)) < 0.03] = 255
    coc = round_to_kernel_grid(rng.uniform(-12, 12, (90, 130)).astype(np.float32))
    expected = highlight_gain_map(image, G, coc)
    candidates = highlight_candidates(image, G)
    np.testing.assert_array_equal(highlight_gains(candidates, coc), expected)
    steps = grid_steps(coc.copy())
    assert steps.dtype == np.int16
    np.testing.assert_array_equal(highlight_gains(candidates, steps), expected)
    assert highlight_candidates(image, 0.0) is None and highlight_gains(None, coc) is None
