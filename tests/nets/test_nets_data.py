"""Data set readers (rgbd, DIML indoor, NYU Depth v2), resampling, augmentation, sampling."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from _nets_helpers import SHARED_DATA, make_rgbd_layout, synthetic_frame

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from pybokeh.nets.augment import AugmentConfig, augment_pair  # noqa: E402
from pybokeh.nets.data import open_frames, read_diml_indoor, read_nyu_depth_v2, read_rgbd  # noqa: E402
from pybokeh.nets.dataset import ConcatCache, FrameCache, PairDataset, is_sparse  # noqa: E402
from pybokeh.nets.depth_target import depth_to_target, disparity_to_depth, target_to_disparity  # noqa: E402
from pybokeh.nets.resample import crop_resize_depth, resize_depth_nearest  # noqa: E402
from pybokeh.nets.sampler import StepBatchSampler, mix_weights, source_weights  # noqa: E402


# --------------------------------------------------------------- readers
def test_rgbd_layout_fixture(tmp_path):
    root = make_rgbd_layout(tmp_path, n_train=4, n_eval=2)
    frames = read_rgbd(root)
    assert [f.split for f in frames] == ["train"] * 4 + ["eval"] * 2
    rgb, depth = frames[0].load()
    raw = np.asarray(Image.open(root / "scene_a" / "depth" / "0000.png"))
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(depth, raw.astype(np.float32) / 1000, rtol=1e-6)
    assert (depth == 0).sum() == (raw == 0).sum() > 0
    assert open_frames(root)[3] == frames[3]


@pytest.mark.skipif(not (SHARED_DATA / "rgbd" / "splits.json").is_file(),
                    reason=f"shared RGB-D data not found at {SHARED_DATA}/rgbd")
def test_rgbd_reader_on_shared_data():
    frames = read_rgbd(SHARED_DATA / "rgbd")
    listed = json.loads((SHARED_DATA / "rgbd" / "splits.json").read_text())["items"]
    assert len(frames) == len(listed) >= 660
    split = Counter(f.split for f in frames)
    assert split["train"] + split["eval"] == len(listed) and split["eval"] > 50
    eval_sources = {f.source for f in frames if f.split == "eval"}
    assert {"ucn_realsense_tabletop", "tsdf_fusion_closeup", "nuscenes_mmdet3d", "normalgan_people_kinect2"} <= eval_sources
    # The outdoor sequence trains on one scene and is scored on the other.
    dgp = Counter(f.split for f in frames if f.source == "dgp_outdoor_lidar")
    assert dgp["train"] >= 18 and dgp["eval"] >= 9
    first = {}
    for f in frames:
        first.setdefault(f.source, f)
    lidar = {"dgp_outdoor_lidar", "nuscenes_mmdet3d"}
    for f in first.values():  # one frame of each source decodes with a sane depth range
        rgb, depth = f.load()
        assert rgb.shape[:2] == depth.shape and rgb.dtype == np.uint8
        valid = depth[depth > 0]
        assert 0.05 < valid.min()
        if f.source in lidar:  # projected LiDAR: sparse, up to 65 m
            assert is_sparse(depth) and valid.size > 1e-3 * depth.size and 20 < valid.max() < 66
        elif f.source == "normalgan_people_kinect2":  # depth on the person only
            assert not is_sparse(depth) and 0.02 * depth.size < valid.size < 0.5 * depth.size and valid.max() < 4
        else:
            assert valid.size > 0.2 * depth.size and valid.max() < 10.0


def _write_diml(root, split, scene, stem, rgb, mm, res="LR"):
    d = root / split / res / scene
    (d / "color").mkdir(parents=True, exist_ok=True)
    (d / "depth_filled").mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(d / "color" / f"{stem}_c.png")
    Image.fromarray(mm).save(d / "depth_filled" / f"{stem}_depth_filled.png")


def test_diml_indoor_layout(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "indoor"
    for split, scene, stem in [("train", "01. Warehouse", "in_00_160126_155728"),
                               ("train", "12. Livingroom", "in_01_160217_123138"),
                               ("test", "16. Billiard Hall", "in_02_160301_101010")]:
        _write_diml(root, split, scene, stem, *synthetic_frame(rng, 36, 64))
    _write_diml(root, "train", "01. Warehouse", "hr_only", *synthetic_frame(rng, 36, 64), res="HR")
    frames = open_frames(tmp_path)  # the folder holding indoor/ is accepted too
    assert [(f.source, f.split) for f in frames] == [("01. Warehouse", "train"), ("12. Livingroom", "train"),
                                                      ("16. Billiard Hall", "eval")]
    rgb, depth = frames[2].load()
    raw = np.asarray(Image.open(root / "test/LR/16. Billiard Hall/depth_filled/in_02_160301_101010_depth_filled.png"))
    np.testing.assert_allclose(depth, raw / 1000.0, rtol=1e-6)
    assert len(read_diml_indoor(root, "HR")) == 1
    (root / "test/LR/16. Billiard Hall/depth_filled/in_02_160301_101010_depth_filled.png").unlink()
    with pytest.raises(FileNotFoundError, match="no depth file"):
        read_diml_indoor(root)


def _write_nyu(root, n=5, h=6, w=8):
    """A tiny nyu_depth_v2_labeled.mat (MATLAB v7.3 = HDF5 with a 512-byte header) + splits.mat."""
    import h5py  # in the test extra: the NYU reader must be tested, not skipped
    import scipy.io as scipy_io
    yy, xx = np.mgrid[0:h, 0:w]
    images = np.zeros((n, h, w, 3), np.uint8)
    depths = np.zeros((n, h, w), np.float32)
    for i in range(n):  # pixel values encode (frame, row, col): a transposition error shows
        images[i] = np.stack([yy * 10 + i, xx * 10, np.full_like(xx, 7 * i)], -1)
        depths[i] = 1.0 + 0.1 * yy + 0.01 * xx + i
    raw = depths.copy()
    raw[:, 0, 0] = 0
    path = root / "nyu_depth_v2_labeled.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        # MATLAB's column-major arrays appear with reversed axes in HDF5.
        f["images"] = images.transpose(0, 3, 2, 1)   # (N, 3, W, H)
        f["depths"] = depths.transpose(0, 2, 1)      # (N, W, H)
        f["rawDepths"] = raw.transpose(0, 2, 1)
        refs = f.create_dataset("scenes", (1, n), dtype=h5py.ref_dtype)
        for i in range(n):
            name = ["kitchen_0001", "office_0002"][i % 2]
            ds = f.create_dataset(f"#refs#/s{i}", data=np.array([[ord(c)] for c in name], np.uint16))
            refs[0, i] = ds.ref
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")
    scipy_io.savemat(root / "splits.mat", {"trainNdxs": np.array([[1], [2], [4]], np.float64),
                                           "testNdxs": np.array([[3], [5]], np.float64)})
    return images, depths, raw


def test_nyu_depth_v2_labeled_layout(tmp_path):
    images, depths, raw = _write_nyu(tmp_path)
    frames = open_frames(tmp_path)
    assert [f.split for f in frames] == ["train", "train", "eval", "train", "eval"]
    assert [f.source for f in frames[:2]] == ["kitchen_0001", "office_0002"]
    for i, f in enumerate(frames):
        rgb, depth = f.load()
        np.testing.assert_array_equal(rgb, images[i])
        np.testing.assert_array_equal(depth, depths[i])
    _, rawd = read_nyu_depth_v2(tmp_path, depth_key="rawDepths")[1].load()
    assert rawd[0, 0] == 0 and rawd[1, 1] == pytest.approx(depths[1, 1, 1])
    (tmp_path / "splits.mat").unlink()
    with pytest.raises(FileNotFoundError, match="splits.mat"):
        read_nyu_depth_v2(tmp_path)


def test_unknown_layout_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown data layout"):
        open_frames(tmp_path)
    with pytest.raises(FileNotFoundError):
        open_frames(tmp_path / "missing")


# --------------------------------------------------------------- resampling and targets
def test_depth_resize_is_nearest_and_never_invents_values():
    rng = np.random.default_rng(0)
    d = rng.integers(500, 4000, (37, 53)).astype(np.uint16)
    d[rng.random(d.shape) < 0.3] = 0
    for out in [(16, 20), (37, 53), (80, 111)]:
        r = resize_depth_nearest(d, out)
        ref = F.interpolate(torch.from_numpy(d.astype(np.float32))[None, None], size=out, mode="nearest-exact")
        np.testing.assert_array_equal(r, ref[0, 0].numpy().astype(np.uint16))
        assert set(np.unique(r)) <= set(np.unique(d))
    # A crop: every output pixel comes from the source pixel under its centre.
    c = crop_resize_depth(d, (3.0, 5.0, 20.0, 30.0), (10, 10))
    assert c[0, 0] == d[3 + 1, 5 + 1] and c[9, 9] == d[3 + 19, 5 + 28]


def _lidar_like(rng, h, w, fraction):
    d = np.zeros((h, w), np.uint16)
    hit = rng.random((h, w)) < fraction
    d[hit] = rng.integers(2000, 60000, hit.sum())
    return d


def test_sparse_depth_reduction_keeps_the_nearest_measured_return():
    rng = np.random.default_rng(1)
    d = _lidar_like(rng, 120, 190, 0.01)
    box, out = (7.0, 11.0, 100.0, 150.0), (21, 32)
    r = crop_resize_depth(d, box, out, sparse=True)
    assert r.dtype == d.dtype and set(np.unique(r)) <= set(np.unique(d))
    # Brute force: each output pixel = min valid depth over input pixels whose centres it covers.
    for i in range(out[0]):
        for j in range(out[1]):
            rows = [y for y in range(d.shape[0]) if i <= (y + 0.5 - box[0]) * out[0] / box[2] < i + 1]
            cols = [x for x in range(d.shape[1]) if j <= (x + 0.5 - box[1]) * out[1] / box[3] < j + 1]
            block = d[np.ix_(rows, cols)]
            assert r[i, j] == (block[block > 0].min() if (block > 0).any() else 0), (i, j)
    # Far more returns survive than with nearest neighbour, which keeps ~1 pixel in 22 here.
    near = crop_resize_depth(d, box, out)
    assert (r > 0).sum() > 4 * (near > 0).sum()
    assert np.array_equal(r[near > 0] <= near[near > 0], np.ones((near > 0).sum(), bool))
    # Enlarging: identical to nearest neighbour (no pixel covers an input centre it does not sample).
    np.testing.assert_array_equal(resize_depth_nearest(d, (240, 380), sparse=True), resize_depth_nearest(d, (240, 380)))


def test_frame_cache_reduces_lidar_frames_by_nearest_return(tmp_path):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    lidar = _lidar_like(rng, 300, 400, 0.004)
    (tmp_path / "s" / "rgb").mkdir(parents=True)
    (tmp_path / "s" / "depth").mkdir()
    Image.fromarray(rgb).save(tmp_path / "s" / "rgb" / "0.png")
    Image.fromarray(lidar).save(tmp_path / "s" / "depth" / "0.png")
    import json

    (tmp_path / "splits.json").write_text(json.dumps({"items": [
        {"source": "s", "id": "0", "rgb": "s/rgb/0.png", "depth": "s/depth/0.png", "split": "train"}]}))
    cache = FrameCache(read_rgbd(tmp_path), short_side=60)
    assert cache.sparse == [True] and is_sparse(lidar) and not is_sparse(synthetic_frame(rng, 30, 40)[1])
    assert cache.depth[0].shape == (60, 80)
    assert set(np.unique(cache.depth[0])) <= set(np.unique(lidar))
    assert (cache.depth[0] > 0).sum() > 3 * (resize_depth_nearest(lidar, (60, 80)) > 0).sum()
    # Training crops keep the returns too: after augmentation, every valid value is a measured one.
    ds = PairDataset(cache, 32)
    s = ds[(0, 7)]
    n_valid = int(s["valid"].sum())
    assert n_valid > 0.05 * 32 * 32


def test_depth_target_infinity_is_valid_and_farthest():
    depth = np.array([[1.0, 2.0, np.inf, 0.0]], np.float16)   # sky, as the synthetic frames store it
    t, valid = depth_to_target(depth)
    assert valid.tolist() == [[True, True, True, False]]
    assert t[0, 0] == 1.0 and t[0, 1] > t[0, 2] == -1.0
    t_sky, v_sky = depth_to_target(np.full((2, 2), np.inf, np.float32))
    assert v_sky.all() and (t_sky == -1).all()


def test_depth_target_convention():
    depth = np.array([[0.5, 1.0, 2.0, 0.0], [4.0, np.nan, 1.0, 1.0]], np.float32)
    t, valid = depth_to_target(depth)
    assert valid.tolist() == [[True, True, True, False], [True, False, True, True]]
    assert t.min() >= -1 and t.max() == 1.0 and t[0, 0] == 1.0        # nearest valid = brightest
    assert t[0, 0] > t[0, 1] > t[0, 2] > t[1, 0]                      # brighter = nearer
    assert t[0, 3] == -1 and t[1, 1] == -1
    disp = target_to_disparity(t)
    inv = 1.0 / depth[valid]
    np.testing.assert_allclose(disp[valid], np.minimum(inv / np.percentile(inv, 99), 1.0), rtol=1e-5)
    t3, _ = depth_to_target(depth * 3.7)                              # scale-invariant
    np.testing.assert_allclose(t3, t, atol=1e-6)
    unsat = valid & (disp < 1)  # the nearest 1 % saturate at 1
    rel = disparity_to_depth(disp)[unsat]
    np.testing.assert_allclose(rel / rel[0], depth[unsat] / depth[unsat][0], rtol=1e-5)  # depth up to scale


# --------------------------------------------------------------- augmentation
def test_augmentation_keeps_photo_and_depth_aligned():
    h, w = 60, 80
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([xx * 3, yy * 4, np.zeros_like(xx)], -1).astype(np.uint8)     # colour encodes position
    depth = (1000 + 10 * xx + 1000 * yy).astype(np.uint16)                          # so does depth
    cfg = AugmentConfig(brightness=0, contrast=0, saturation=0)
    flips = 0
    for seed in range(30):
        a_rgb, a_d = augment_pair(rgb, depth, 32, np.random.default_rng(seed), cfg)
        x_from_rgb = a_rgb[..., 0] * 255 / 3
        y_from_rgb = a_rgb[..., 1] * 255 / 4
        x_from_d = (a_d.astype(np.float32) - 1000) % 1000 / 10
        y_from_d = (a_d.astype(np.float32) - 1000) // 1000
        # Bilinear (photo) vs nearest (depth) sampling of the same box: within one source pixel.
        assert np.abs(x_from_rgb - x_from_d).max() <= 1.01
        assert np.abs(y_from_rgb - y_from_d).max() <= 1.01
        flips += x_from_d[0, 0] > x_from_d[0, -1]
        assert set(np.unique(a_d)) <= set(np.unique(depth))
    assert 5 < flips < 25


def test_colour_jitter_changes_photo_only_and_is_seeded():
    rng = np.random.default_rng(0)
    rgb, mm = synthetic_frame(rng, 48, 64)
    a = augment_pair(rgb, mm, 32, np.random.default_rng(5))
    b = augment_pair(rgb, mm, 32, np.random.default_rng(5))
    c = augment_pair(rgb, mm, 32, np.random.default_rng(5), AugmentConfig(brightness=0, contrast=0, saturation=0))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], c[1])     # same geometry, depth untouched by jitter
    assert np.abs(a[0] - c[0]).max() > 0.01 and 0 <= a[0].min() and a[0].max() <= 1


def test_pair_dataset_sample(tmp_path):
    root = make_rgbd_layout(tmp_path, n_train=3, n_eval=1)
    cache = FrameCache([f for f in read_rgbd(root) if f.split == "train"], short_side=40)
    assert cache.rgb[0].shape == (40, 53, 3) and cache.depth_mm[0].dtype == np.uint16
    ds = PairDataset(cache, 32)
    s = ds[(1, 123)]
    assert s["photo"].shape == (3, 32, 32) and s["target"].shape == (1, 32, 32) and s["valid"].dtype == torch.bool
    assert -1 <= s["photo"].min() and s["photo"].max() <= 1 and s["target"][s["valid"]].max() == 1.0
    assert torch.equal(ds[(1, 123)]["target"], s["target"])


def test_concat_cache_serves_real_and_synthetic_frames(tmp_path):
    root = make_rgbd_layout(tmp_path, n_train=3, n_eval=1)
    real = FrameCache([f for f in read_rgbd(root) if f.split == "train"], short_side=40)

    class Pool:  # the interface of a synthetic pool: float16 metres, inf = sky
        rgb = [np.full((40, 40, 3), 90, np.uint8)]
        depth = [np.where(np.arange(40)[:, None] < 10, np.inf, 2.0 + np.zeros((40, 40))).astype(np.float16)]
        sparse = [False]
        sources = ["synthetic"]

    both = ConcatCache([real, Pool()])
    assert len(both) == 4 and both.sources[-1] == "synthetic" and both.sources[:3] == real.sources
    s = PairDataset(both, 32, AugmentConfig.none())[(3, 0)]
    assert s["valid"].all() and (s["target"][0, :8] == -1).all() and (s["target"][0, 9:] == 1).all()


# --------------------------------------------------------------- sampling
def test_mix_weights_gives_the_pool_its_share():
    real = source_weights(["a"] * 10 + ["b"] * 2, 0.5)
    w = mix_weights(real, 5, 0.3)
    assert w.shape == (17,) and w.sum() == pytest.approx(1.0)
    assert w[12:].sum() == pytest.approx(0.3) and np.allclose(w[12:], 0.06)
    np.testing.assert_allclose(w[:12] / w[:12].sum(), real)
    np.testing.assert_allclose(mix_weights(real, 0, 0.0), real)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="ratio"):
            mix_weights(real, 5, bad)

def test_source_weights_balance_rare_sources():
    sources = ["big"] * 100 + ["small"] * 4 + ["tiny"]
    for power in (0.0, 0.5, 1.0):
        w = source_weights(sources, power)
        assert w.sum() == pytest.approx(1.0)
        share = {s: w[[i for i, x in enumerate(sources) if x == s]].sum() for s in ("big", "small", "tiny")}
        expect = np.array([100, 4, 1], float) ** power
        np.testing.assert_allclose(list(share.values()), expect / expect.sum())
    with pytest.raises(ValueError, match="power"):
        source_weights(sources, -1)


def test_step_sampler_is_deterministic_sharded_and_resumable():
    w = source_weights(["a"] * 30 + ["b"] * 3, 0.5)
    full = list(StepBatchSampler(w, 4, seed=1, start_step=0, stop_step=50))
    assert len(full) == 50 and full == list(StepBatchSampler(w, 4, seed=1, start_step=0, stop_step=50))
    assert list(StepBatchSampler(w, 4, seed=1, start_step=20, stop_step=50)) == full[20:]
    ranks = [list(StepBatchSampler(w, 2, seed=1, start_step=0, stop_step=50, rank=r, world_size=2)) for r in (0, 1)]
    for step in range(50):
        assert ranks[0][step] + ranks[1][step] == full[step]
    counts = Counter(i for batch in full for i, _ in batch)
    share_b = sum(c for i, c in counts.items() if i >= 30) / 200
    assert share_b == pytest.approx(np.sqrt(3) / (np.sqrt(30) + np.sqrt(3)), abs=0.08)
    assert list(StepBatchSampler(w, 4, seed=2, start_step=0, stop_step=5)) != full[:5]
