"""``pybokeh depth``, ``pybokeh demo`` and ``pybokeh render`` without ``--depth``."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import pybokeh
from pybokeh.cli import DEMO_FOCUS_XY, demo_photo_path, main

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory):
    """An odd-sized crop of the demo photo, as a PNG (lossless: the CLI sees the same pixels)."""
    tmp = tmp_path_factory.mktemp("cli_depth")
    photo = np.asarray(Image.open(demo_photo_path()).convert("RGB"))[100:243, 300:511].copy()
    Image.fromarray(photo).save(tmp / "photo.png")
    return tmp, photo


def test_depth_command_writes_a_sixteen_bit_png(photo_file, capsys):
    tmp, photo = photo_file
    assert main(["depth", str(tmp / "photo.png"), "-o", str(tmp / "depth.png")]) == 0
    img = Image.open(tmp / "depth.png")
    assert img.mode.startswith("I;16") and img.size == (photo.shape[1], photo.shape[0])
    expected = np.round(pybokeh.estimate_depth(photo) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(np.asarray(img), expected)
    assert "estimating depth" in capsys.readouterr().err


def test_depth_command_float_outputs_and_bilinear(photo_file):
    tmp, photo = photo_file
    assert main(["depth", str(tmp / "photo.png"), "-o", str(tmp / "d.npy"), "--upsample", "bilinear", "-q"]) == 0
    np.testing.assert_array_equal(np.load(tmp / "d.npy"), pybokeh.estimate_depth(photo, upsample="bilinear"))
    assert main(["depth", str(tmp / "photo.png"), "-o", str(tmp / "d.tif"), "-q"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp / "d.tif")), pybokeh.estimate_depth(photo))


@pytest.mark.parametrize("args,match", [
    (["-o", "{tmp}/d.jpg"], "use one of .png"),
    (["-o", "{tmp}/d.png", "--device", "tpu"], "device"),
    (["-o", "{tmp}/d.png", "--weights", "{tmp}/none.safetensors"], "not found"),
])
def test_depth_command_errors_are_one_line(photo_file, capsys, args, match):
    tmp, _ = photo_file
    code = main(["depth", str(tmp / "photo.png")] + [a.format(tmp=tmp) for a in args])
    err = capsys.readouterr().err
    assert code == 1 and match in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("pybokeh depth: error:")


def test_render_without_depth_estimates_it(photo_file, capsys):
    tmp, photo = photo_file
    out, saved = tmp / "out.png", tmp / "est.png"
    assert main(["render", str(tmp / "photo.png"), "-o", str(out), "--max-blur", "6",
                 "--save-depth", str(saved)]) == 0
    disparity = pybokeh.estimate_depth(photo)
    h, w = photo.shape[:2]
    subject = pybokeh.subject_focus(disparity, (h, w))   # no focus given: the main subject, with its band
    expected = pybokeh.render(photo, disparity, subject.value, focus_range=subject.focus_range, max_blur=6.0)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    np.testing.assert_array_equal(np.asarray(Image.open(saved)), np.round(disparity * 65535).astype(np.uint16))
    err = capsys.readouterr().err
    assert "no embedded depth" in err and "packaged Pix2Pix model" in err
    assert f"main subject at pixel {subject.xy[0]},{subject.xy[1]}" in err
    # The packaged indoor model says once how to get better depth.
    assert err.count("--depth-model hf:") == 1 and "pybokeh[onnx]" in err


@pytest.mark.parametrize("extra,match", [
    (["--depth-kind", "depth"], "need a --depth map"),
    (["--depth", "{tmp}/photo.png", "--save-depth", "{tmp}/x.png"], "needs no --depth"),
])
def test_render_depth_option_conflicts(photo_file, capsys, extra, match):
    tmp, _ = photo_file
    code = main(["render", str(tmp / "photo.png"), "-o", str(tmp / "o.png")] + [a.format(tmp=tmp) for a in extra])
    err = capsys.readouterr().err
    assert code == 1 and match in err and "Traceback" not in err


def test_demo_photo_ships_with_the_package():
    path = demo_photo_path()
    assert path.is_file() and path.stat().st_size < 300_000
    with Image.open(path) as img:
        assert img.format == "JPEG" and img.size == (1024, 682)
        w, h = img.size
    assert 0 <= DEMO_FOCUS_XY[0] < w and 0 <= DEMO_FOCUS_XY[1] < h


@pytest.mark.slow
def test_demo_command_end_to_end(tmp_path):
    # The exact command a new user types, through the installed console script.
    exe = shutil.which("pybokeh", path=os.path.dirname(sys.executable))
    assert exe, "the pybokeh console script is not installed beside this Python"
    r = subprocess.run([exe, "demo", "-o", str(tmp_path / "out.jpg"), "--save-depth", str(tmp_path / "d.png")],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "out.jpg").convert("RGB")).astype(np.float32)
    photo = np.asarray(Image.open(demo_photo_path()).convert("RGB")).astype(np.float32)
    assert out.shape == photo.shape
    assert np.abs(out - photo).mean() > 1.0            # something was blurred...
    disparity = np.asarray(Image.open(tmp_path / "d.png")).astype(np.float32) / 65535
    coc = np.abs(pybokeh.coc_map(disparity, DEMO_FOCUS_XY))
    sharp = coc < 0.5
    assert sharp.any() and (~sharp).any()
    # ...and pixels the lens model keeps sharp stay closer to the photo than blurred ones.
    diff = np.abs(out - photo).mean(axis=2)
    assert diff[sharp].mean() < diff[~sharp].mean()
