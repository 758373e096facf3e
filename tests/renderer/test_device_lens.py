"""The lens model on torch tensors (the GPU path computes the CoC map next to the image), on CPU tensors.

:meth:`pybokeh.lens.Lens.coc_map` is one implementation over :mod:`pybokeh.arrays`;
these tests check its torch spelling against the NumPy one on random inputs, and
both against the formulas written out here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from pybokeh import lens
from pybokeh.inputs import as_depth
from pybokeh.lens import Lens

torch = pytest.importorskip("torch")


def torch_coc(depth, focus, image_shape=None, **kw):
    """The CoC map computed in torch, from a tensor (or a NumPy map sent to the tensor's device)."""
    like = torch.zeros(1)
    return Lens(**kw).coc_map(as_depth(depth, like=like), focus, image_shape)


def both(depth: np.ndarray, focus, image_shape=None, **kw):
    ref = lens.coc_map(depth, focus, image_shape=image_shape, **kw)
    out = torch_coc(torch.from_numpy(depth), focus, image_shape, **kw)
    assert out.dtype == torch.float32 and tuple(out.shape) == ref.shape and out.is_contiguous()
    return out.numpy(), ref


@pytest.mark.parametrize("focus", [0.3, (10, 7), (0, 0), (39.5, 29.9)])
@pytest.mark.parametrize("focus_range", [0.0, 0.1])
def test_disparity_mode_matches_numpy(focus, focus_range):
    rng = np.random.default_rng(0)
    depth = rng.random((30, 40)).astype(np.float32) * 7 + 2
    out, ref = both(depth, focus, focus_range=focus_range, max_blur=25.0)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
    assert np.abs(ref).max() > 1.0  # a real blur, not all in focus


@pytest.mark.parametrize("focus,focus_range", [(0.3, 0.0), (0.55, 0.2), (1.0, 0.5)])
def test_disparity_mode_is_the_formula(focus, focus_range):
    # r = K (d - clip(d, f - h, f + h)), d the map min-max normalised to [0, 1].
    rng = np.random.default_rng(7)
    raw = rng.uniform(3.0, 11.0, (24, 32))
    d = (raw - raw.min()) / (raw.max() - raw.min())
    expected = 18.0 * (d - np.clip(d, focus - focus_range / 2, focus + focus_range / 2))
    out = torch_coc(torch.from_numpy(raw.astype(np.float32)), focus, max_blur=18.0, focus_range=focus_range)
    np.testing.assert_allclose(out.numpy(), expected, atol=2e-5)
    # The default strength: 2.5 % of the diagonal (40 px for 24 x 32), scaled by 1.8 / N.
    out = torch_coc(torch.from_numpy(raw.astype(np.float32)), focus, f_number=3.6, focus_range=focus_range)
    np.testing.assert_allclose(out.numpy(), expected / 18.0 * 1.0 * 0.5, atol=2e-5)


def test_depth_mode_is_the_thin_lens_formula():
    # r = f^2 / (2 N (z_f - f)) * (z_f / z - 1) / p, p the pixel pitch; with a sharp band
    # [z_f - b/2, z_f + b/2], z_f replaced by the nearer band edge.
    rng = np.random.default_rng(8)
    z = rng.uniform(0.6, 12.0, (16, 20))
    f, n, p = 0.085, 2.8, 0.0235 / 20

    def radius(z, z_f):
        return f * f / (2 * n * (z_f - f)) * (z_f / z - 1) / p

    out = torch_coc(torch.from_numpy(z.astype(np.float32)), 3.0, depth_kind="depth", f_number=2.8,
                    focal_length_mm=85.0, sensor_width_mm=23.5)
    np.testing.assert_allclose(out.numpy(), radius(z.astype(np.float32).astype(np.float64), 3.0), rtol=1e-4)
    out = torch_coc(torch.from_numpy(z.astype(np.float32)), 3.0, depth_kind="depth", f_number=2.8,
                    focal_length_mm=85.0, sensor_width_mm=23.5, focus_range=2.0)
    z32 = z.astype(np.float32).astype(np.float64)
    edge = np.clip(z32, 2.0, 4.0)
    np.testing.assert_allclose(out.numpy(), radius(z32, edge), rtol=1e-4, atol=1e-6)
    assert (out.numpy() == 0).any() and math.isclose(float(out.abs().max()), np.abs(radius(z32, edge)).max(),
                                                     rel_tol=1e-4)


def test_disparity_invalid_values_are_filled_like_numpy():
    rng = np.random.default_rng(1)
    depth = rng.random((33, 47)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.3] = np.nan
    depth[5:9, 10:20] = -1.0
    depth[0, 0] = np.inf
    out, ref = both(depth, (20, 15))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)


