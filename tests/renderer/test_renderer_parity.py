"""Backends agree: cpp and numba against the NumPy reference, and with each other.

Tolerances: the reference accumulates in float64 and encodes with the exact
sRGB formula; the kernels accumulate in float32 (rows integrated in float64)
and encode through tables.  Integer outputs may differ by one quantisation
level against the reference (rounding ties) and by at most 2/255 between
backends (the issue's bound); float outputs by 2e-3.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybokeh.aperture import Aperture
from pybokeh.highlights import highlight_gain_map
from pybokeh.renderer.dispatch import backends, get_backend
from pybokeh.renderer.reference import render_reference

from conftest import blocky_coc, random_image

CPU_BACKENDS = [b for b in ("cpp", "numba") if b in backends()]


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference in units of 1/255 of the full range."""
    scale = 255.0 / np.iinfo(a.dtype).max if a.dtype.kind == "u" else 255.0
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max() * scale)


def test_cpu_backends_present():
    # The wheel ships the compiled module and depends on Numba: both must load here.
    assert CPU_BACKENDS == ["cpp", "numba"]
    assert backends()[-1] == "numpy"


@pytest.mark.parametrize("grid", [True, False], ids=["radius-grid", "off-grid"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("blades,rotation", [(0, 0.0), (3, 0.0), (6, 17.0), (16, 5.0)])
def test_matches_reference(backend, dtype, blades, rotation, grid, rng):
    # grid: radii on render()'s grid (the cpp kernel's precomputed splats) or off it (per-pixel geometry).
    _, kernel = get_backend(backend)
    aperture = Aperture(blades, rotation)
    for shape, radius in (((23, 31), 3.0), ((37, 29), 14.0), ((20, 44), 40.0)):
        image = random_image(rng, shape, dtype)
        image[rng.random(shape) < 0.05] = np.iinfo(dtype).max if dtype != np.float32 else 1.0
        coc = blocky_coc(rng, shape, radius, grid)
        expected = render_reference(image, coc, aperture, np.full(coc.shape, 2.0, np.float32))
        got = kernel(image, coc, aperture, np.full(coc.shape, 2.0, np.float32), 2)
        assert got.dtype == image.dtype and got.shape == image.shape
        assert _diff(got, expected) <= (1.0 if dtype != np.float32 else 2e-3 * 255)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    height=st.integers(1, 70),
    width=st.integers(1, 90),
    radius=st.floats(0.0, 80.0),
    blades=st.sampled_from([0, 3, 4, 5, 6, 7, 8, 9, 12, 16]),
    rotation=st.floats(-180, 180),
    gain=st.floats(0.0, 8.0),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
    grid=st.booleans(),
)
def test_cpp_and_numba_agree(seed, height, width, radius, blades, rotation, gain, dtype, grid):
    rng = np.random.default_rng(seed)
    image = random_image(rng, (height, width), dtype)
    image[rng.random((height, width)) < 0.03] = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    coc = blocky_coc(rng, (height, width), radius, grid) if height > 1 else \
        rng.uniform(-radius, radius, (height, width)).astype(np.float32)
    aperture = Aperture(blades, rotation)
    a = get_backend("cpp")[1](image, coc, aperture, highlight_gain_map(image, gain, coc), 2)
    b = get_backend("numba")[1](image, coc, aperture, highlight_gain_map(image, gain, coc), 2)
    assert _diff(a, b) <= 2.0


def test_thread_count_does_not_change_the_result(rng):
    image = random_image(rng, (150, 97))
    coc = blocky_coc(rng, (150, 97), 30.0)
    for name in CPU_BACKENDS:
        kernel = get_backend(name)[1]
        one = kernel(image, coc, Aperture(0), highlight_gain_map(image, 1.0, coc), 1)
        many = kernel(image, coc, Aperture(0), highlight_gain_map(image, 1.0, coc), 3)
        assert np.array_equal(one, many), name


@pytest.mark.parametrize("blades", [0, 5])
def test_backends_agree_when_highlights_exceed_the_fine_budget(blades, rng):
    # Many boosted highlights of graded brightness in one wide-radius layer:
    # only the brightest stay fine (full-resolution light splats) within the
    # layer's budget, the rest go to the coarse cells.  Every backend must
    # pick the same ones.
    from pybokeh.renderer import kernel_math as km
    from pybokeh.renderer.reference import fine_lights, layer_map, linear_colors

    shape = (48, 56)
    image = random_image(rng, shape, np.uint8) // 2
    clipped = rng.random(shape) < 0.1
    image[clipped] = 255
    gain = np.where(clipped, 2.0 ** rng.uniform(0.0, 6.0, shape), 0.0).astype(np.float32)
    coc = np.full(shape, -30.0, np.float32)
    coc[:, :20] = -12.0
    aperture = Aperture(blades)
    layers, nbins = layer_map(coc)
    lin = linear_colors(image, coc, gain)
    far = layers == layers.min()
    fine = fine_lights(far, lin, km.LAYER_EDGES[km.layer_bin(int(layers.min()), nbins) + 1])
    assert 0 < fine.sum() < (clipped & far).sum()  # the budget cuts in
    expected = render_reference(image, coc, aperture, gain)
    for backend in CPU_BACKENDS:
        assert _diff(get_backend(backend)[1](image, coc, aperture, gain, 2), expected) <= 1.0, backend


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("width", [65536, 65600])
def test_columns_beyond_16_bits(backend, width, rng):
    # The per-layer pixel lists keep 16-bit columns up to 65536 px wide and wider
    # ones beyond: a wide strip's right end must render as the same end cropped
    # (one layer of one radius: nothing depends on what lies more than a few px away),
    # up to the rounding of float markers summed along 65,000 columns (one level).
    _, kernel = get_backend(backend)
    aperture = Aperture(0, 0.0)
    image = random_image(rng, (5, width))
    coc = np.full((5, width), -4.0, np.float32)
    wide = kernel(image, coc, aperture, None, 2)
    end = kernel(np.ascontiguousarray(image[:, -600:]), np.ascontiguousarray(coc[:, -600:]), aperture, None, 2)
    assert _diff(wide[:, -580:], end[:, -580:]) <= 1.0


@pytest.mark.skipif("cpp" not in CPU_BACKENDS, reason="needs the compiled module")
@pytest.mark.parametrize("seed", range(6))
def test_cpp_reads_int16_grid_steps_as_the_float_map(seed):
    # render() hands the C++ kernel its CoC map as int16 grid steps (half the memory): the same
    # radii, so the same image bit for bit, for every dtype, aperture, gain and width (the last
    # case takes the int column path, beyond 65536 px).
    from pybokeh.lens import grid_steps

    rng = np.random.default_rng(seed)
    shapes = [(1, 1), (1, 9), (37, 1), (41, 57), (90, 120), (3, 65600)]
    shape = shapes[seed]
    dtype = (np.uint8, np.uint16, np.float32)[seed % 3]
    image = random_image(rng, shape, dtype)
    image[rng.random(shape) < 0.02] = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    coc = blocky_coc(rng, shape, float(rng.uniform(1, 70)))
    steps = grid_steps(coc)
    assert steps.dtype == np.int16
    _, kernel = get_backend("cpp")
    aperture = Aperture(int(rng.choice([0, 5, 6])), float(rng.uniform(0, 90)))
    gain = highlight_gain_map(image, 4.0, coc)
    threads = int(rng.integers(1, 4))
    np.testing.assert_array_equal(kernel(image, steps, aperture, gain, threads),
                                  kernel(image, coc, aperture, gain, threads))


def test_numba_column_buckets_narrow_and_wide_agree(rng, monkeypatch):
    # Numba keeps the columns of its pixel buckets as uint16 up to 65536 columns and as int32
    # beyond; on a strip of 65536 columns both types render the same image, bit for bit.
    from pybokeh.renderer import numba_backend as nb

    width = 1 << 16
    assert nb._column_dtype(width) == np.uint16 and nb._column_dtype(width + 1) == np.int32
    shape = (5, width)
    image = random_image(rng, shape, np.uint8)
    image[rng.random(shape) < 0.03] = 255
    coc = np.linspace(-12.0, 12.0, width, dtype=np.float32)[None, :].repeat(5, axis=0)
    coc[:, -400:] = rng.uniform(-12.0, 12.0, (5, 400)).astype(np.float32)
    gain = highlight_gain_map(image, 4.0, coc)
    narrow = get_backend("numba")[1](image, coc, Aperture(6), gain, 2)
    monkeypatch.setattr(nb, "_column_dtype", lambda w: np.dtype(np.int32))
    assert np.array_equal(get_backend("numba")[1](image, coc, Aperture(6), gain, 2), narrow)


def test_numba_layers_from_the_radius_table_match_layer_index(rng):
    # Numba's first pass looks the layer of a radius on the kernels' grid up in a table of bins
    # (_radius_bins) and computes the rest with layer_index: every kind of value must land where
    # layer_index puts it, with the same counts and |CoC| sums.
    from pybokeh.renderer import kernel_math as km
    from pybokeh.renderer import numba_backend as nb

    steps = km.COC_STEPS_PER_PX
    grid = rng.integers(-40 * int(steps), 40 * int(steps), (30, 40)).astype(np.float32) / np.float32(steps)
    coc = np.where(rng.random(grid.shape) < 0.3, rng.uniform(-40, 40, grid.shape).astype(np.float32), grid)
    coc[0, :8] = [np.nan, np.inf, -np.inf, 0.5, -0.5, 0.49, 1e9, -0.0]
    coc[1, :4] = [40.0, -40.0, 39.99, 64.5]   # at, just under and beyond the table's end (40 px here)
    nbins = km.radius_bin(40.0, km.MAX_BINS_PER_SIDE, km.LAYER_EDGES) + 1
    nlayers = 2 * nbins + 1
    layer_of = np.empty(coc.shape, np.uint8)
    counts = np.zeros((nlayers, coc.shape[0]), np.int64)
    units = np.zeros_like(counts)
    bins = nb._radius_bins(nbins, km.LAYER_EDGES, int(40.0 * steps) + 2)
    nb._prepare(coc, nbins, km.LAYER_EDGES, bins, layer_of, counts, units)
    expected = np.array([[nb.layer_index(c, nbins, km.LAYER_EDGES) for c in row] for row in coc])  # (jitted)
    assert np.array_equal(layer_of, expected)
    assert (layer_of != nbins).sum() > coc.size // 2   # most pixels out of focus: the table was read
    for layer in range(nlayers):
        assert np.array_equal(counts[layer], (expected == layer).sum(axis=1))
