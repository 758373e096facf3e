"""``pybokeh.estimate_depth`` with the packaged model: shapes, inputs, the shipped file, errors."""
from __future__ import annotations

import json
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import pybokeh
from pybokeh.depth import default_weights

from conftest import random_image

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def photo():
    """A real photo: the packaged demo picture, cropped to an odd size."""
    from pybokeh.cli import demo_photo_path

    return np.asarray(Image.open(demo_photo_path()).convert("RGB"))[:301, :457].copy()


@pytest.mark.parametrize("shape", [(37, 53), (301, 457), (1, 2), (613, 97)])
def test_output_has_the_input_size_and_range(rng, shape):
    out = pybokeh.estimate_depth(random_image(rng, shape), device="cpu")
    assert out.shape == shape and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_odd_sized_real_photo_gives_structure(photo):
    out = pybokeh.estimate_depth(photo, device="cpu")
    assert out.shape == photo.shape[:2]
    assert out.std() > 0.02          # not a constant map


def test_deterministic(photo):
    a = pybokeh.estimate_depth(photo, device="cpu")
    b = pybokeh.estimate_depth(photo, device="cpu")
    np.testing.assert_array_equal(a, b)


def test_mirrored_photo_gives_the_mirrored_map(photo):
    # The network's map is averaged with that of the mirrored photo (FLIP_AVERAGE), so
    # the estimate is left-right symmetric up to resampling rounding; a single pass is
    # not (its errors differ by up to ~0.2 on this photo).
    direct = pybokeh.estimate_depth(photo, device="cpu")
    mirrored = pybokeh.estimate_depth(np.ascontiguousarray(photo[:, ::-1]), device="cpu")[:, ::-1]
    assert np.abs(direct - mirrored).max() < 5e-3


def test_input_types_agree(photo):
    ref = pybokeh.estimate_depth(photo, device="cpu")
    variants = {
        "PIL": Image.fromarray(photo),
        "torch": torch.from_numpy(photo),
        "float32": photo.astype(np.float32) / 255,
        "float64": photo.astype(np.float64) / 255,
        "uint16": photo.astype(np.uint16) * 257,
    }
    for name, image in variants.items():
        out = pybokeh.estimate_depth(image, device="cpu")
        assert out.shape == ref.shape and out.dtype == np.float32, name
        # uint8 photos take PIL's box filter and integer luma, the others float arithmetic.
        assert np.abs(out - ref).mean() < 2e-3 and np.abs(out - ref).max() < 0.05, name


def test_input_types_agree_when_the_grid_is_downsampled():
    # Above 512 px the photo is area-averaged to the grid: PIL's box filter, on uint8
    # for uint8 photos and per float channel for the other dtypes.
    from pybokeh.cli import demo_photo_path

    big = np.asarray(Image.open(demo_photo_path()).convert("RGB"))[:, :1001].copy()   # 682×1001
    ref = pybokeh.estimate_depth(big, device="cpu")
    assert ref.shape == (682, 1001)
    for image in (big.astype(np.float32) / 255, big.astype(np.uint16) * 257):
        out = pybokeh.estimate_depth(image, device="cpu")
        assert np.abs(out - ref).mean() < 5e-3 and np.abs(out - ref).max() < 0.1, image.dtype


def test_input_is_not_modified(photo):
    image = photo.copy()
    pybokeh.estimate_depth(image, device="cpu")
    np.testing.assert_array_equal(image, photo)


def test_guided_differs_from_bilinear_and_follows_the_photo(photo):
    guided = pybokeh.estimate_depth(photo, device="cpu")
    bilinear = pybokeh.estimate_depth(photo, device="cpu", upsample="bilinear")
    assert guided.shape == bilinear.shape
    # Same low-frequency content...
    assert abs(float(guided.mean()) - float(bilinear.mean())) < 0.02
    # ...but the guided map's gradients coincide with the photo's (luma gradient correlation).
    luma = photo.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)

    def grad(x):
        gy, gx = np.gradient(x)
        return np.hypot(gx, gy).ravel()

    g_photo = grad(luma)
    assert np.corrcoef(grad(guided), g_photo)[0, 1] > np.corrcoef(grad(bilinear), g_photo)[0, 1] + 0.1


def test_custom_weights_file(tmp_path, photo):
    from safetensors.torch import load_file, save_file

    from pybokeh.nets.checkpoint import META_KEY

    # The packaged file re-saved elsewhere gives the same map.
    with open(default_weights(), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n))["__metadata__"]
    copy = tmp_path / "gen.safetensors"
    save_file(load_file(default_weights()), copy, metadata={META_KEY: meta[META_KEY]})
    np.testing.assert_array_equal(pybokeh.estimate_depth(photo, weights=copy, device="cpu"),
                                  pybokeh.estimate_depth(photo, device="cpu"))
    with pytest.raises(FileNotFoundError, match="not found"):
        pybokeh.estimate_depth(photo, weights=tmp_path / "missing.safetensors")


