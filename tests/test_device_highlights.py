"""The torch port of the highlight gain map (used for images on a GPU) against pybokeh.highlights, on CPU tensors."""
from __future__ import annotations

import numpy as np
import pytest

from pybokeh.highlights import highlight_gain_map

torch = pytest.importorskip("torch")
from pybokeh.renderer.device_highlights import highlight_gain_map_torch  # noqa: E402


def _image(rng, shape, dtype, clipped_fraction=0.03):
    """Random sRGB image with dark and bright regions and some clipped pixels (one channel or all)."""
    h, w = shape
    unit = rng.random((h, w, 3), dtype=np.float32) * 0.95
    unit[: h // 2] *= 0.1  # dark top half: lights there get nearly the full boost
    mask = rng.random((h, w)) < clipped_fraction
    unit[mask] = 1.0
    unit[(rng.random((h, w)) < clipped_fraction), rng.integers(0, 3)] = 1.0
    if dtype == np.float32:
        return unit
    top = np.iinfo(dtype).max
    return np.round(unit * top).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape", [(64, 96), (37, 211), (5, 3), (1, 2), (300, 17)])
def test_gain_map_matches_numpy(dtype, shape):
    rng = np.random.default_rng(shape[0] * 31 + shape[1])
    image = _image(rng, shape, dtype)
    image[0, 0] = np.iinfo(dtype).max if dtype != np.float32 else 1.0  # at least one clipped pixel
    ref = highlight_gain_map(image, 16.0)
    out = highlight_gain_map_torch(torch.from_numpy(image), 16.0)
    assert out.dtype == torch.float32 and tuple(out.shape) == shape
    out = out.numpy()
    np.testing.assert_array_equal(out > 0, ref > 0)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert ref.max() > 0.0


def test_gain_map_follows_the_surroundings_like_numpy():
    image = np.zeros((60, 120, 3), np.uint8)
    image[:, 60:] = 230                     # a bright cloud
    image[30, 20] = 255                     # a light in the dark
    image[30, 90, 0] = 255                  # a clipped speck in the cloud
    out = highlight_gain_map_torch(torch.from_numpy(image), 16.0).numpy()
    assert out[30, 20] == pytest.approx(16.0, rel=1e-3)
    assert 0.0 < out[30, 90] < 1.0
    assert np.count_nonzero(out) == 2
    np.testing.assert_allclose(out, highlight_gain_map(image, 16.0), rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16, torch.float32])
def test_nothing_to_boost_gives_none(dtype):
    image = torch.zeros(20, 30, 3, dtype=dtype)
    assert highlight_gain_map_torch(image, 16.0) is None          # nothing clipped
    image[3, 4, 1] = 255 if dtype == torch.uint8 else (65535 if dtype == torch.uint16 else 1.0)
    assert highlight_gain_map_torch(image, 0.0) is None           # boost off
    assert highlight_gain_map_torch(image, 16.0) is not None


def test_other_dtypes_are_rejected():
    with pytest.raises(TypeError, match="dtype"):
        highlight_gain_map_torch(torch.zeros(4, 4, 3, dtype=torch.float64), 2.0)
