"""Rendering on Ray (the ``ray`` extra), on a local 2-CPU instance: the same bytes as one process.

The test extra installs Ray, so CI (``CI`` set) runs every test here and fails if Ray is
missing; elsewhere the tests that need Ray skip without it, saying why.
"""
from __future__ import annotations

import logging
import os
import sys
import time

import numpy as np
import pytest
from PIL import Image

from pybokeh import batch, io
from pybokeh.cli import main
from pybokeh.ray_render import RenderImages

from _batch_files import camera_exif, gamma_curve, icc_profile, make_shoot, write_png16

DEPTH = ["--depth-pattern", "{stem}_depth.png"]


def need_ray():
    """The ``ray`` module; without it a skip naming the extra, or in CI (``CI`` set) a failure."""
    try:
        import ray
        import ray.data  # noqa: F401 - the part pybokeh uses
    except ImportError as exc:
        reason = f'Ray is not installed (pip install "pybokeh[ray]"): {exc}'
        if os.environ.get("CI"):
            pytest.fail(f"this test must run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return ray


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    ray = need_ray()

    # Ray puts the driver's folder on its workers' path: started from the checkout, they would
    # import its uncompiled sources (the command refuses that, see the last test).
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray_driver"))
    try:
        # One GPU declared (a logical resource: nothing here uses CUDA), so --ray-gpus can be scheduled.
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, logging_level=logging.WARNING)
    finally:
        os.chdir(here)
    yield ray
    ray.shutdown()


@pytest.fixture
def shoot(tmp_path, rng):
    """10 photos: 8 JPEGs with camera EXIF, a 16-bit PNG stored sideways with a gamma-1.8 profile, a PNG."""
    folder = tmp_path / "shoot"
    photos = make_shoot(folder, rng, n=8)
    deep = rng.integers(0, 65536, (40, 52, 3)).astype(np.uint16)
    write_png16(folder / "DEEP_16.png", deep, icc_profile(gamma_curve(1.8)), camera_exif(orientation=6))
    Image.fromarray(np.tile(np.linspace(0, 65535, 40, dtype=np.uint16), (52, 1))).save(folder / "DEEP_16_depth.png")
    Image.open(photos[0]).save(folder / "PLAIN.png")
    Image.open(folder / "IMG_000_depth.png").save(folder / "PLAIN_depth.png")
    return folder