def test_holes_take_the_mean_of_their_valid_block():
    # Push-pull by hand: a hole in the left half of a two-level map takes the left value.
    d = np.full((40, 40), 0.25, np.float32)
    d[:, 20:] = 0.75
    holes = np.zeros_like(d, bool)
    holes[5:9, 2:6] = holes[30:34, 30:35] = True
    filled = lens.fill_invalid(torch.from_numpy(np.where(holes, np.nan, d)), torch.from_numpy(~holes), "depth")
    assert filled.dtype == torch.float32
    np.testing.assert_array_equal(filled.numpy()[~holes], d[~holes])
    np.testing.assert_allclose(filled.numpy()[5:9, 2:6], 0.25)
    np.testing.assert_allclose(filled.numpy()[30:34, 30:35], 0.75)
    # An odd-sized map whose only valid pixels are two corners: the rest is their mean.
    d = np.full((5, 3), np.nan, np.float32)
    d[0, 0], d[4, 2] = 1.0, 3.0
    filled = lens.fill_invalid(torch.from_numpy(d), torch.from_numpy(np.isfinite(d)), "depth").numpy()
    np.testing.assert_allclose(filled, lens.fill_invalid(d, np.isfinite(d), "depth"))
    assert filled[0, 0] == 1.0 and filled[4, 2] == 3.0 and np.all((filled >= 1.0) & (filled <= 3.0))


@pytest.mark.parametrize("src,dst", [((30, 40), (60, 80)), ((64, 48), (21, 16)), ((50, 50), (37, 37))])
def test_resampling_matches_pil(src, dst):
    rng = np.random.default_rng(2)
    depth = rng.random(src).astype(np.float32)
    out, ref = both(depth, 0.5, image_shape=dst, max_blur=10.0)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=2e-3)


def test_disparity_f_number_matches_numpy():
    depth = np.random.default_rng(5).random((20, 30)).astype(np.float32)
    out, ref = both(depth, 0.4, f_number=3.6, focus_range=0.1)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("focus", [2.0, (5, 5), float("inf")])
def test_depth_mode_matches_numpy(focus):
    rng = np.random.default_rng(3)
    depth = (0.5 + 5 * rng.random((24, 36))).astype(np.float32)
    depth[0, :4] = np.inf
    depth[3, 3] = 0.0
    depth[4, 4] = np.nan
    out, ref = both(depth, focus, depth_kind="depth", f_number=2.8, focal_length_mm=85.0, focus_range=0.2)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
    out, ref = both(depth, focus, depth_kind="depth", max_blur=3.0)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)


def test_errors_match_numpy():
    depth = np.random.default_rng(4).random((10, 10)).astype(np.float32)
    t = torch.from_numpy(depth)
    with pytest.raises(ValueError, match="max_blur or f_number, not both"):
        torch_coc(t, 0.5, f_number=2.0, max_blur=3.0)
    with pytest.raises(ValueError, match="no valid values"):
        torch_coc(torch.full((4, 4), float("nan")), 0.5)
    with pytest.raises(ValueError, match="outside the 10×10 image"):
        torch_coc(t, (10, 3))
    with pytest.raises(ValueError, match="aspect ratio"):
        torch_coc(t, 0.5, image_shape=(10, 30))
    with pytest.raises(ValueError, match="must exceed the focal length"):
        torch_coc(t + 1, 0.01, depth_kind="depth")
    with pytest.raises(ValueError, match="depth_kind"):
        torch_coc(t, 0.5, depth_kind="z")
    with pytest.raises(TypeError, match="depth dtype"):
        torch_coc(t > 0.5, 0.5)
    with pytest.raises(ValueError, match="shape H×W"):
        torch_coc(t[None], 0.5)
    with pytest.raises(ValueError, match="circle of confusion over 4096"):
        torch_coc(t, 0.5, max_blur=1e6)


def test_even_window_median_matches_numpy():
    # At the image corner the focus window is clipped to an even pixel count.
    depth = np.arange(100, dtype=np.float32).reshape(10, 10) ** 1.5
    out, ref = both(depth, (0, 0), max_blur=10.0)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-5)
    # The focus pixel (0, 0) with a 1 px window: the median of d[0:2, 0:2] = 0, 1, 10^1.5, 11^1.5.
    median = (1.0 + 10 ** 1.5) / 2
    d = (depth - depth.min()) / (depth.max() - depth.min())
    np.testing.assert_allclose(out, 10.0 * (d - median / depth.max()), atol=1e-5)
