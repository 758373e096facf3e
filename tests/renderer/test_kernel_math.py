"""The per-pixel maths shared by the Numba backend and the NumPy reference
(``pybokeh.renderer.kernel_math``, ``pybokeh.color``) against literal values.

Both backends import these functions, so comparing them with each other cannot find
a mistake in them; and the C++ twin (``csrc/bokeh_math.h``) only shows up through
whole renders, where a slip at an exact bin edge or span end hardly ever lands.
Each expectation below is a number written out or a plain geometric fact.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from pybokeh.color import linear_to_srgb, srgb_to_linear
from pybokeh.renderer import kernel_math as km

NBINS = km.MAX_BINS_PER_SIDE
EDGES = km.LAYER_EDGES


def test_layer_edges_are_half_pixel_times_powers_of_root_two():
    assert EDGES.dtype == np.float32 and len(EDGES) == 42
    assert [float(EDGES[j]) for j in (0, 2, 4, 6, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert EDGES[1] == np.float32(0.70710677) and EDGES[3] == np.float32(1.4142135)
    assert EDGES[41] == np.float32(741455.2)


@pytest.mark.parametrize("radius,expected", [
    (0.5, 0), (0.7071067, 0), (0.70710677, 1), (0.9999999, 1), (1.0, 2), (1.4142134, 2), (1.4142135, 3),
    (2.0, 4), (7.9999995, 7), (8.0, 8), (741455.2, 39), (1e30, 39), (float("inf"), 39),
])
def test_radius_bin_takes_the_lower_edge_inclusively(radius, expected):
    assert km.radius_bin(float(np.float32(radius)), NBINS, EDGES) == expected
    assert km.radius_bin(float(np.float32(radius)), 3, EDGES) == min(expected, 2)  # clamped to the used bins


def test_every_edge_starts_its_own_bin():
    for j in range(1, NBINS):
        edge = float(EDGES[j])
        assert km.radius_bin(edge, NBINS, EDGES) == j
        assert km.radius_bin(float(np.nextafter(EDGES[j], np.float32(0))), NBINS, EDGES) == j - 1


@pytest.mark.parametrize("coc,expected", [
    (0.0, 10), (0.49, 10), (-0.49, 10), (float("nan"), 10),   # in focus: the middle layer
    (0.5, 11), (-0.5, 9), (1.0, 13), (-1.0, 7),               # near side above, far side below
    (2.5, 15), (-2.5, 5), (1e6, 20), (-1e6, 0),               # clamped to the outermost layers
    (float("inf"), 20), (float("-inf"), 0),                # as the jitted kernels place them
])
def test_layer_index_orders_far_to_near(coc, expected):
    nbins = 10
    layer = km.layer_index(coc, nbins, EDGES)
    assert layer == expected
    if layer != nbins:
        assert km.layer_bin(layer, nbins) == km.radius_bin(abs(coc), nbins, EDGES)


@pytest.mark.parametrize("bin_,level", [(0, 0), (5, 0), (7, 0), (8, 1), (9, 1), (10, 2), (13, 3), (39, 16)])
def test_layer_level_keeps_splats_within_eight_cells(bin_, level):
    # Level k splats on a grid 2^k coarser: the smallest k with the bin's upper edge
    # 0.5 * sqrt(2)^(bin + 1) <= 8 * 2^k.
    nbins = NBINS
    layer = nbins + 1 + bin_
    assert km.layer_level(layer, nbins, EDGES) == level
    assert km.layer_level(nbins - 1 - bin_, nbins, EDGES) == level
    assert km.layer_level(nbins, nbins, EDGES) == 0
    assert 0.5 * 2 ** ((bin_ + 1) / 2) <= 8 * 2 ** level + 1e-3


def test_coverage_radius_is_the_mean_abs_coc_of_the_layer():
    # Fixed point: 1/1024 px units, rounded half up; NaN and huge radii count as 2^20 px.
    assert km.coc_units(np.float32([0.0, 1.0, 2.5, 0.00048828125, 3e6, np.nan])).tolist() == \
        [0, 1024, 2560, 1, 2**30, 2**30]
    radii = np.float32([3.0, 4.5, 7.25, 12.0])
    units = int(km.coc_units(radii).sum())
    assert km.coverage_radius(units, radii.size) == pytest.approx(float(radii.mean()), abs=1e-6)


@pytest.mark.parametrize("gain,coc,expected", [
    (4.0, 0.5, 1.0), (4.0, 0.75, 2.0), (4.0, 1.5, 5.0), (4.0, 30.0, 5.0), (0.0, 30.0, 1.0), (-1.0, 9.0, 1.0),
])
def test_highlight_gain_ramps_in_over_the_first_pixel_of_blur(gain, coc, expected):
    assert km.highlight_gain(gain, coc) == pytest.approx(expected)


@pytest.mark.parametrize("m,expected", [
    (0.0, 0), (1.99, 0), (2.0, 1), (3.99, 1), (4.0, 2), (1000.0, 9), (2.0 ** 61, 61), (2.0 ** 62, 63),
    (math.inf, 63), (math.nan, 0), (-5.0, 0),
])
def test_fine_light_bin_is_the_octave_of_the_brightest_channel(m, expected):
    assert km.fine_light_bin(m) == expected


def test_fine_light_capacity_and_threshold():
    # 2 lights per pixel of a 100 x 200 frame, over the 2 r + 1 = 20 px a disc spans.
    assert km.fine_light_capacity(100, 200, 9.5) == 2000
    counts = np.zeros(km.FINE_LIGHT_BINS, np.int64)
    counts[5], counts[3] = 3, 10
    assert km.fine_light_threshold(counts, 5) == 4      # bins 4 and up hold 3 <= 5 lights
    assert km.fine_light_threshold(counts, 13) == 1     # everything fits
    assert km.fine_light_threshold(counts, 2) == 6      # not even bin 5 fits
    assert km.fine_light_threshold(np.zeros(km.FINE_LIGHT_BINS, np.int64), 0) == 1


def test_aperture_span_of_the_disk_and_of_a_square():
    assert km.aperture_span(0, None, 0.0) == (True, -1.0, 1.0)
    ok, xl, xr = km.aperture_span(0, None, 0.6)
    assert ok and xl == pytest.approx(-0.8) and xr == pytest.approx(0.8)
    assert not km.aperture_span(0, None, 1.0)[0]
    from pybokeh import Aperture

    square = Aperture(4, 45.0)   # corners at (±1/√2, ±1/√2): straight sides at x = ±1/√2
    for v in (-0.7, -0.3, 0.0, 0.5):
        ok, xl, xr = km.aperture_span(4, square.lut, v)
        assert ok and xl == pytest.approx(-math.sqrt(0.5), abs=1e-5) and xr == pytest.approx(math.sqrt(0.5), abs=1e-5)
    assert not km.aperture_span(4, square.lut, 1.5)[0]


def test_splat_rows_and_row_spans_of_a_disk():
    assert km.splat_rows(10.0, 3.0, -1.0, 1.0) == (7, 13)
    ok, xa, xb, vy = km.splat_row(0, None, -1.0, 1.0, 20.0, 10.0, 3.0, 10)
    assert ok and (xa, xb, vy) == (17.0, 23.0, 1.0)
    ok, xa, xb, vy = km.splat_row(0, None, -1.0, 1.0, 20.0, 10.0, 3.0, 13)   # the last row: half covered
    assert ok and vy == pytest.approx(0.5) and xa == pytest.approx(20.0 - 3.0 * math.sqrt(1 - (2.75 / 3) ** 2))
    assert not km.splat_row(0, None, -1.0, 1.0, 20.0, 10.0, 3.0, 14)[0]


def coverage(xa: float, xb: float, width: int) -> np.ndarray:
    """Length of [xa, xb] inside each cell [i - 1/2, i + 1/2] of a row (direct overlap)."""
    i = np.arange(width)
    return np.clip(np.minimum(xb, i + 0.5) - np.maximum(xa, i - 0.5), 0.0, None)


def run_markers(xa: float, xb: float, width: int) -> np.ndarray:
    m, *rest = km.span_markers(xa, xb, width)
    diff = np.zeros(width + 2)
    for k in range(m):
        diff[rest[2 * k]] += rest[2 * k + 1]
    return np.cumsum(diff)[:width]


@pytest.mark.parametrize("xa,xb,expected", [
    (2.2, 5.7, [0, 0, 0.3, 1, 1, 1, 0.2, 0, 0, 0]),
    (2.0, 5.50004, [0, 0, 0.5, 1, 1, 1, 0.00004, 0, 0, 0]),
    (3.1, 3.4, [0, 0, 0, 0.3, 0, 0, 0, 0, 0, 0]),
    (-2.0, 1.2, [1, 0.7, 0, 0, 0, 0, 0, 0, 0, 0]),
    (8.4, 30.0, [0, 0, 0, 0, 0, 0, 0, 0, 0.1, 1]),
    (-0.5, 9.5, [1] * 10),
    (4.5, 4.5, [0] * 10),
    (11.0, 12.0, [0] * 10),
])
def test_span_markers_of_known_spans(xa, xb, expected):
    np.testing.assert_allclose(run_markers(xa, xb, 10), expected, atol=1e-12)


def test_span_markers_give_the_covered_length_of_random_spans():
    rng = np.random.default_rng(0)
    for _ in range(500):
        width = int(rng.integers(1, 20))
        xa, xb = np.sort(rng.uniform(-3, width + 3, 2))
        np.testing.assert_allclose(run_markers(xa, xb, width), coverage(xa, xb, width), atol=1e-9)


@pytest.mark.parametrize("srgb,linear", [
    (0.0, 0.0), (1.0, 1.0), (0.5, 0.21404114), (128 / 255, 0.21586050), (0.2, 0.03310477),
    (0.04045, 0.04045 / 12.92), (0.02, 0.02 / 12.92),
    (0.0402, 0.0402 / 12.92), (0.039406, 0.00305),   # just below the knees, on the linear segments
])
def test_srgb_known_points(srgb, linear):
    assert float(srgb_to_linear(np.float32(srgb))) == pytest.approx(linear, rel=2e-6, abs=1e-9)
    assert float(linear_to_srgb(np.float32(linear))) == pytest.approx(srgb, rel=2e-6, abs=1e-6)


def test_linear_to_srgb_known_points_and_clipping():
    # 18 % grey encodes to 46.1 %; linear 0.5 to 73.5 %; out-of-range light clips.
    np.testing.assert_allclose(linear_to_srgb(np.array([0.18, 0.5, -0.2, 3.0], np.float32)),
                               [0.46135613, 0.73535698, 0.0, 1.0], rtol=2e-6)
    assert srgb_to_linear(np.zeros((2, 3), np.float32)).dtype == np.float32


def test_the_python_constants_are_the_compiled_kernels():
    """The Numba and NumPy kernels (kernel_math) and the aperture tables use the values that
    csrc/bokeh_math.h compiles into _core: a change on one side only fails here."""
    from pybokeh import _core, aperture

    assert km.APERTURE_LUT_SIZE == aperture.LUT_SIZE == _core.APERTURE_LUT_SIZE
    assert km.IN_FOCUS_RADIUS == np.float32(_core.IN_FOCUS_RADIUS)
    assert km.MAX_GRID_RADIUS == np.float32(_core.MAX_GRID_RADIUS)
