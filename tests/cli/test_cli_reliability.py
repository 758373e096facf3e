"""Regression tests of the command line's reliability defects found by fuzzing (issue 15,
items 3-5): photo formats it mis-rendered, decompression bombs, and writes that fail half-way.

Each test names the defect it guards against; the renderer's are in
``tests/renderer/test_reliability.py``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pybokeh
from pybokeh import io
from pybokeh.cli import main


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (a resource limit set there cannot leak into the test run).

    It runs in this folder: ``python -c`` puts its working directory first on ``sys.path``, and the
    repository root would shadow the installed package with the source tree.
    """
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent, timeout=300)


@pytest.fixture
def depth_file(tmp_path):
    Image.fromarray(np.tile(np.linspace(0, 255, 96), (64, 1)).astype(np.uint8)).save(tmp_path / "d.png")
    return tmp_path / "d.png"


def test_cli_renders_a_16_bit_grey_photo_in_16_bits(tmp_path, depth_file):
    # It rendered all white: convert("RGB") clipped the 16-bit values.
    grey = (np.tile(np.linspace(0, 60000, 96), (64, 1))).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    assert main(["render", str(tmp_path / "g16.png"), "--depth", str(depth_file), "-o", str(tmp_path / "o.png"),
                 "-q"]) == 0
    out = Image.open(tmp_path / "o.png")
    assert out.mode.startswith("I")
    depth = np.asarray(Image.open(depth_file))
    subject = pybokeh.subject_focus(depth, (64, 96))   # the CLI's default focus
    expected = pybokeh.render(np.repeat(grey[..., None], 3, axis=2), depth, subject.value,
                              focus_range=subject.focus_range)[..., 0]
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_cli_renders_a_float_tiff_photo(tmp_path, depth_file):
    # It rendered all black.
    grey = np.tile(np.linspace(0.05, 0.95, 96, dtype=np.float32), (64, 1))
    Image.fromarray(grey).save(tmp_path / "f.tif")
    assert main(["render", str(tmp_path / "f.tif"), "--depth", str(depth_file), "-o", str(tmp_path / "o.tif"),
                 "-q"]) == 0
    out = np.asarray(Image.open(tmp_path / "o.tif"), np.float32)
    assert abs(float(out.mean()) - float(grey.mean())) < 0.02


def test_cli_rejects_a_float_photo_outside_0_1(tmp_path, depth_file, capsys):
    Image.fromarray(np.full((8, 8), 300.0, np.float32)).save(tmp_path / "f.tif")
    assert main(["render", str(tmp_path / "f.tif"), "--depth", str(depth_file), "-o", str(tmp_path / "o.png"),
                 "-q"]) == 1
    err = capsys.readouterr().err
    assert "[0, 1]" in err and err.count("\n") == 1


def bomb(path: Path) -> None:
    """A 30000² 1-bit PNG: ~110 KB on disk, 900 MP (a decompression bomb)."""
    Image.new("1", (30000, 30000)).save(path)


