"""The torch port of the lens model (used for depth maps on a GPU) against pybokeh.lens, on CPU tensors."""
from __future__ import annotations

import numpy as np
import pytest

from pybokeh import lens

torch = pytest.importorskip("torch")
from pybokeh.renderer import device_lens  # noqa: E402


def both(depth: np.ndarray, focus, **kw):
    ref = lens.coc_map(depth, focus, **kw)
    out = device_lens.coc_map_torch(torch.from_numpy(depth), focus, **kw)
    assert out.dtype == torch.float32 and tuple(out.shape) == ref.shape
    return out.numpy(), ref


@pytest.mark.parametrize("focus", [0.3, (10, 7), (0, 0), (39.5, 29.9)])
@pytest.mark.parametrize("focus_range", [0.0, 0.1])
def test_disparity_mode_matches_numpy(focus, focus_range):
    rng = np.random.default_rng(0)
    depth = rng.random((30, 40)).astype(np.float32) * 7 + 2
    out, ref = both(depth, focus, focus_range=focus_range, max_blur=25.0)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
    assert np.abs(ref).max() > 1.0  # a real blur, not all in focus


def test_disparity_invalid_values_are_filled_like_numpy():
    rng = np.random.default_rng(1)
    depth = rng.random((33, 47)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.3] = np.nan
    depth[5:9, 10:20] = -1.0
    depth[0, 0] = np.inf
    out, ref = both(depth, (20, 15))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)


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
        device_lens.coc_map_torch(t, 0.5, f_number=2.0, max_blur=3.0)
    with pytest.raises(ValueError, match="no valid values"):
        device_lens.coc_map_torch(torch.full((4, 4), float("nan")), 0.5)
    with pytest.raises(ValueError, match="outside the 10×10 image"):
        device_lens.coc_map_torch(t, (10, 3))
    with pytest.raises(ValueError, match="aspect ratio"):
        device_lens.coc_map_torch(t, 0.5, image_shape=(10, 30))
    with pytest.raises(ValueError, match="must exceed the focal length"):
        device_lens.coc_map_torch(t + 1, 0.01, depth_kind="depth")
    with pytest.raises(ValueError, match="depth_kind"):
        device_lens.coc_map_torch(t, 0.5, depth_kind="z")
    with pytest.raises(TypeError, match="depth dtype"):
        device_lens.coc_map_torch(t > 0.5, 0.5)
    with pytest.raises(ValueError, match="shape H×W"):
        device_lens.coc_map_torch(t[None], 0.5)


def test_even_window_median_matches_numpy():
    # At the image corner the focus window is clipped to an even pixel count.
    depth = np.arange(100, dtype=np.float32).reshape(10, 10) ** 1.5
    out, ref = both(depth, (0, 0), max_blur=10.0)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-5)
