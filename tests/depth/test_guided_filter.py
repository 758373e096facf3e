"""The guided filter: fast PyTorch path against the plain NumPy transcription, and what it is
for (depth edges that follow the photo's edges better than bilinear upsampling)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from pybokeh import depth as depth_mod  # noqa: E402
from pybokeh.guided_filter import (  # noqa: E402
    apply_coefficients,
    apply_coefficients_torch,
    bilinear_resize_reference,
    box_mean,
    guided_filter,
    guided_filter_reference,
    guided_upsample,
    guided_upsample_reference,
    window_mean_reference,
)


@pytest.mark.parametrize("shape,radius", [((7, 9), 0), ((7, 9), 1), ((13, 11), 3), ((5, 6), 10), ((1, 8), 2)])
def test_box_mean_matches_explicit_windows(rng, shape, radius):
    x = rng.random(shape) * 2 - 1
    np.testing.assert_allclose(box_mean(x, radius), window_mean_reference(x, radius), rtol=0, atol=1e-12)


def test_box_mean_of_a_window_wider_than_the_image_is_the_global_mean(rng):
    x = rng.random((5, 6))
    np.testing.assert_allclose(box_mean(x, 10), np.full((5, 6), x.mean()), atol=1e-12)


@pytest.mark.parametrize("shape,radius,eps", [((16, 21), 1, 1e-3), ((16, 21), 3, 1e-2), ((9, 30), 4, 0.5),
                                              ((12, 12), 0, 1e-3)])
def test_guided_filter_matches_reference(rng, shape, radius, eps):
    guide, src = rng.random(shape).astype(np.float32), rng.random(shape).astype(np.float32)
    got = guided_filter(guide, src, radius, eps)
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_allclose(got, guided_filter_reference(guide, src, radius, eps), rtol=0, atol=2e-6)


def test_guided_filter_reproduces_a_linear_function_of_the_guide(rng):
    # p = 0.7·I + 0.1 exactly: a = 0.7·var/(var + eps) → 0.7 as eps → 0, so q ≈ p.
    guide = rng.random((20, 24))
    src = 0.7 * guide + 0.1
    np.testing.assert_allclose(guided_filter(guide, src, 2, 1e-8), src, atol=1e-5)


@pytest.mark.parametrize("full,low,radius,dtype", [
    ((37, 53), (9, 13), 2, np.uint8), ((40, 30), (40, 30), 1, np.uint8),
    ((64, 96), (16, 24), 3, np.float32), ((5, 300), (2, 77), 1, np.uint16)])
def test_guided_upsample_matches_reference(rng, full, low, radius, dtype):
    top = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    guide = (rng.random(full) * top).astype(dtype)
    guide_low, src_low = rng.random(low), rng.random(low)
    got = guided_upsample(guide, guide_low, src_low, radius, 1e-3, guide_scale=1 / top)
    want = guided_upsample_reference(guide, guide_low, src_low, radius, 1e-3, guide_scale=1 / top)
    assert got.shape == full and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("full,low", [((37, 53), (9, 13)), ((8, 8), (8, 8)), ((3, 200), (1, 7))])
def test_apply_coefficients_is_bilinear_upsampling_plus_multiply_add(rng, full, low):
    guide = rng.integers(0, 256, full).astype(np.uint8)
    a, b = rng.random(low) * 4 - 2, rng.random(low)
    got = apply_coefficients(guide, a, b, guide_scale=1 / 255)
    want = bilinear_resize_reference(a, full) * guide / 255 + bilinear_resize_reference(b, full)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    clipped = apply_coefficients(guide, a, b, guide_scale=1 / 255, clip=(0.0, 1.0))
    np.testing.assert_allclose(clipped, np.clip(want, 0, 1), rtol=0, atol=1e-5)
    # The torch twin (used on CUDA devices) agrees on the CPU.
    t = apply_coefficients_torch(torch.from_numpy(guide), a, b, guide_scale=1 / 255, clip=(0.0, 1.0))
    np.testing.assert_allclose(t.numpy(), clipped, rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", [(5, 7), (12, 3)])
def test_bilinear_reference_matches_torch(rng, size):
    x = rng.random((4, 3))
    got = F.interpolate(torch.from_numpy(x)[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    np.testing.assert_allclose(got.numpy(), bilinear_resize_reference(x, size), atol=1e-12)


@pytest.mark.parametrize("radius,eps,exc,match", [(-1, 1e-3, ValueError, "radius"), (1.5, 1e-3, TypeError, "radius"),
                                                  (1, 0.0, ValueError, "eps"), (1, float("nan"), ValueError, "eps"),
                                                  (True, 1e-3, TypeError, "radius"), (1, "1", TypeError, "eps")])
def test_bad_parameters_are_rejected(radius, eps, exc, match):
    x = np.ones((4, 4))
    with pytest.raises(exc, match=match):
        guided_filter(x, x, radius, eps)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="guide and src"):
        guided_filter(np.ones((4, 4)), np.ones((4, 5)), 1, 1e-3)
    with pytest.raises(ValueError, match="guide must be"):
        apply_coefficients(np.ones((4, 4, 3), np.float32), np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="mean_a and mean_b"):
        apply_coefficients(np.ones((4, 4), np.float32), np.ones((2, 2)), np.ones((2, 3)))


# --------------------------------------------------------------------------- edge alignment

def _synthetic_scene(rng, shape=(600, 900)):
    """A photo with a textured near disc on a different background and its true disparity."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    radius = np.hypot(yy - 0.47 * h, xx - 0.53 * w)
    inside = radius < 0.29 * h
    base = np.where(inside[..., None], [0.75, 0.55, 0.45], [0.30, 0.40, 0.55])
    photo = np.clip(base + rng.normal(0, 0.02, (h, w, 3)), 0, 1)
    photo = np.round(photo * 255).astype(np.uint8)
    disparity = np.where(inside, 0.9, 0.3).astype(np.float32)
    return photo, disparity, inside, np.abs(radius - 0.29 * h)   # last: distance to the depth edge


