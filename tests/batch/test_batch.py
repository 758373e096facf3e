"""``pybokeh render`` on many photos: folders, globs, --out-dir, --jobs, skipping, failures, interrupts."""
from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from pybokeh import batch
from pybokeh.cli import main

from _batch_files import make_shoot, scene

DEPTH = ["--depth-pattern", "{stem}_depth.png"]


@pytest.fixture
def shoot(tmp_path, rng):
    folder = tmp_path / "shoot"
    photos = make_shoot(folder, rng)
    out = tmp_path / "out"
    out.mkdir()
    return folder, photos, out


def outputs(out: pathlib.Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def test_a_folder_of_12_photos_renders_in_one_command_with_a_progress_bar(shoot, capsys):
    folder, photos, out = shoot
    assert main(["render", str(folder), "--out-dir", str(out), *DEPTH]) == 0
    err = capsys.readouterr().err
    # The depth maps beside the photos are not photos of the batch.
    assert outputs(out) == sorted(f"{p.stem}_bokeh.jpg" for p in photos)
    assert "12/12" in err and ("photo/s" in err or "s/photo" in err)   # tqdm: count, rate
    assert "<" in err                                                 # tqdm's ETA field (elapsed<remaining)
    assert "12 rendered, 0 skipped, 0 failed" in err and "12 from depth map files" in err


def test_batch_outputs_are_the_single_file_commands_outputs(shoot, tmp_path):
    folder, photos, out = shoot
    assert main(["render", str(folder / "*.jpg"), "--out-dir", str(out), *DEPTH, "-q"]) == 0
    for photo in photos[:3]:
        single = tmp_path / f"single_{photo.stem}.jpg"
        assert main(["render", str(photo), "--depth", str(folder / f"{photo.stem}_depth.png"), "-o", str(single),
                     "-q"]) == 0
        assert (out / f"{photo.stem}_bokeh.jpg").read_bytes() == single.read_bytes()


def test_worker_processes_give_the_same_bytes(shoot, tmp_path):
    folder, photos, out = shoot
    assert main(["render", *map(str, photos[:4]), "--out-dir", str(out), *DEPTH, "-q"]) == 0
    parallel = tmp_path / "parallel"
    parallel.mkdir()
    assert main(["render", *map(str, photos[:4]), "--out-dir", str(parallel), *DEPTH, "--jobs", "2", "-q"]) == 0
    assert outputs(out) == outputs(parallel) and len(outputs(out)) == 4
    for name in outputs(out):
        assert (out / name).read_bytes() == (parallel / name).read_bytes()


def test_threads_are_divided_among_workers(monkeypatch):
    monkeypatch.setattr(batch, "cores", lambda: 8)
    assert batch.split_threads(1, None) == 8
    assert batch.split_threads(3, None) == 2
    assert batch.split_threads(16, None) == 1
    assert batch.split_threads(4, 5) == 5          # --threads given: the user's choice


def test_existing_outputs_are_skipped_unless_overwrite(shoot, capsys):
    folder, photos, out = shoot
    assert main(["render", str(folder), "--out-dir", str(out), *DEPTH, "-q"]) == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main(["render", str(folder), "--out-dir", str(out), *DEPTH]) == 0
    assert "0 rendered, 12 skipped" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == first
    (out / "IMG_003_bokeh.jpg").unlink()
    assert main(["render", str(folder), "--out-dir", str(out), *DEPTH]) == 0
    assert "1 rendered, 11 skipped" in capsys.readouterr().err
    assert main(["render", str(folder), "--out-dir", str(out), *DEPTH, "--overwrite"]) == 0
    assert "12 rendered, 0 skipped" in capsys.readouterr().err


def test_each_failure_is_one_line_and_the_batch_goes_on(shoot, capsys):
    folder, photos, out = shoot
    photos[2].write_bytes(photos[2].read_bytes()[:300])          # truncated JPEG
    (folder / "IMG_005_depth.png").unlink()                      # no depth map for this one
    code = main(["render", str(folder), "--out-dir", str(out), *DEPTH])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 1 and len(errors) == 2 and "Traceback" not in err
    assert any("IMG_002.jpg" in line for line in errors) and any("IMG_005_depth.png" in line for line in errors)
    assert "10 rendered, 0 skipped, 2 failed" in err
    assert len(outputs(out)) == 10 and "IMG_002_bokeh.jpg" not in outputs(out)


def test_depth_sources_per_file_and_output_format_from_the_name(tmp_path, rng, capsys):
    folder = tmp_path / "mixed"
    make_shoot(folder, rng, n=2)
    (folder / "IMG_001_depth.png").unlink()    # this one has no map: estimated (auto)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["render", str(folder / "IMG_000.jpg"), str(folder / "IMG_001.jpg"), "--out-dir", str(out),
                 "--name", "{stem}.png"]) == 0
    err = capsys.readouterr().err
    assert "2 estimated" in err and "packaged model" in err      # no --depth-pattern: estimated, said once
    assert outputs(out) == ["IMG_000.png", "IMG_001.png"]
    assert Image.open(out / "IMG_000.png").format == "PNG"


