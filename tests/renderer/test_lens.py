"""The lens model: CoC maps from disparity or metric depth, focus selection, invalid depth."""
from __future__ import annotations

import math

import numpy as np
import pytest

import pybokeh
from pybokeh.lens import coc_map, fill_invalid


def thin_lens_radius(z, z_f, n, f_mm, sensor_mm, width):
    """The issue's formula, literally: r = f²/(2N(z_f − f)) · (z_f/z − 1) / (sensor_width/W)."""
    f = f_mm / 1000.0
    return f * f / (2 * n * (z_f - f)) * (z_f / z - 1) / (sensor_mm / 1000.0 / width)


def test_disparity_is_linear_in_normalised_disparity():
    d = np.tile(np.linspace(10.0, 50.0, 9, dtype=np.float32), (4, 1))   # arbitrary units
    coc = coc_map(d, 0.5, max_blur=20.0)        # focus halfway: the raw value 30
    expected = 20.0 * ((d - 10) / 40 - 0.5)
    np.testing.assert_allclose(coc, expected, atol=1e-5)
    assert coc[0, -1] > 0 > coc[0, 0]          # nearer (brighter) = positive


@pytest.mark.parametrize("dtype,full", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)])
def test_focus_and_range_mean_the_same_for_any_bit_depth(dtype, full):
    # The same scene stored as 8-bit, 16-bit or float: one focus/range gives one CoC map.
    unit = np.tile(np.linspace(0.1, 0.9, 81), (5, 1))
    stored = (unit * full).astype(dtype) if full != 1.0 else unit.astype(dtype)
    coc = coc_map(stored, 0.75, max_blur=10.0, focus_range=0.25)
    d = (unit - 0.1) / 0.8
    expected = 10.0 * (d - np.clip(d, 0.75 - 0.125, 0.75 + 0.125))
    np.testing.assert_allclose(coc, expected, atol=10 * 2 / 255 if dtype == np.uint8 else 1e-3)
    assert (np.abs(coc) < 0.5).mean() >= 0.24  # the band is a quarter of the range, not "nothing"


@pytest.mark.parametrize("focus", [1.5, -0.1, 255.0, 30000.0])
def test_disparity_focus_outside_the_normalised_range_is_rejected(focus):
    d = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (4, 1))
    with pytest.raises(ValueError, match=r"normalised disparity in \[0, 1\]"):
        coc_map(d, focus)