# --------------------------------------------------------------------------- the shipped file

def test_shipped_model_is_a_small_float16_safetensors_file():
    path = default_weights()
    assert path.is_file(), "the package must ship its depth model"
    size = path.stat().st_size
    assert size < 20 * 2 ** 20
    # safetensors layout: u64 header length, JSON header, raw tensor bytes; nothing to unpickle.
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert tensors and {v["dtype"] for v in tensors.values()} == {"F16"}
    assert max(v["data_offsets"][1] for v in tensors.values()) + 8 + n == size
    meta = json.loads(header["__metadata__"]["pybokeh"])
    assert meta["format"] == "pybokeh-pix2pix-generator" and meta["dtype"] == "float16"
    card = meta["model_card"]
    assert card["training"]["seed"] == 0 and "pybokeh train" in card["training"]["command"]
    assert set(card["training"]["sources"]) >= {"icl_nuim_livingroom1_open3d", "7scenes_tsdf_fusion"}


def test_shipped_model_loads_with_safetensors_alone():
    # NumPy loader: no torch, no pickle.
    from safetensors.numpy import load_file

    arrays = load_file(str(default_weights()))
    assert all(a.dtype == np.float16 and np.isfinite(a).all() for a in arrays.values())
    assert 1e6 < sum(a.size for a in arrays.values()) < 2e7


def test_shipped_model_beats_a_constant_on_real_eval_frames(shared_data):
    # A few frames of the eval split: the trained model must order depth far better than
    # chance (the full table is in MODEL.md; this guards against shipping untrained weights).
    # Scored like the renderer uses the map: disparity up to scale and shift (least-squares
    # alignment); the model is trained with a scale-and-shift-invariant term, so its disparity
    # need not be proportional to inverse depth (median scaling would judge that offset).
    from pybokeh.nets import depth_metrics, disparity_to_depth, open_frames

    frames = [f for f in open_frames(shared_data / "rgbd") if f.split == "eval"]
    picked = frames[::len(frames) // 6][:6]
    model, const = [], []
    for frame in picked:
        rgb, depth = frame.load()
        pred = disparity_to_depth(pybokeh.estimate_depth(rgb, device="cpu"))
        model.append(depth_metrics(pred, depth, alignment="disparity")["abs_rel"])
        const.append(depth_metrics(np.ones_like(depth), depth, alignment="disparity")["abs_rel"])
    assert np.mean(model) < 0.8 * np.mean(const), (model, const)


# --------------------------------------------------------------------------- errors, devices, imports

@pytest.mark.parametrize("bad,exc,match", [
    (np.zeros((4, 5)), ValueError, "image must have shape"),
    (np.zeros((4, 5, 3), np.int32), TypeError, "image dtype"),
    (np.full((4, 5, 3), 2.0, np.float32), ValueError, "image"),
    ("photo.jpg", TypeError, "image must be"),
])
def test_bad_images_are_rejected(bad, exc, match):
    with pytest.raises(exc, match=match):
        pybokeh.estimate_depth(bad)


def test_bad_arguments_are_rejected(photo):
    with pytest.raises(ValueError, match="upsample"):
        pybokeh.estimate_depth(photo, upsample="nearest")
    with pytest.raises(ValueError, match="device"):
        pybokeh.estimate_depth(photo, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            pybokeh.estimate_depth(photo, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(photo):
    cpu = pybokeh.estimate_depth(photo, device="cpu")
    gpu = pybokeh.estimate_depth(photo, device="cuda")
    auto = pybokeh.estimate_depth(photo)
    assert gpu.shape == cpu.shape
    np.testing.assert_allclose(gpu, cpu, atol=2e-3)
    np.testing.assert_array_equal(auto, gpu)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=pathlib.Path(__file__).parent, timeout=120)


def test_import_pybokeh_does_not_import_torch():
    r = _run("import sys, pybokeh; pybokeh.estimate_depth; "
             "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_missing_torch_gives_an_install_hint():
    r = _run("import sys; sys.modules['torch'] = None\n"
             "import numpy as np, pybokeh\n"
             "try:\n    pybokeh.estimate_depth(np.zeros((4, 4, 3), np.uint8))\n"
             "except ImportError as e:\n    print('IMPORTERROR', e)\n")
    assert r.returncode == 0, r.stderr
    assert "IMPORTERROR" in r.stdout and 'pip install "pybokeh[depth]"' in r.stdout
