"""Depth embedded by phones: the real files in shared/data/phone and synthetic files of each format.

The real files prove the readers on what devices write; the synthetic ones (tests/_phone_files.py)
have known content, so decoding, registration and every malformed-input path are checked exactly.
"""
from __future__ import annotations

import base64
import sys

import numpy as np
import pytest
from PIL import Image

import pybokeh
from pybokeh import io
from pybokeh.cli import main
from pybokeh.phone import read_embedded_depth, read_photo_with_depth

import _phone_files as F

pytest.importorskip("pillow_heif")  # the test extra installs it; HEIC readers need it

PHONE_WITH_DEPTH = {
    # file: (source, kind, metric, stored map size w×h)
    "pillowheif_pug.heic": ("apple-heic", "disparity", False, (768, 576)),
    "fidmaa_heic_depth_data.heic": ("apple-heic", "disparity", True, (480, 640)),
    "fidmaa_jpeg_depth_data.jpg": ("apple-mpf", "disparity", True, (480, 640)),
    "exifr_xmp_depth_map.jpg": ("gdepth", "depth", False, (1536, 2048)),
    "mde_Android_Depth_Map.jpg": ("gdepth", "depth", False, (768, 1024)),
    "depthreader_xdm-photo4.jpg": ("xdm", "depth", False, (472, 352)),
}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(np.ravel(a), np.ravel(b)).statistic)


# ------------------------------------------------------------------ real files

@pytest.mark.parametrize("name", sorted(PHONE_WITH_DEPTH))
def test_every_phone_file_with_depth_yields_a_map_registered_to_its_photo(shared_data, name):
    source, kind, metric, stored = PHONE_WITH_DEPTH[name]
    got = read_photo_with_depth(shared_data / "phone" / name)
    assert got.source == source and got.kind == kind and got.metric == metric
    assert got.metadata["stored_size"] == stored
    # Registered: the photo's size and displayed orientation, finite and positive everywhere.
    assert got.depth.shape == got.image.shape[:2] and got.depth.dtype == np.float32
    assert np.isfinite(got.depth).all() and (got.depth > 0).all()
    h, w = got.image.shape[:2]
    assert abs((stored[0] / stored[1]) / (w / h) - 1) < 0.05  # same framing (no sideways map)
    d = got.disparity()
    assert d.min() == 0.0 and d.max() == 1.0


