"""Depth metrics against hand-computed values; masking and median scaling."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pybokeh.nets.metrics import METRIC_NAMES, depth_metrics, mean_metrics


def test_hand_computed_values():
    gt = np.array([[1.0, 2.0, 4.0]])
    pred = np.array([[1.0, 2.0, 2.0]])  # medians equal: scale 1
    m = depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx((0 + 0 + 0.5) / 3)
    assert m["sq_rel"] == pytest.approx((0 + 0 + 4 / 4) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert m["rmse_log"] == pytest.approx(math.sqrt(math.log(2) ** 2 / 3))
    assert m["log10"] == pytest.approx(math.log10(2) / 3)
    # ratios 1, 1, 2: 2 < 1.25**3 = 1.95 is false
    assert (m["delta1"], m["delta2"], m["delta3"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    m = depth_metrics(np.array([[1.0, 2.0, 2.2]]), gt, median_scaling=False)
    assert m["delta3"] == pytest.approx(1.0) and m["delta2"] == pytest.approx(2 / 3)  # 4/2.2 = 1.82 < 1.95


def test_median_scaling_makes_scale_irrelevant_and_perfect_is_perfect():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 5.0, (20, 30))
    pred = gt * rng.uniform(0.8, 1.2, gt.shape)
    a, b = depth_metrics(pred, gt), depth_metrics(pred * 37.0, gt)
    for k in METRIC_NAMES:
        assert a[k] == pytest.approx(b[k], rel=1e-9)
    p = depth_metrics(gt * 3.0, gt)
    assert p["abs_rel"] == pytest.approx(0, abs=1e-12) and p["delta1"] == 1.0 and p["rmse"] == pytest.approx(0, abs=1e-12)
    # Without scaling, predictions are clipped to max_depth = 10 m before scoring.
    unscaled = depth_metrics(gt * 3.0, gt, median_scaling=False)["abs_rel"]
    assert unscaled == pytest.approx((np.minimum(3.0 * gt, 10.0) / gt - 1).mean(), rel=1e-12)


def test_invalid_and_out_of_range_pixels_are_ignored():
    gt = np.array([[1.0, 0.0, 2.0, np.nan, 12.0]])
    base = np.array([[1.5, 5.0, 1.0, 3.0, 9.0]])
    m1 = depth_metrics(base, gt, median_scaling=False)
    garbage = base.copy()
    garbage[0, [1, 3, 4]] = [1e6, 1e-9, 0.5]
    m2 = depth_metrics(garbage, gt, median_scaling=False)
    assert m1 == m2
    assert m1["abs_rel"] == pytest.approx((0.5 / 1 + 1 / 2) / 2)
    assert depth_metrics(base, np.zeros_like(gt)) is None
    extra = np.array([[True, True, False, True, True]])
    assert depth_metrics(base, gt, extra, median_scaling=False)["abs_rel"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        depth_metrics(base, gt[:, :3])


def test_mean_is_over_images_not_pixels():
    small = depth_metrics(np.array([[2.0]]), np.array([[1.0]]), median_scaling=False)          # abs_rel 1
    big = depth_metrics(np.ones((10, 10)), np.ones((10, 10)), median_scaling=False)           # abs_rel 0
    avg = mean_metrics([small, None, big])
    assert avg["abs_rel"] == pytest.approx(0.5) and avg["count"] == 2


def test_disparity_alignment_removes_scale_and_shift_of_inverse_depth():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0.5, 8.0, (20, 30))
    affine = 1.0 / (0.3 / gt + 0.05)              # inverse depth 0.3 · (1/gt) + 0.05: not a pure scale
    m = depth_metrics(affine, gt, alignment="disparity")
    assert m["abs_rel"] < 1e-9 and m["delta1"] == 1.0
    assert depth_metrics(affine, gt, alignment="median")["abs_rel"] > 0.05   # median scaling cannot undo a shift
    # Hand value: inverse depths x = [1, 2, 3] against y = [1, 1, 4]: s = 1.5, b = -1 → fitted [0.5, 2, 3.5].
    gt2 = 1.0 / np.array([[1.0, 1.0, 4.0]])
    pred2 = 1.0 / np.array([[1.0, 2.0, 3.0]])
    got = depth_metrics(pred2, gt2, alignment="disparity", max_depth=100.0)
    fitted = 1.0 / np.array([0.5, 2.0, 3.5])
    assert got["abs_rel"] == pytest.approx(np.mean(np.abs(fitted - gt2[0]) / gt2[0]))
    # A fit at or below zero means "beyond range": floored at 1 / max_depth, never negative depth.
    far = depth_metrics(np.array([[1.0, 1.0, 1.0, 1.0]]) / np.array([[4.0, 3.0, 2.0, 1.0]]),
                        np.array([[1.0, 1.0, 1.0, 9.0]]), alignment="disparity", max_depth=10.0)
    assert far is not None and np.isfinite(far["abs_rel"])
    # Constant prediction: every pixel gets the mean inverse depth.
    const = depth_metrics(np.ones((1, 2)), np.array([[1.0, 4.0]]), alignment="disparity")
    assert const["abs_rel"] == pytest.approx((abs(1.6 - 1) / 1 + abs(1.6 - 4) / 4) / 2)
    with pytest.raises(ValueError, match="alignment"):
        depth_metrics(gt, gt, alignment="mean")