@pytest.mark.parametrize("role", ["photo", "depth"])
def test_cli_refuses_decompression_bombs_from_the_header(tmp_path, depth_file, capsys, role):
    bomb(tmp_path / "bomb.png")
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((64, 96, 3), np.uint8)).save(photo)
    args = [str(tmp_path / "bomb.png"), "--depth", str(depth_file)] if role == "photo" else \
        [str(photo), "--depth", str(tmp_path / "bomb.png")]
    assert main(["render", *args, "-o", str(tmp_path / "o.png"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "over the limit" in err and "--max-pixels" in err and err.count("\n") == 1
    assert not (tmp_path / "o.png").exists()


def test_max_pixels_is_checked_before_decoding(tmp_path, monkeypatch):
    bomb(tmp_path / "bomb.png")

    def no_decoding(self, *a, **k):
        raise AssertionError("decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    with pytest.raises(io.ImageFileError, match="over the limit"):
        io.read_photo(tmp_path / "bomb.png")
    np.save(tmp_path / "big.npy", np.zeros((1, 10), np.float32))
    with pytest.raises(io.ImageFileError, match="over the limit"):
        io.read_depth(tmp_path / "big.npy", max_pixels=9)


def test_max_pixels_can_be_raised(tmp_path):
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "p.png")
    with pytest.raises(io.ImageFileError):
        io.read_photo(tmp_path / "p.png", max_pixels=199)
    assert io.read_photo(tmp_path / "p.png", max_pixels=200).shape == (10, 20, 3)


def test_cli_reports_a_non_safetensors_weights_file_on_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "text.jpg").write_text("hello")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "p.png")
    assert main(["depth", str(tmp_path / "p.png"), "--weights", str(tmp_path / "text.jpg"),
                 "-o", str(tmp_path / "d.png"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "not a safetensors file" in err and err.count("\n") == 1


@pytest.mark.parametrize("quality", ["-5", "0", "101", "abc"])
def test_cli_rejects_bad_quality(tmp_path, depth_file, quality, capsys):
    with pytest.raises(SystemExit) as info:
        main(["render", str(depth_file), "--depth", str(depth_file), "-o", str(tmp_path / "o.jpg"),
              "--quality", quality])
    assert info.value.code == 2 and "--quality" in capsys.readouterr().err


def test_cli_checks_the_output_before_rendering(tmp_path, depth_file, monkeypatch, capsys):
    monkeypatch.setattr(pybokeh, "render", lambda *a, **k: pytest.fail("rendered before checking the output"))
    for output, message in ((tmp_path / "missing" / "o.png", "does not exist"), (tmp_path / "o.xyz", "unknown"),
                            (tmp_path, "unknown")):
        assert main(["render", str(depth_file), "--depth", str(depth_file), "-o", str(output)]) == 1
        assert message in capsys.readouterr().err
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        if not os.access(tmp_path / "ro", os.W_OK):  # root may write anyway
            assert main(["render", str(depth_file), "--depth", str(depth_file), "-o",
                         str(tmp_path / "ro" / "o.png")]) == 1
            assert "not writable" in capsys.readouterr().err
    finally:
        os.chmod(tmp_path / "ro", 0o700)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous render")
    real_save = Image.Image.save

    def failing_save(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)  # the whole file lands on disk (in the temporary)...
        raise OSError(28, "No space left on device")  # ... then the disk fills up

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(io.ImageFileError, match="No space left"):
        io.write_image(target, np.zeros((8, 8, 3), np.uint8))
    assert target.read_bytes() == b"previous render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_writes_replace_the_file_whole_and_keep_its_permissions(tmp_path):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    io.write_image(target, np.full((8, 8, 3), 200, np.uint8), quality=90)
    assert Image.open(target).size == (8, 8) and (target.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]


def test_cli_file_size_limit_leaves_the_old_output(tmp_path, depth_file):
    # `ulimit -f`: the write fails half-way with EFBIG (Python ignores SIGXFSZ).
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (300, 450, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    (tmp_path / "out.png").write_bytes(b"old")
    code = f"""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_FSIZE, (40000, 40000))
    from pybokeh.cli import main
    sys.exit(main(["render", {str(tmp_path / 'big.png')!r}, "--depth", {str(depth_file)!r},
                   "-o", {str(tmp_path / 'out.png')!r}, "-q"]))
    """
    result = run_python(code)
    assert result.returncode == 1 and "cannot write" in result.stderr and result.stderr.count("\n") == 1
    assert (tmp_path / "out.png").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png", "d.png", "out.png"]


def test_cli_prints_warnings_on_one_line(tmp_path, depth_file, capsys, monkeypatch):
    import warnings

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    real = pybokeh.render

    def warning_render(*a, **k):
        warnings.warn("something to know", RuntimeWarning)
        return real(*a, **k)

    monkeypatch.setattr(pybokeh, "render", warning_render)
    assert main(["render", str(depth_file), "--depth", str(depth_file), "-o", str(tmp_path / "o.png"), "-q"]) == 0
    err = capsys.readouterr().err
    assert err == "pybokeh: warning: something to know\n"