def test_registration_puts_the_near_subject_where_the_photo_has_it(shared_data):
    # The pug sits left of centre in front of a wall; the nearest third of its map must
    # overlap the pug's pixels (darker fur against the light wall), not the wall.
    got = read_photo_with_depth(shared_data / "phone" / "pillowheif_pug.heic")
    d = got.disparity()
    luma = got.image.astype(np.float32).mean(axis=2)
    h, w = d.shape
    top = d[: h * 2 // 3]  # the bed at the bottom is as near as the pug
    near = top > np.percentile(top, 80)
    far = top < np.percentile(top, 20)
    assert luma[: h * 2 // 3][near].mean() < luma[: h * 2 // 3][far].mean() - 30
    xs = np.nonzero(near)[1]
    assert np.median(xs) < 0.6 * w


def test_heic_without_depth_says_so(shared_data, tmp_path, capsys):
    path = shared_data / "phone" / "exifr_heic-iphone.heic"
    assert read_embedded_depth(path) is None
    got = read_photo_with_depth(path)
    assert got.depth is None and got.describe() == "no embedded depth" and got.image.shape == (3024, 4032, 3)
    code = main(["render", str(path), "--depth-source", "embedded", "-o", str(tmp_path / "o.jpg")])
    err = capsys.readouterr().err
    assert code == 1 and "no embedded depth" in err and "Traceback" not in err


def test_pug_map_matches_pillow_heifs_reference_decode(shared_data):
    stored = read_embedded_depth(shared_data / "phone" / "pillowheif_pug.heic")
    reference = np.asarray(Image.open(shared_data / "phone" / "pillowheif_pug_depth_reference.png"), np.float32)
    assert stored.values.shape == reference.shape
    assert spearman(stored.values, reference) >= 0.99
    # Decoded as FloatMin + v/255·(FloatMax − FloatMin) (XMP: 1.498047 .. 4.382812, Accuracy relative).
    np.testing.assert_allclose(stored.values, 1.498047 + reference / 255 * (4.382812 - 1.498047), atol=1e-5)
    assert stored.metadata["Accuracy"] == "relative" and stored.units is None


@pytest.mark.parametrize("name", ["exifr_xmp_depth_map.jpg", "mde_Android_Depth_Map.jpg"])
def test_gdepth_decode_reproduces_the_focal_distance_at_the_focal_point(shared_data, name):
    stored = read_embedded_depth(shared_data / "phone" / name)
    m = stored.metadata
    h, w = stored.values.shape
    x, y = int(m["FocalPointX"] * w), int(m["FocalPointY"] * h)
    assert stored.values[y, x] == pytest.approx(m["FocalDistance"], rel=1e-5)
    assert m["Format"] == "RangeInverse"
    # RangeInverse maps stored 0 to Near (these files: darker = nearer).
    assert stored.values.min() >= m["Near"] - 1e-3 and stored.values.max() <= m["Far"] + 1e-3


def test_apple_metric_disparity_and_mpf_index(shared_data):
    jpeg = read_embedded_depth(shared_data / "phone" / "fidmaa_jpeg_depth_data.jpg")
    assert jpeg.metadata["mpf_index"] == 2              # the 2nd image, not the portrait matte (3rd)
    assert jpeg.units == "1/m" and jpeg.metadata["Accuracy"] == "absolute"
    assert 0.554 <= jpeg.values.min() and jpeg.values.max() <= 2.8086
    heic = read_embedded_depth(shared_data / "phone" / "fidmaa_heic_depth_data.heic")
    assert heic.units == "1/m" and heic.metadata["FloatMaxValue"] == pytest.approx(3.767578)


def test_xdm_values_are_the_stored_sixteen_bit_depth(shared_data):
    stored = read_embedded_depth(shared_data / "phone" / "depthreader_xdm-photo4.jpg")
    assert stored.metadata["Format"] == "RangeLinear" and stored.metadata["camera"] == 0
    assert stored.values.min() == 666 and stored.values.max() == 19012
    assert np.median(stored.values) == 3133


def test_render_uses_embedded_depth_by_default_and_says_so(shared_data, tmp_path, capsys):
    out = tmp_path / "pug.heic"
    assert main(["render", str(shared_data / "phone" / "pillowheif_pug.heic"), "-o", str(out), "--quality", "60",
                 "--save-depth", str(tmp_path / "d.npy")]) == 0
    err = capsys.readouterr().err
    assert "depth: embedded in the photo (iPhone HEIC auxiliary disparity image, 768×576" in err
    assert "estimating" not in err and "focus: main subject at pixel" in err
    got = read_photo_with_depth(shared_data / "phone" / "pillowheif_pug.heic")
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), got.disparity())
    written = io.read_photo(out)        # HEIC output, read back through the heif extra
    assert written.shape == got.image.shape
    assert np.abs(written.astype(np.float32) - got.image).mean() > 1.0   # something was blurred


# ------------------------------------------------------------------ synthetic GDepth / XDM / Dynamic Depth

@pytest.fixture
def scene(rng):
    """A 40×60 photo and an 8-bit GDepth-style map (a near square in a far room)."""
    photo = (rng.random((40, 60, 3)) * 255).astype(np.uint8)
    stored = np.full((40, 60), 200, np.uint8)
    stored[10:25, 20:40] = 30
    return photo, stored


def test_gdepth_range_inverse_and_linear(tmp_path, scene):
    photo, stored = scene
    for fmt, expected in [("RangeInverse", 2.0 * 8.0 / (8.0 - stored / 255.0 * 6.0)),
                          ("RangeLinear", 2.0 + stored / 255.0 * 6.0)]:
        path = tmp_path / f"{fmt}.jpg"
        path.write_bytes(F.gdepth_jpeg(photo, F.png_bytes(stored, "RGBA"), fmt=fmt, near=2.0, far=8.0, chunk=700))
        got = read_embedded_depth(path)
        assert got.source == "gdepth" and got.kind == "depth"
        np.testing.assert_allclose(got.values, expected, rtol=1e-5)


def test_gdepth_sixteen_bit_png_uses_the_full_scale(tmp_path, scene):
    photo, stored = scene
    wide = stored.astype(np.uint16) * 257
    path = tmp_path / "p.jpg"
    path.write_bytes(F.gdepth_jpeg(photo, F.png_bytes(wide), fmt="RangeLinear", near=0.0, far=10.0))
    np.testing.assert_allclose(read_embedded_depth(path).values, stored / 255.0 * 10.0, rtol=1e-5)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_embedded_map_is_turned_like_the_photo(tmp_path, scene, orientation):
    # The map is stored in the frame of the stored pixels; the photo is shown turned by EXIF.
    photo, stored = scene
    path = tmp_path / "o.jpg"
    path.write_bytes(F.gdepth_jpeg(photo, F.png_bytes(stored), fmt="RangeLinear", near=1.0, far=2.0,
                                   orientation=orientation))
    got = read_photo_with_depth(path)
    turned = {3: np.rot90(stored, 2), 6: np.rot90(stored, -1), 8: np.rot90(stored, 1)}[orientation]
    assert got.image.shape[:2] == turned.shape == got.depth.shape
    np.testing.assert_allclose(got.depth, 1.0 + turned / 255.0, rtol=1e-5)