@pytest.mark.parametrize("argv,match", [
    (lambda f, o: [str(f), "-o", str(o / "x.jpg")], "is a directory"),
    (lambda f, o: [str(f / "IMG_000.jpg"), str(f / "IMG_001.jpg"), "-o", str(o / "x.jpg")], "--out-dir"),
    (lambda f, o: [str(f)], "--out-dir"),
    (lambda f, o: [str(f), "--out-dir", str(o), "--depth", str(f / "IMG_000_depth.png")], "--depth-pattern"),
    (lambda f, o: [str(f), "--out-dir", str(o), "--name", "{stem}{nope}.jpg"], "{stem}"),
    (lambda f, o: [str(f), "--out-dir", str(o), "--name", "sub/{stem}.jpg"], "no folders"),
    (lambda f, o: [str(f), "--out-dir", str(o), "--name", "same.jpg"], "would both be written"),
    (lambda f, o: [str(f), "--out-dir", str(f), "--name", "{name}"], "would replace"),
    (lambda f, o: [str(f), "--out-dir", str(o / "missing")], "not an existing folder"),
    (lambda f, o: [str(f / "*.nothing"), "--out-dir", str(o)], "no photos match"),
    (lambda f, o: [str(f), "--out-dir", str(o), "--name", "{stem}.png", "--quality", "80"], "lossless"),
    (lambda f, o: [str(f / "IMG_000.jpg"), "-o", str(o / "x.jpg"), "--jobs", "2"], "batches"),
])
def test_bad_batch_commands_fail_before_any_work(shoot, capsys, argv, match):
    folder, _, out = shoot
    assert main(["render", *argv(folder, out)]) == 1
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert outputs(out) == []


def test_outputs_in_the_photo_folder_are_not_taken_for_photos(shoot, capsys):
    folder, photos, _ = shoot
    assert main(["render", str(folder), "--out-dir", str(folder), *DEPTH, "-q"]) == 0
    assert main(["render", str(folder), "--out-dir", str(folder), *DEPTH]) == 0
    assert "0 rendered, 12 skipped" in capsys.readouterr().err     # not 12 more "_bokeh_bokeh" renders


def test_temporary_files_of_a_killed_run_are_removed(shoot):
    folder, photos, out = shoot
    stale = out / ".IMG_004_bokeh.x1y2z3.jpg.tmp"
    stale.write_bytes(b"half a jpeg")
    os.utime(stale, (time.time() - 60, time.time() - 60))
    other = out / "notes.txt"
    other.write_text("mine")
    assert main(["render", str(folder), "--out-dir", str(out), *DEPTH, "-q"]) == 0
    assert not stale.exists() and other.read_text() == "mine"


def _wait_for(condition, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.parametrize("sig,jobs", [(signal.SIGINT, 1), (signal.SIGTERM, 2)])
def test_an_interrupted_batch_leaves_complete_files_and_a_rerun_renders_the_rest(tmp_path, rng, sig, jobs):
    folder = tmp_path / "shoot"
    make_shoot(folder, rng, n=12, size=(360, 480))  # large enough that a photo takes a moment
    out = tmp_path / "out"
    out.mkdir()
    exe = shutil.which("pybokeh", path=os.path.dirname(sys.executable))
    command = [exe, "render", str(folder), "--out-dir", str(out), *DEPTH, "--jobs", str(jobs), "--threads", "1",
               "--max-blur", "30"]
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: len([p for p in out.iterdir() if not p.name.startswith(".")]) >= 4 or run.poll() is not None,
              240)
    run.send_signal(sig)
    err = run.communicate(timeout=240)[1]
    assert run.returncode == 130, err
    assert "interrupted after" in err and "Traceback" not in err
    done = outputs(out)
    assert 4 <= len(done) < 12, done                         # stopped halfway, not at the end
    assert all(not name.startswith(".") for name in done)    # no temporary file left behind
    times = {}
    for name in done:                                        # every file there is complete
        with Image.open(out / name) as img:
            img.load()
        times[name] = (out / name).stat().st_mtime_ns
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{12 - len(done)} rendered, {len(done)} skipped, 0 failed" in rerun.stderr
    assert len(outputs(out)) == 12
    assert all((out / name).stat().st_mtime_ns == t for name, t in times.items())   # not rendered again


def test_run_job_turns_failures_into_results(tmp_path):
    result = batch.run_job(batch.Job(str(tmp_path / "nope.jpg"), str(tmp_path / "o.jpg")), batch.RenderSettings())
    assert result.status == batch.FAILED and "does not exist" in result.error


def test_find_photos_folders_globs_and_files(tmp_path, rng):
    photo, depth = scene(rng, 8, 8)
    for name in ("b.jpg", "a.PNG", ".hidden.jpg", "notes.txt"):
        Image.fromarray(photo).save(tmp_path / name, format="PNG")
    (tmp_path / "sub").mkdir()
    Image.fromarray(photo).save(tmp_path / "sub" / "c.jpg")
    names = [p.name for p in batch.find_photos([tmp_path])]
    assert names == ["a.PNG", "b.jpg"]                              # sorted, photo suffixes, no hidden files
    assert [p.name for p in batch.find_photos([str(tmp_path / "**" / "*.jpg")])] == ["b.jpg", "c.jpg"]
    assert [p.name for p in batch.find_photos([tmp_path / "b.jpg", tmp_path, str(tmp_path / "*.jpg")])] == \
        ["b.jpg", "a.PNG"]                                          # duplicates once, first place kept
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no photos in this folder"):
        batch.find_photos([tmp_path / "empty"])
