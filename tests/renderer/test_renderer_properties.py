"""Invariants of the renderer, checked on random inputs (hypothesis) for every CPU backend.

- pixels whose |CoC| < 0.5 px and that nothing in front covers come out unchanged;
- a constant image stays constant, whatever the depth map and aperture;
- brightness (linear-light energy) is conserved;
- a point light spreads into the aperture's shape at the CoC radius.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybokeh.aperture import Aperture
from pybokeh.highlights import highlight_gain_map
from pybokeh.color import srgb_to_linear
from pybokeh.renderer import kernel_math as km
from pybokeh.renderer.dispatch import get_backend

from conftest import blocky_coc, random_image

BACKENDS = ["cpp", "numba"]
DTYPES = [np.uint8, np.uint16, np.float32]
blades_st = st.sampled_from([0, 3, 5, 6, 8, 16])


def kernel(name):
    return get_backend(name)[1]


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), dtype=st.sampled_from(DTYPES), blades=blades_st, gain=st.floats(0, 10))
def test_all_in_focus_is_identity(backend, seed, dtype, blades, gain):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(2, 60, size=2))
    image = random_image(rng, shape, dtype)
    image[rng.random(shape) < 0.1] = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    coc = rng.uniform(-0.499, 0.499, shape).astype(np.float32)
    out = kernel(backend)(image, coc, Aperture(blades, 10.0), np.full(coc.shape, gain, np.float32), 2)
    if dtype == np.float32:
        np.testing.assert_allclose(out, image, atol=2e-6)  # decode/encode tables
    else:
        np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), blades=blades_st, radius=st.floats(1.0, 40.0))
def test_in_focus_subject_untouched_by_background(backend, seed, blades, radius):
    # Everything behind the focus plane: no background colour may reach the subject.
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(20, 70)), int(rng.integers(20, 70)))
    image = random_image(rng, shape)
    coc = -np.abs(blocky_coc(rng, shape, radius)) - 0.6
    y0, x0 = rng.integers(0, shape[0] - 5), rng.integers(0, shape[1] - 5)
    subject = np.zeros(shape, bool)
    subject[y0:y0 + rng.integers(3, 20), x0:x0 + rng.integers(3, 20)] = True
    coc[subject] = rng.uniform(-0.49, 0.49, subject.sum())
    out = kernel(backend)(image, coc.astype(np.float32), Aperture(blades), np.full(coc.shape, 2.0, np.float32), 2)
    np.testing.assert_array_equal(out[subject], image[subject])
    assert not np.array_equal(out[~subject], image[~subject])


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), dtype=st.sampled_from(DTYPES), blades=blades_st,
       radius=st.floats(0.0, 100.0), gain=st.floats(0, 10))
def test_constant_image_stays_constant(backend, seed, dtype, blades, radius, gain):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(2, 80)), int(rng.integers(2, 80)))
    top = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    colour = rng.random(3) * top
    if rng.random() < 0.3:
        colour[rng.integers(3)] = top  # clipped: boosted everywhere, still constant
    image = np.empty((*shape, 3), dtype)
    image[...] = colour.astype(dtype) if dtype == np.float32 else np.round(colour).astype(dtype)
    coc = blocky_coc(rng, shape, radius)
    out = kernel(backend)(image, coc, Aperture(blades, 33.0), highlight_gain_map(image, gain, coc), 2)
    # Exact in 8 bits.  Float32 accumulation leaves relative errors of a few
    # 1e-5 where a layer's own coverage is small (its colour is then a ratio
    # of two small sums): up to 4 of 65535 levels in 16 bits, 5e-5 in float.
    if dtype == np.float32:
        np.testing.assert_allclose(out, image, atol=5e-5)
    elif dtype == np.uint16:
        assert np.abs(out.astype(np.int64) - image).max() <= 4
    else:
        np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31), blades=blades_st, radius=st.floats(0.6, 30.0), rotation=st.floats(0, 360))
def test_brightness_is_conserved(backend, seed, blades, radius, rotation):
    # One depth layer over a black frame wide enough that no light reaches the
    # band within one radius of the border (where coverage, truncated by the
    # frame, is renormalised): the linear-light sum must not change (float32
    # output, no boost).
    rng = np.random.default_rng(seed)
    cell = 2 ** km.layer_level(km.MAX_BINS_PER_SIDE + 1 + km.radius_bin(radius, km.MAX_BINS_PER_SIDE, km.LAYER_EDGES),
                               km.MAX_BINS_PER_SIDE, km.LAYER_EDGES)
    pad = 2 * int(np.ceil(radius)) + 3 + 2 * cell  # coarse grids reach one cell further each way
    inner = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
    shape = (inner[0] + 2 * pad, inner[1] + 2 * pad)
    image = np.zeros((*shape, 3), np.float32)
    image[pad:-pad, pad:-pad] = rng.random((*inner, 3)) * 0.99
    coc = np.full(shape, radius * (1 if rng.random() < 0.5 else -1), np.float32)
    out = kernel(backend)(image, coc, Aperture(blades, rotation), None, 2)
    before = srgb_to_linear(image).sum(dtype=np.float64)
    after = srgb_to_linear(out).sum(dtype=np.float64)
    assert after == pytest.approx(before, rel=2e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("blades,rotation", [(0, 0.0), (6, 0.0), (5, 36.0), (3, 0.0)])
@pytest.mark.parametrize("radius", [3.3, 12.0, 21.7])
def test_point_light_takes_the_aperture_shape(backend, blades, rotation, radius):
    cell = 2 ** km.layer_level(km.MAX_BINS_PER_SIDE + 1 + km.radius_bin(radius, km.MAX_BINS_PER_SIDE, km.LAYER_EDGES),
                               km.MAX_BINS_PER_SIDE, km.LAYER_EDGES)
    # Margin: the light must not reach the band along the frame (one radius
    # deep) where truncated coverage is renormalised.
    size = 4 * int(radius) + 8 * cell + 21
    c = size // 2
    image = np.zeros((size, size, 3), np.float32)
    image[c, c] = 1.0
    coc = np.full((size, size), -radius, np.float32)
    out = kernel(backend)(image, coc, Aperture(blades, rotation), None, 2)
    lit = srgb_to_linear(out)[..., 0]
    # Light stays within the CoC circle, plus 1 px of antialiasing or, for
    # radii splatted on a coarser grid, a half-diagonal of antialiasing and one cell of
    # bilinear upsampling (float residue of the row integration, ~1e-8 of the
    # peak, is not light) ...
    ys, xs = np.nonzero(lit > 1e-5 * lit.max())
    assert np.hypot(ys - c, xs - c).max() <= radius + (1.0 if cell == 1 else 1.75 * cell)
    # ... fills the aperture: the lit area matches the shape's area.
    if blades == 0:
        area = np.pi * radius**2
    else:
        area = 0.5 * blades * radius**2 * np.sin(2 * np.pi / blades)
    assert (lit > 0.5 * lit.max()).sum() == pytest.approx(area, rel=0.12 if radius > 10 else 0.35)
    # ... and is uniform inside (a flat disc, not a Gaussian).
    inscribed = radius * (np.cos(np.pi / blades) if blades else 1.0)
    yy, xx = np.mgrid[:size, :size]
    core = lit[np.hypot(yy - c, xx - c) <= inscribed - 1.5 - (cell if cell > 1 else 0)]
    assert core.size and core.max() <= 1.05 * core.min()
    if blades == 3 and rotation == 0.0:
        # A vertex points up: above the centre lies 4/9 of the triangle's area
        # (top/bottom = 0.8); a vertex pointing down would give 1.25.
        assert 0.6 < lit[:c].sum() / lit[c + 1:].sum() < 0.9


@pytest.mark.parametrize("backend", BACKENDS)
def test_polygon_flips_across_the_focus_plane(backend):
    # Behind the focus plane the aperture images upright (vertex up at
    # rotation 0); in front of it, point-reflected (vertex down), like a lens.
    size, c, radius = 61, 30, 6.0
    image = np.zeros((size, size, 3), np.float32)
    image[c, c] = 1.0
    ratios = []
    for sign in (-1, 1):
        coc = np.full((size, size), sign * radius, np.float32)
        lit = srgb_to_linear(kernel(backend)(image, coc, Aperture(3), None, 2))[..., 0]
        ratios.append(lit[:c].sum() / lit[c + 1:].sum())
    assert ratios[0] < 0.9 and ratios[1] > 1.1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("blades", [0, 6])
@pytest.mark.parametrize("radius", [12.0, 27.0, 61.0])
def test_highlight_discs_have_crisp_rims(backend, blades, radius):
    # Radii above 8 px are splatted on coarser grids, whose cells would soften
    # a disc's rim by ~2 cells (8-16 px at these radii); a boosted highlight
    # keeps a full-resolution splat, so its disc has the antialiased rim of a
    # real lens: across the centre row, light rises from 10 % to 90 % of the
    # disc's level within 2 px, at the CoC radius.
    size = 2 * int(radius) + 41
    c = size // 2
    image = np.full((size, size, 3), 5000, np.uint16)
    image[c, c] = 65535
    coc = np.full((size, size), -radius, np.float32)
    out = kernel(backend)(image, coc, Aperture(blades), highlight_gain_map(image, 16.0, coc), 2)
    lit = srgb_to_linear(out.astype(np.float32) / 65535.0)[..., 1]
    row = lit[c] - lit[0, 0]
    level = np.median(row[c - int(radius) // 2:c + int(radius) // 2 + 1])
    assert level > 0
    for side in (row[:c + 1][::-1], row[c:]):  # from the centre outwards
        above = np.nonzero(side >= 0.9 * level)[0].max()
        below = np.nonzero(side <= 0.1 * level)[0].min()
        assert below - above <= 2
        if blades == 0:
            assert abs(0.5 * (above + below) - radius) <= 1.0