def test_smaller_map_of_another_aspect_is_cropped_and_resized(tmp_path, rng):
    # A 4:3 sensor map for a 3:2 photo (crop of 12.5 %): the centre rows are kept.
    photo = (rng.random((40, 60, 3)) * 255).astype(np.uint8)
    rows = np.repeat(np.linspace(0, 255, 24).astype(np.uint8)[:, None], 32, axis=1)   # 32×24, 4:3
    path = tmp_path / "c.jpg"
    path.write_bytes(F.gdepth_jpeg(photo, F.png_bytes(rows), fmt="RangeLinear", near=0.0, far=1.0))
    got = read_photo_with_depth(path)
    assert got.depth.shape == (40, 60) and "central 21 of 24 rows" in got.metadata["cropped"]
    assert got.depth[0].mean() > rows[0, 0] / 255 + 0.01     # the top rows were cropped away


def test_xdm_sixteen_bit_depth_with_holes(tmp_path, scene):
    photo, stored = scene
    depth = (stored.astype(np.uint16) * 20).astype(np.uint16)
    depth[0, :5] = 0                                      # no measurement
    path = tmp_path / "x.jpg"
    path.write_bytes(F.xdm_jpeg(photo, depth))
    got = read_embedded_depth(path)
    assert got.source == "xdm"
    assert np.isnan(got.values[0, :5]).all()
    np.testing.assert_array_equal(got.values[1:], depth[1:].astype(np.float32))
    registered = read_photo_with_depth(path)
    assert np.isfinite(registered.depth).all() and registered.metadata["invalid_fraction"] > 0
    # The holes, filled in `depth`, are marked in `valid` (same size as the photo here: no resampling).
    expected = np.ones(depth.shape, bool)
    expected[0, :5] = False
    assert registered.valid.shape == registered.depth.shape
    np.testing.assert_array_equal(registered.valid, expected)
    depth[0, :5] = 7
    path.write_bytes(F.xdm_jpeg(photo, depth))
    assert read_photo_with_depth(path).valid is None                  # every sample valid


def test_dynamic_depth_container_item(tmp_path, scene):
    photo, stored = scene
    depth = stored.astype(np.uint16) * 257
    path = tmp_path / "dd.jpg"
    path.write_bytes(F.dynamic_depth_jpeg(photo, depth, near=0.5, far=4.5))
    got = read_embedded_depth(path)
    assert got.source == "dynamic-depth" and got.metric and got.units == "m"
    np.testing.assert_allclose(got.values, 0.5 + depth / 65535.0 * 4.0, rtol=1e-5)
    assert np.asarray(Image.open(path)).shape == photo.shape      # still an ordinary JPEG


def test_plain_photos_have_no_embedded_depth(tmp_path, scene):
    photo, _ = scene
    for name in ("p.jpg", "p.png"):
        Image.fromarray(photo).save(tmp_path / name)
        assert read_embedded_depth(tmp_path / name) is None