def test_workers_that_would_import_the_source_tree_are_refused(tmp_path, rng):
    # Runs before the module's Ray instance starts: the command starts its own, from the checkout.
    import subprocess

    need_ray()
    from conftest import REPO

    make_shoot(tmp_path / "s", rng, n=1)
    (tmp_path / "o").mkdir()
    result = subprocess.run([sys.executable, "-m", "pybokeh.cli", "render", str(tmp_path / "s"), "--out-dir",
                             str(tmp_path / "o"), *DEPTH, "--ray"], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONSAFEPATH": "1"})
    assert result.returncode == 1, result.stderr
    assert "Ray workers import pybokeh" in result.stderr and "run from another folder" in result.stderr
    assert not list((tmp_path / "o").iterdir())


def _render(folder, out, *extra) -> float:
    out.mkdir()
    start = time.perf_counter()
    assert main(["render", str(folder), "--out-dir", str(out), *DEPTH, "-q", *extra]) == 0
    return time.perf_counter() - start


def test_ray_renders_a_folder_to_the_bytes_one_process_writes(local_ray, shoot, tmp_path, capsys):
    single = _render(shoot, tmp_path / "single")
    on_ray = _render(shoot, tmp_path / "ray", "--ray")
    names = sorted(p.name for p in (tmp_path / "single").iterdir())
    assert len(names) == 10 and names == sorted(p.name for p in (tmp_path / "ray").iterdir())
    for name in names:
        assert (tmp_path / "single" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
    assert "10 rendered, 0 skipped, 0 failed" in capsys.readouterr().err
    assert local_ray.is_initialized()                       # a running instance is used, not shut down
    with capsys.disabled():
        print(f"\n[ray] 10 photos on a local 2-CPU Ray instance: {on_ray:.1f} s wall "
              f"(one process: {single:.1f} s)", file=sys.stderr)


def test_ray_gpus_reserve_a_share_of_a_gpu_per_worker(local_ray, tmp_path, rng, capsys):
    folder = tmp_path / "shoot"
    make_shoot(folder, rng, n=2, size=(40, 56))
    _render(folder, tmp_path / "single")
    out = tmp_path / "ray"
    out.mkdir()
    assert main(["render", str(folder), "--out-dir", str(out), *DEPTH, "--ray", "--ray-gpus", "0.5"]) == 0
    assert "0.5 GPU each" in capsys.readouterr().err  # each worker's actor asked Ray for half the GPU
    for path in (tmp_path / "single").iterdir():
        assert path.read_bytes() == (out / path.name).read_bytes()


def test_ray_workers_estimate_depth_like_one_process(local_ray, tmp_path, rng):
    folder = tmp_path / "estimate"
    make_shoot(folder, rng, n=2, size=(40, 56))
    for depth in folder.glob("*_depth.png"):
        depth.unlink()
    outs = []
    for name, extra in (("single", []), ("ray", ["--ray"])):
        out = tmp_path / name
        out.mkdir()
        assert main(["render", str(folder), "--out-dir", str(out), "--depth-source", "estimate", "--threads", "1",
                     "-q", *extra]) == 0
        outs.append(out)
    for path in outs[0].iterdir():
        assert path.read_bytes() == (outs[1] / path.name).read_bytes()


def test_render_images_on_read_images_matches_the_files(local_ray, shoot, tmp_path):
    # Arrays as ray.data.read_images gives them (8-bit, no orientation: plain PNGs), depth in a column.
    folder = tmp_path / "plain"
    folder.mkdir()
    for k in range(4):
        Image.open(shoot / f"IMG_00{k}.jpg").save(folder / f"p{k}.png")
        Image.open(shoot / f"IMG_00{k}_depth.png").save(tmp_path / f"p{k}_depth.png")
    expected = tmp_path / "expected"
    expected.mkdir()
    settings = batch.RenderSettings(threads=1)
    for k in range(4):
        assert main(["render", str(folder / f"p{k}.png"), "--depth", str(tmp_path / f"p{k}_depth.png"),
                     "-o", str(expected / f"p{k}.png"), "-q"]) == 0

    def with_depth(row):
        stem = row["path"].rsplit("/", 1)[-1][:-4]
        return {**row, "depth": io.read_depth(tmp_path / f"{stem}_depth.png")}

    ds = local_ray.data.read_images(str(folder), include_paths=True, mode="RGB").map(with_depth)
    # Half a CPU per worker: two workers leave a CPU for the read tasks (whole ones would starve them).
    ds = ds.map_batches(RenderImages, fn_constructor_kwargs={"settings": settings}, batch_size=2,
                        compute=local_ray.data.ActorPoolStrategy(size=2), num_cpus=0.5).materialize()
    rows = ds.take_all()
    assert len(rows) == 4
    for row in rows:
        stem = row["path"].rsplit("/", 1)[-1][:-4]
        np.testing.assert_array_equal(row["image"], np.asarray(Image.open(expected / f"{stem}.png")))
    # The README's last step: Ray names the files it writes, so they are matched by content.
    ds.write_images(str(tmp_path / "written"), column="image", file_format="png")
    written = sorted(np.asarray(Image.open(p)).tobytes() for p in (tmp_path / "written").iterdir())
    assert written == sorted(np.asarray(Image.open(p)).tobytes() for p in expected.iterdir())


def test_render_images_loads_the_depth_model_once_per_worker(rng):
    from pybokeh.estimators import pix2pix

    load = pix2pix._load_model  # the packaged model's loader, cached per weights file and device
    worker = RenderImages(threads=1)
    load.cache_clear()
    images = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(4)]
    first = worker({"image": images[:2]})
    second = worker({"image": images[2:]})
    assert load.cache_info().misses == 1 and load.cache_info().hits == 3
    assert all(out.shape == (24, 32, 3) and out.dtype == np.uint8 for out in first["image"] + second["image"])


def test_without_the_extra_ray_is_named(tmp_path, rng, monkeypatch, capsys):
    make_shoot(tmp_path / "s", rng, n=1)
    (tmp_path / "o").mkdir()
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["render", str(tmp_path / "s"), "--out-dir", str(tmp_path / "o"), *DEPTH, "--ray"]) == 1
    assert 'pip install "pybokeh[ray]"' in capsys.readouterr().err
