"""Grouped depth evaluation (pybokeh eval-depth): groups, baselines, alignments, photos, phone captures."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import _phone_files as F
from _nets_helpers import make_rgbd_layout

from pybokeh.nets.baselines import constant_depth, lower_nearer_depth
from pybokeh.nets.data import phone as phone_data
from pybokeh.nets.data.phone import read_phone_pairs
from pybokeh.nets.data.photos import read_photo_pairs
from pybokeh.nets.groups import GROUPS, evaluate_grouped, format_grouped, group_of


def test_groups_of_sources():
    assert group_of("osd_tabletop_pcl") == "in-domain"
    assert group_of("tsdf_fusion_closeup") == "unseen indoor"
    assert group_of("dgp_outdoor_lidar", {"dgp_outdoor_lidar"}) == "outdoor"   # trained on scene_02 or not
    assert group_of("normalgan_people_kinect2") == "people"
    assert group_of("my_scene", {"my_scene"}) == "in-domain" and group_of("new_scene", {"x"}) == "other"


def _item(group, name, rgb, gt):
    return group, "src_" + group, name, lambda: (rgb, gt)


def test_grouped_scores_model_and_baselines_under_both_alignments():
    h, w = 24, 32
    rgb = np.zeros((h, w, 3), np.uint8)
    rows = (np.arange(h, dtype=np.float64)[:, None] + 0.5) / h
    ground = np.repeat(2.0 / (0.2 + rows), w, 1)          # a ground plane: depth falls down the frame
    lidar = np.where(np.random.default_rng(0).random((h, w)) < 0.05, 30.0 * ground, 0.0)
    items = [_item("in-domain", "a", rgb, ground), _item("outdoor", "b", rgb, lidar)]
    def predict(img):                                  # the model: exact up to scale
        assert img is rgb
        return ground * 3.0

    res = evaluate_grouped(predict, items)
    g = res["groups"]
    assert list(g) == ["in-domain", "outdoor"] and g["outdoor"]["max_depth"] == 80.0
    for group in g:
        model, const, lower = (g[group]["methods"][m] for m in ("model", "constant", "lower-nearer"))
        for a in ("median", "disparity"):
            assert model[a]["abs_rel"] < 1e-6 and model[a]["delta1"] == 1.0
            assert lower[a]["abs_rel"] < const[a]["abs_rel"]        # the prior knows the ground plane
    # Sparse outdoor depth up to 80 m is scored where valid only (no depth invented elsewhere).
    rows_b = [r for r in res["per_image"] if r["name"] == "b"]
    assert len(rows_b) == 6                                          # 3 methods x 2 alignments
    text = format_grouped(res)
    assert "outdoor" in text and "lower-nearer" in text and "disparity abs_rel" in text
    assert GROUPS["people"][1] in format_grouped(evaluate_grouped(predict, [_item("people", "c", rgb, ground)]))


def test_baselines():
    rgb = np.zeros((4, 3, 3), np.uint8)
    np.testing.assert_allclose(lower_nearer_depth(rgb)[:, 0], [2 - 0.125, 2 - 0.375, 2 - 0.625, 2 - 0.875])
    assert (constant_depth(rgb) == 1).all() and lower_nearer_depth(rgb).shape == (4, 3)


def test_photo_pairs_read_reference_disparity_as_pseudo_depth(tmp_path):
    (tmp_path / "bokehme").mkdir()
    (tmp_path / "mpib").mkdir()
    Image.fromarray(np.full((10, 16, 3), 100, np.uint8)).save(tmp_path / "bokehme" / "inputs_1.jpg")
    ref = np.tile(np.linspace(0, 60000, 8).astype(np.uint16), (5, 1))     # half resolution, 16 bit
    Image.fromarray(ref).save(tmp_path / "bokehme" / "inputs_1.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "mpib" / "x_all-in-focus.jpg")  # no map: skipped
    pairs = read_photo_pairs(tmp_path)
    assert [(p.source, p.name) for p in pairs] == [("bokehme", "inputs_1.jpg")]
    photo, depth = pairs[0].load()
    assert photo.shape == (5, 8, 3) and depth.shape == (5, 8)
    assert depth[0, -1] == pytest.approx(1.0) and depth[0, 0] == pytest.approx(50.0)  # disparity 0 → floor 0.02
    assert np.all(np.diff(depth[0]) < 0)                                   # brighter = nearer
    with pytest.raises(FileNotFoundError):
        read_photo_pairs(tmp_path / "missing")


def _xdm_capture(path, h=12, w=16):
    """A JPEG with an XDM depth map (RangeLinear, the value is the depth): rows 1000..4000 from the top,
    its top-left 2×2 block invalid (0)."""
    depth16 = np.repeat(np.linspace(1000, 4000, h).astype(np.uint16)[:, None], w, 1)
    depth16[:2, :2] = 0
    rng = np.random.default_rng(1)
    path.write_bytes(F.xdm_jpeg(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), depth16))
    return depth16


def test_phone_pairs_read_device_depth_relative_to_the_nearest(tmp_path, monkeypatch):
    depth16 = _xdm_capture(tmp_path / "b_xdm.jpg")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a_plain.jpg")   # no depth: left out
    (tmp_path / "notes.txt").write_text("not a photo")
    pairs = read_phone_pairs(tmp_path)
    assert [(p.source, p.name) for p in pairs] == [("xdm", "b_xdm.jpg")]
    photo, depth = pairs[0].load()
    assert photo.shape == (12, 16, 3) and photo.dtype == np.uint8 and depth.dtype == np.float32
    valid = depth16 > 0
    assert np.array_equal(depth > 0, valid)                                 # invalid stays 0
    assert depth[valid].min() == pytest.approx(1.0)                          # relative to the nearest
    np.testing.assert_allclose(depth[valid], depth16[valid] / depth16[valid].min(), rtol=1e-5)
    # Shrunk to LONG_SIDE: a box of mostly invalid pixels stays invalid, the others average inverse depth.
    monkeypatch.setattr(phone_data, "LONG_SIDE", 8)
    photo, depth = pairs[0].load()
    assert photo.shape == (6, 8, 3) and depth.shape == (6, 8)
    assert depth[0, 0] == 0 and np.all(depth.ravel()[1:] > 0)
    inverse = np.where(valid, 1.0 / np.maximum(depth16, 1), 0.0).reshape(6, 2, 8, 2)
    with np.errstate(divide="ignore"):
        boxes = 1.0 / (inverse.sum(axis=(1, 3)) / np.maximum((inverse > 0).sum(axis=(1, 3)), 1))
    boxes[0, 0] = 0
    np.testing.assert_allclose(depth, boxes / boxes[boxes > 0].min(), rtol=1e-4)
    assert np.all(np.diff(depth[:, 4]) > 0)                                   # farther down the frame, as stored
    # Malformed depth metadata is a one-line ValueError naming the file, not a silent skip.
    (tmp_path / "c_broken.jpg").write_bytes(F.gdepth_jpeg(np.zeros((8, 8, 3), np.uint8), F.png_bytes(
        np.zeros((8, 8), np.uint8)), drop_chunk=0, chunk=40))
    with pytest.raises(ValueError, match="c_broken.jpg"):
        read_phone_pairs(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_phone_pairs(tmp_path / "missing")


def test_eval_depth_cli_prints_groups_and_photos(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from pybokeh.cli import main
    from pybokeh.nets import UNetGenerator
    from pybokeh.nets.checkpoint import save_generator

    data = make_rgbd_layout(tmp_path / "rgbd", n_train=3, n_eval=2)
    (tmp_path / "photos" / "blb_preview").mkdir(parents=True)
    Image.fromarray(np.full((12, 20, 3), 90, np.uint8)).save(tmp_path / "photos" / "blb_preview" / "1_image.jpg")
    Image.fromarray(np.tile(np.linspace(10, 250, 20).astype(np.uint8), (12, 1))).save(
        tmp_path / "photos" / "blb_preview" / "1_disparity.jpg")
    torch.manual_seed(0)
    save_generator(tmp_path / "g.safetensors", UNetGenerator(ngf=2, levels=5, input_size=32), {})
    assert main(["eval-depth", "--weights", str(tmp_path / "g.safetensors"), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "photos: " in out and "grouped, beside the baselines" in out and "pseudo ground truth" in out
    assert "phone: " not in out                                          # no phone folder beside the data yet
    (tmp_path / "phone").mkdir()
    _xdm_capture(tmp_path / "phone" / "x.jpg")
    assert main(["eval-depth", "--weights", str(tmp_path / "g.safetensors"), "--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["groups"]) == {"other", "photos", "phone"} and report["groups"]["phone"]["count"] == 1
    assert report["phone"] == str(tmp_path / "phone") and report["mean"]["count"] == 2  # frames only
    assert main(["eval-depth", "--weights", str(tmp_path / "g.safetensors"), "--data", str(data), "--json",
                 "--photos", "none", "--phone", "none"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["groups"]) == {"other"} and report["mean"]["count"] == 2
    m = report["groups"]["other"]["methods"]
    assert set(m) == {"model", "constant", "lower-nearer"} and set(m["model"]) == {"median", "disparity"}