def _network_like(disparity, grid, sigma):
    """A network-like map: the truth at the network's 128×128 input resolution, blurred by a
    Gaussian of ``sigma`` network pixels (real outputs are smoother than the area-averaged
    truth), resized to the grid."""
    low = F.interpolate(torch.from_numpy(disparity)[None, None], size=(128, 128), mode="area")
    if sigma:
        k = int(3 * sigma) + 1
        g = torch.exp(-torch.arange(-k, k + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
        g /= g.sum()
        low = F.conv2d(F.pad(low, (k, k, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
        low = F.conv2d(F.pad(low, (0, 0, k, k), mode="replicate"), g.view(1, 1, -1, 1))
    return F.interpolate(low, size=grid, mode="bilinear", align_corners=False)[0, 0]


@pytest.mark.parametrize("sigma,max_ratio", [(0.0, 0.85), (1.5, 0.75)])
def test_guided_upsampling_aligns_depth_edges_with_photo_edges_better_than_bilinear(rng, sigma, max_ratio):
    # Exactly what estimate_depth does after the network, on a photo whose depth edge is a
    # colour edge; the source map is as blurry as a 128×128 network output (or blurrier).
    photo, truth, inside, edge_distance = _synthetic_scene(rng)
    h, w = truth.shape
    grid = depth_mod._grid_shape(h, w)
    low_rgb, luma, scale = depth_mod._prepare(photo, grid)
    src_low = _network_like(truth, grid, sigma)
    guided = depth_mod._guided(luma, low_rgb @ depth_mod._LUMA, src_low.numpy(), scale)
    bilinear = F.interpolate(src_low[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()

    band = edge_distance < 12   # pixels within 12 px of the depth edge
    err_guided = np.abs(guided - truth)[band].mean()
    err_bilinear = np.abs(bilinear - truth)[band].mean()
    assert err_guided < max_ratio * err_bilinear, (err_guided, err_bilinear)
    # The depth edge (the level midway between near and far) sits on the photo's edge:
    # pixels on the wrong side of it.
    wrong_guided = ((guided > 0.6) != inside)[band].mean()
    wrong_bilinear = ((bilinear > 0.6) != inside)[band].mean()
    assert wrong_bilinear > 0.005 and wrong_guided < 0.1 * wrong_bilinear, (wrong_guided, wrong_bilinear)
    # Away from edges the filter keeps the values.
    far = edge_distance > 40
    assert np.abs(guided - truth)[far].mean() < 0.005