def test_f_number_scales_the_disparity_blur_like_an_aperture():
    d = np.tile(np.linspace(0, 1, 41, dtype=np.float32), (30, 1))
    default = coc_map(d, 0.5)
    np.testing.assert_allclose(coc_map(d, 0.5, f_number=1.8), default, rtol=1e-6)   # f/1.8 is the reference
    np.testing.assert_allclose(coc_map(d, 0.5, f_number=3.6), default / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(coc_map(d, 0.5, f_number=1.2), default * 1.5, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        coc_map(d, 0.5, f_number=2.0, max_blur=5.0)
    with pytest.raises(ValueError, match="f_number"):
        coc_map(d, 0.5, f_number=0.0)


def test_focus_range_wider_than_the_map_is_rejected():
    with pytest.raises(ValueError, match="focus_range"):
        coc_map(np.tile(np.linspace(0, 1, 8, dtype=np.float32), (4, 1)), 0.5, focus_range=1.5)


@pytest.mark.parametrize("n,f_mm,sensor", [(1.8, 50.0, 36.0), (4.0, 85.0, 23.5), (1.4, 24.0, 36.0)])
def test_thin_lens_matches_the_formula(n, f_mm, sensor):
    rng = np.random.default_rng(0)
    z = rng.uniform(0.3, 30.0, (16, 24)).astype(np.float32)
    coc = coc_map(z, 2.5, depth_kind="depth", f_number=n, focal_length_mm=f_mm, sensor_width_mm=sensor)
    np.testing.assert_allclose(coc, thin_lens_radius(z.astype(np.float64), 2.5, n, f_mm, sensor, 24), rtol=1e-4)


def test_thin_lens_at_infinity():
    z = np.array([[np.inf, 2.0, 1.0, 0.5]], np.float32)
    coc = coc_map(z, 1.0, depth_kind="depth", f_number=2.0)
    assert coc[0, 0] == pytest.approx(thin_lens_radius(1e30, 1.0, 2.0, 50.0, 36.0, 4), rel=1e-4)
    # Focused at infinity: everything nearer is in front (positive), the sky is sharp.
    coc_inf = coc_map(z, math.inf, depth_kind="depth", f_number=2.0)
    assert coc_inf[0, 0] == 0 and np.all(coc_inf[0, 1:] > 0)


def test_default_disparity_blur_is_2_5_percent_of_the_diagonal():
    # 300 x 400 px: a 500 px diagonal, so K = 12.5 px per unit of normalised disparity at f/1.8.
    d = np.tile(np.linspace(0, 1, 400, dtype=np.float32), (300, 1))
    coc = coc_map(d, 0.0)
    assert coc[0, 0] == 0.0 and coc.max() == pytest.approx(12.5, rel=1e-6)
    assert coc_map(d, 1.0, f_number=3.6).min() == pytest.approx(-6.25, rel=1e-6)


def test_default_f_number_in_depth_mode_is_1_8():
    z = np.array([[0.8, 1.5, 4.0, 30.0]], np.float32)
    np.testing.assert_allclose(coc_map(z, 2.0, depth_kind="depth"),
                               thin_lens_radius(z.astype(np.float64), 2.0, 1.8, 50.0, 36.0, 4), rtol=1e-5)


def test_depth_mode_focus_range_is_the_full_width_of_the_sharp_band():
    # Focus 2 m with a 1 m band: 1.5 m to 2.5 m are sharp; outside, the thin lens from the
    # nearer band edge: r = f^2 / (2 N p) * (1/z - 1/z_e) / (1 - f / z_e), p = 36 mm / 8 px.
    z = np.array([[1.2, 1.45, 1.55, 2.0, 2.45, 2.55, 3.0, 6.0]], np.float64)
    coc = coc_map(z.astype(np.float32), 2.0, depth_kind="depth", f_number=2.0, focus_range=1.0)
    f, n, p = 0.05, 2.0, 0.036 / 8
    edge = np.where(z < 1.5, 1.5, np.where(z > 2.5, 2.5, z))
    expected = f * f / (2 * n * p) * (1 / z - 1 / edge) / (1 - f / edge)
    np.testing.assert_allclose(coc, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(coc[0, 2:5], 0.0)
    assert coc[0, 1] > 0 > coc[0, 5]


def test_depth_mode_cap():
    z = np.repeat(np.array([[0.2, 1.0, 100.0]], np.float32), 1000, axis=1)   # 3000 px wide
    assert np.abs(coc_map(z, 1.0, depth_kind="depth")).max() > 10
    assert np.abs(coc_map(z, 1.0, depth_kind="depth", max_blur=3.0)).max() == pytest.approx(3.0)


def test_invalid_values_are_filled_from_neighbours():
    d = np.full((40, 40), 0.25, np.float32)
    d[:, 20:] = 0.75
    holes = np.zeros_like(d, bool)
    holes[5:9, 2:6] = holes[30:34, 30:35] = True
    filled = fill_invalid(np.where(holes, np.nan, d), ~holes, "depth")
    np.testing.assert_array_equal(filled[~holes], d[~holes])
    np.testing.assert_allclose(filled[5:9, 2:6], 0.25)
    np.testing.assert_allclose(filled[30:34, 30:35], 0.75)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, -1.0])
def test_invalid_disparity_is_treated_as_missing(bad):
    d = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    broken = d.copy()
    broken[10:12, 10:12] = bad
    coc = coc_map(broken, 0.5, max_blur=10)
    assert np.isfinite(coc).all()
    np.testing.assert_allclose(coc[20:], coc_map(d, 0.5, max_blur=10)[20:], atol=1e-4)


@pytest.mark.parametrize("bad", [np.nan, 0.0, -2.0, -np.inf])
def test_invalid_depth_is_treated_as_missing(bad):
    z = np.full((20, 20), 3.0, np.float32)
    z[:, 10:] = 1.5
    broken = z.copy()
    broken[2:4, 2:4] = bad
    coc = coc_map(broken, 1.5, depth_kind="depth")
    np.testing.assert_allclose(coc, coc_map(z, 1.5, depth_kind="depth"), rtol=1e-5)


def test_all_invalid_depth_raises():
    with pytest.raises(ValueError, match="depth"):
        coc_map(np.full((8, 8), np.nan, np.float32), 0.5)


def test_depth_map_of_another_size_is_resampled():
    big = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    small = big[::2, ::2]
    coc = coc_map(small, 0.5, max_blur=10, image_shape=(48, 64))
    assert coc.shape == (48, 64)
    np.testing.assert_allclose(coc, coc_map(big, 0.5, max_blur=10), atol=0.35)


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (700, 600)])  # the last spans several row blocks
def test_subtract_clip_in_place_is_the_plain_formula(library, shape):
    from pybokeh.arrays import namespace

    rng = np.random.default_rng(3)
    a = rng.normal(0, 2, shape).astype(np.float32)
    a.reshape(-1)[:: 97] = np.nan
    expected = a - np.clip(a, -0.25, 0.5)
    if library == "torch":
        torch = pytest.importorskip("torch")
        t = torch.from_numpy(a.copy())
        assert namespace(t).subtract_clip(t, -0.25, 0.5) is t
        got = t.numpy()
    else:
        got = a.copy()
        assert namespace(got).subtract_clip(got, -0.25, 0.5) is got
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("trial", range(12))
def test_kernel_coc_is_the_coc_map_on_the_grid(trial):
    # render() asks the lens for the kernels' map directly: int16 steps computed block by block for
    # the C++ kernel, float32 rounded for the others; the same radii as coc_map then rounding.
    from pybokeh.lens import Lens, grid_steps, round_to_kernel_grid

    rng = np.random.default_rng(trial)
    h, w = (int(v) for v in rng.integers(1, 200, 2))
    d = (rng.normal(0, 1, (h, w)) * rng.choice([1e-3, 1, 300])).astype(np.float32)
    if trial % 3 == 0:
        d[rng.random((h, w)) < 0.1] = np.nan
    elif trial % 3 == 1:
        d = np.abs(d)  # valid everywhere: the map's finite, non-negative range stands for the validity mask
        if trial % 2:
            d = d.astype(np.float64)
    scale = int(rng.choice([1, 2]))
    focus = float(rng.uniform(0, 1)) if trial % 2 else (int(rng.integers(0, w)) * scale, int(rng.integers(0, h)) * scale)
    lens = Lens("disparity", float(rng.choice([3.0, 60.0, 800.0])), None, 50.0, 36.0, float(rng.choice([0, 0.2])))
    shape = (h * scale, w * scale)
    steps = lens.kernel_coc(d, focus, shape, steps=True)
    expected = grid_steps(lens.coc_map(d, focus, shape))
    assert steps.dtype == expected.dtype and np.array_equal(steps, expected)
    assert steps.dtype == (np.float32 if lens.max_blur * 64 > 32767 else np.int16)
    np.testing.assert_array_equal(lens.kernel_coc(d, focus, shape), round_to_kernel_grid(lens.coc_map(d, focus, shape)))


def test_public_coc_map_is_the_renderers():
    assert pybokeh.coc_map is coc_map