def _bad_files(photo, stored):
    png = F.png_bytes(stored)
    return {
        "truncated extended XMP": (F.gdepth_jpeg(photo, png, drop_chunk=1, chunk=200), "truncated"),
        "bad base64": (F.gdepth_jpeg(photo, "@@not*base64@@"), "not valid base64"),
        "not an image": (F.gdepth_jpeg(photo, b"\x89PNG\r\n\x1a\n garbage"), "not a readable image"),
        "map larger than photo": (F.gdepth_jpeg(photo, F.png_bytes(np.zeros((80, 120), np.uint8))),
                                  "larger than its photo"),
        "near beyond far": (F.gdepth_jpeg(photo, png, near=5.0, far=1.0), "Near < Far"),
        "unknown format": (F.gdepth_jpeg(photo, png, fmt="RangeCubic"), "unknown depth format"),
        "malformed XML": (F.insert_segments(F.jpeg_bytes(photo), [F.app1(
            F.XMP_MAIN + b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><oops></x:xmpmeta>')]), "malformed XMP"),
        "entities": (F.insert_segments(F.jpeg_bytes(photo), [F.app1(
            F.XMP_MAIN + b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/"></x:xmpmeta>')]),
            "DTD or entities"),
        "sideways map": (F.gdepth_jpeg(photo, F.png_bytes(np.zeros((60, 20), np.uint8))), "framing"),
    }


@pytest.mark.parametrize("case", ["truncated extended XMP", "bad base64", "not an image", "map larger than photo",
                                  "near beyond far", "unknown format", "malformed XML", "entities", "sideways map"])
def test_malformed_depth_metadata_is_a_one_line_error(tmp_path, scene, capsys, case):
    photo, stored = scene
    data, match = _bad_files(photo, stored)[case]
    path = tmp_path / "bad.jpg"
    path.write_bytes(data)
    with pytest.raises(io.ImageFileError, match=match):
        read_photo_with_depth(path)
    # The CLI: one line with --depth-source embedded ...
    code = main(["render", str(path), "--depth-source", "embedded", "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert code == 1 and match in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2 and err.strip().splitlines()[-1].startswith("pybokeh render: error:")


def test_auto_falls_back_to_estimation_when_the_embedded_map_is_unreadable(tmp_path, scene, capsys):
    pytest.importorskip("torch")
    photo, stored = scene
    path = tmp_path / "bad.jpg"
    path.write_bytes(F.gdepth_jpeg(photo, "@@not*base64@@"))
    assert main(["render", str(path), "-o", str(tmp_path / "o.png")]) == 0
    err = capsys.readouterr().err
    assert "embedded depth is unreadable" in err and "not valid base64" in err and "estimating it" in err


def test_depth_source_conflicts_and_estimate(tmp_path, scene, capsys):
    photo, stored = scene
    path = tmp_path / "g.jpg"
    path.write_bytes(F.gdepth_jpeg(photo, F.png_bytes(stored), fmt="RangeLinear", near=1.0, far=3.0))
    np.save(tmp_path / "d.npy", np.ones((40, 60), np.float32))
    code = main(["render", str(path), "--depth", str(tmp_path / "d.npy"), "--depth-source", "embedded",
                 "-o", str(tmp_path / "o.png")])
    assert code == 1 and "drop one of them" in capsys.readouterr().err
    # The embedded map renders exactly like the library given the same disparity and subject focus.
    assert main(["render", str(path), "-o", str(tmp_path / "o.png"), "--max-blur", "5", "-q"]) == 0
    got = read_photo_with_depth(path)
    subject = pybokeh.subject_focus(got.disparity())
    expected = pybokeh.render(got.image, got.disparity(), subject.value, focus_range=subject.focus_range,
                              max_blur=5.0)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")), expected)


def test_depth_source_estimate_ignores_the_embedded_map(tmp_path, scene, capsys):
    pytest.importorskip("torch")
    photo, stored = scene
    path = tmp_path / "g.jpg"
    path.write_bytes(F.gdepth_jpeg(photo, F.png_bytes(stored), fmt="RangeLinear", near=1.0, far=3.0))
    assert main(["render", str(path), "--depth-source", "estimate", "-o", str(tmp_path / "e.png")]) == 0
    err = capsys.readouterr().err
    assert "depth: embedded" not in err and "estimating it" in err


def test_heic_without_the_extra_names_it(tmp_path, shared_data, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)   # import pillow_heif -> ImportError
    path = shared_data / "phone" / "pillowheif_pug.heic"
    with pytest.raises(io.ImageFileError, match=r'pybokeh\[heif\]'):
        io.read_photo(path)
    with pytest.raises(io.ImageFileError, match=r'pybokeh\[heif\]'):
        read_photo_with_depth(path)
    assert main(["render", str(path), "-o", str(tmp_path / "o.jpg")]) == 1
    err = capsys.readouterr().err
    assert 'pip install "pybokeh[heif]"' in err and "Traceback" not in err
    photo = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(io.ImageFileError, match=r'pybokeh\[heif\]'):
        io.write_image(tmp_path / "x.heic", photo)


def test_base64_with_line_breaks_is_accepted(tmp_path, scene):
    # XMP writers wrap long base64 values (XDM uses &#xA; entities for newlines).
    photo, stored = scene
    text = base64.b64encode(F.png_bytes(stored)).decode()
    wrapped = "&#xA;".join(text[i:i + 76] for i in range(0, len(text), 76))
    path = tmp_path / "w.jpg"
    path.write_bytes(F.gdepth_jpeg(photo, wrapped, fmt="RangeLinear", near=0.0, far=1.0))
    np.testing.assert_allclose(read_embedded_depth(path).values, stored / 255.0, rtol=1e-5)
