"""The ``pybokeh render`` command."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import pybokeh
from pybokeh import io
from pybokeh.cli import main

from conftest import random_image


@pytest.fixture
def files(tmp_path, rng):
    photo = random_image(rng, (60, 80))
    Image.fromarray(photo).save(tmp_path / "photo.png")
    # 16-bit disparity whose low byte matters: an 8-bit read would lose it.
    depth = (np.tile(np.linspace(0, 65535, 80), (60, 1)) + rng.integers(0, 200, (60, 80))).clip(0, 65535)
    depth = depth.astype(np.uint16)
    Image.fromarray(depth).save(tmp_path / "depth.png")
    return tmp_path, photo, depth


def test_sixteen_bit_depth_is_read_at_full_precision(files):
    tmp, _, depth = files
    got = io.read_depth(tmp / "depth.png")
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, depth)


def test_render_command_matches_the_library(files, capsys):
    tmp, photo, depth = files
    out = tmp / "out.png"
    assert main(["render", str(tmp / "photo.png"), "--depth", str(tmp / "depth.png"), "--focus", "0.45",
                 "--max-blur", "9", "--blades", "6", "-o", str(out)]) == 0
    expected = pybokeh.render(photo, depth, 0.45, max_blur=9.0, blades=6)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    assert "rendering 80×60" in capsys.readouterr().err          # progress on stderr


def test_focus_xy_and_metric_depth_in_millimetres(files):
    tmp, photo, _ = files
    depth_mm = np.full((60, 80), 3000, np.uint16)
    depth_mm[20:40, 30:50] = 1200
    Image.fromarray(depth_mm).save(tmp / "depth_mm.png")
    out = tmp / "out.png"
    assert main(["render", str(tmp / "photo.png"), "--depth", str(tmp / "depth_mm.png"), "--depth-kind", "depth",
                 "--depth-scale", "0.001", "--focus-xy", "40,30", "--f-number", "2", "-q", "-o", str(out)]) == 0
    expected = pybokeh.render(photo, depth_mm * np.float32(0.001), (40.0, 30.0), depth_kind="depth", f_number=2.0)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    np.testing.assert_array_equal(expected[25:35, 35:45], photo[25:35, 35:45])   # the subject is in focus


def _write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make,match", [
    (lambda t: t / "missing.jpg", "does not exist"),
    (lambda t: t, "is a directory"),
    (lambda t: _write(t / "junk.png", b"not an image at all"), "not an image file"),
    (lambda t: _write(t / "cut.png", (t / "photo.png").read_bytes()[:200]), "photo"),
])
def test_unreadable_photo_gives_a_clear_message(files, capsys, make, match):
    tmp = files[0]
    code = main(["render", str(make(tmp)), "--depth", str(tmp / "depth.png"), "-o", str(tmp / "o.png")])
    err = capsys.readouterr().err
    assert code == 1 and match in err and "Traceback" not in err


def test_unreadable_depth_and_bad_values(files, capsys):
    tmp = files[0]
    assert main(["render", str(tmp / "photo.png"), "--depth", str(tmp / "nope.png"), "-o", str(tmp / "o.png")]) == 1
    assert "depth map" in capsys.readouterr().err
    colour = np.zeros((60, 80, 3), np.uint8)
    colour[..., 1] = 80
    Image.fromarray(colour).save(tmp / "colour.png")
    assert main(["render", str(tmp / "photo.png"), "--depth", str(tmp / "colour.png"), "-o", str(tmp / "o.png")]) == 1
    assert "colour image" in capsys.readouterr().err
    assert main(["render", str(tmp / "photo.png"), "--depth", str(tmp / "depth.png"), "--blades", "2",
                 "-o", str(tmp / "o.png")]) == 1
    assert "blades" in capsys.readouterr().err
    assert main(["render", str(tmp / "photo.png"), "--depth", str(tmp / "depth.png"), "-o",
                 str(tmp / "o.unknownformat")]) == 1
    assert "unknown file type" in capsys.readouterr().err


def test_bad_focus_xy_is_a_usage_error(files):
    tmp = files[0]
    with pytest.raises(SystemExit) as info:
        main(["render", str(tmp / "photo.png"), "--depth", str(tmp / "depth.png"), "--focus-xy", "12",
              "-o", str(tmp / "o.png")])
    assert info.value.code == 2


def test_console_script_is_installed(files):
    tmp = files[0]
    exe = shutil.which("pybokeh", path=os.path.dirname(sys.executable))
    assert exe, "the pybokeh console script is not installed beside this Python"
    result = subprocess.run([exe, "render", str(tmp / "photo.png"), "--depth", str(tmp / "depth.png"),
                             "-o", str(tmp / "cli.jpg")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp / "cli.jpg").size == (80, 60)


def _with_orientation(image: Image.Image, orientation: int) -> Image.Exif:
    exif = image.getexif()
    exif[0x0112] = orientation
    return exif


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_depth_turns_a_map_like_the_photo(tmp_path, rng, orientation):
    # A map computed from the stored pixels must be turned exactly as
    # ImageOps.exif_transpose turns the photo (checked against PIL itself).
    stored = random_image(rng, (5, 7))
    img = Image.fromarray(stored)
    img.save(tmp_path / "p.png", exif=_with_orientation(img, orientation))
    assert io.photo_orientation(tmp_path / "p.png") == orientation
    shown = io.read_photo(tmp_path / "p.png")
    turned, did = io.orient_depth(stored[..., 1], orientation, shown.shape)
    assert did == (orientation >= 5)
    if did:
        np.testing.assert_array_equal(turned, shown[..., 1])
    else:  # same aspect as displayed (or only a flip): left as it is
        np.testing.assert_array_equal(turned, stored[..., 1])


def test_render_turns_a_depth_map_of_the_stored_pixels(tmp_path, rng, capsys):
    # A phone photo stored landscape with "rotate 90° clockwise" in EXIF, and a
    # depth map a tool computed from the stored (landscape) pixels.
    stored = random_image(rng, (40, 64))
    img = Image.fromarray(stored)
    img.save(tmp_path / "p.png", exif=_with_orientation(img, 6))
    depth = np.tile(np.linspace(0, 255, 64), (40, 1)).astype(np.uint8)
    Image.fromarray(depth).save(tmp_path / "d.png")
    out = tmp_path / "out.png"
    assert main(["render", str(tmp_path / "p.png"), "--depth", str(tmp_path / "d.png"), "--focus", "0.5",
                 "--max-blur", "8", "-o", str(out)]) == 0
    assert "EXIF orientation" in capsys.readouterr().err
    shown = io.read_photo(tmp_path / "p.png")
    expected = pybokeh.render(shown, np.rot90(depth, -1), 0.5, max_blur=8.0)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)


def test_focus_units_and_f_number_in_disparity_mode(files, capsys):
    tmp, photo, depth = files
    out = tmp / "out.png"
    # The same normalised focus for the 16-bit map as for its 8-bit copy; --f-number scales the blur.
    assert main(["render", str(tmp / "photo.png"), "--depth", str(tmp / "depth.png"), "--focus", "0.3",
                 "--focus-range", "0.1", "--f-number", "3.6", "-q", "-o", str(out)]) == 0
    expected = pybokeh.render(photo, depth, 0.3, focus_range=0.1, f_number=3.6)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    half = pybokeh.coc_map(depth, 0.3, focus_range=0.1, f_number=3.6)
    np.testing.assert_allclose(half, pybokeh.coc_map(depth, 0.3, focus_range=0.1) / 2, rtol=1e-5, atol=1e-5)
    for bad, match in (("1.5", "normalised disparity in [0, 1]"), ("30000", "normalised disparity in [0, 1]")):
        assert main(["render", str(tmp / "photo.png"), "--depth", str(tmp / "depth.png"), "--focus", bad,
                     "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err
    assert main(["render", str(tmp / "photo.png"), "--depth", str(tmp / "depth.png"), "--f-number", "2",
                 "--max-blur", "4", "-o", str(out)]) == 1
    assert "not both" in capsys.readouterr().err
