"""The public API: containers and dtypes in and out, inputs untouched, clear errors, backend choice."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

import pybokeh

from conftest import random_image

SHAPE = (48, 64)


@pytest.fixture
def scene(rng):
    image = random_image(rng, SHAPE)
    disparity = np.tile(np.linspace(0, 1, SHAPE[1], dtype=np.float32), (SHAPE[0], 1))
    return image, disparity


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_numpy_dtype_and_shape_round_trip(scene, dtype):
    image, disparity = scene
    if dtype in (np.float32, np.float64):
        img = (image / 255.0).astype(dtype)
    else:
        img = (image.astype(np.uint32) * (np.iinfo(dtype).max // 255)).astype(dtype)
    out = pybokeh.render(img, disparity, 0.5, max_blur=8)
    assert type(out) is np.ndarray and out.dtype == dtype and out.shape == img.shape
    if np.dtype(dtype).kind == "f":
        assert out.min() >= 0 and out.max() <= 1


def test_pil_in_pil_out(scene):
    image, disparity = scene
    out = pybokeh.render(Image.fromarray(image), Image.fromarray((disparity * 255).astype(np.uint8)), 0.5,
                         max_blur=8)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (SHAPE[1], SHAPE[0])
    np.testing.assert_array_equal(np.asarray(out), pybokeh.render(image, (disparity * 255).astype(np.uint8), 0.5,
                                                                  max_blur=8))


def test_torch_in_torch_out(scene):
    torch = pytest.importorskip("torch")
    image, disparity = scene
    for tensor in (torch.from_numpy(image), torch.from_numpy(image.astype(np.float32) / 255)):
        out = pybokeh.render(tensor, torch.from_numpy(disparity), 0.5, max_blur=8)
        assert isinstance(out, torch.Tensor) and out.dtype == tensor.dtype and out.shape == tensor.shape
        assert out.device.type == "cpu"


def test_inputs_are_never_modified(scene):
    image, disparity = scene
    holed = disparity.copy()  # float32 maps are read in place (no copy): holes must be filled elsewhere
    holed[5:9, 7:30], holed[0, 0], holed[-1, -1] = np.nan, np.inf, -1.0
    for focus, depth in (((10, 10), disparity), (0.5, holed)):
        image_copy, depth_copy = image.copy(), depth.copy()
        pybokeh.render(image, depth, focus, max_blur=8)
        np.testing.assert_array_equal(image, image_copy)
        np.testing.assert_array_equal(depth, depth_copy)


def test_awkward_memory_layouts_are_accepted(scene):
    image, disparity = scene
    expected = pybokeh.render(image, disparity, 0.5, max_blur=8)
    wide = np.zeros((SHAPE[0], SHAPE[1] * 2, 3), np.uint8)
    wide[:, ::2] = image
    strided = wide[:, ::2]                                   # non-contiguous
    readonly = image.copy()
    readonly.flags.writeable = False
    fortran = np.asfortranarray(image)
    big_endian_depth = disparity.astype(">f4")
    for img, d in ((strided, disparity), (readonly, disparity), (fortran, disparity), (image, big_endian_depth),
                   (image, disparity.T.copy().T)):
        np.testing.assert_array_equal(pybokeh.render(img, d, 0.5, max_blur=8), expected)
    big_endian_16 = (image.astype(np.uint16) * 257).astype(">u2")
    out16 = pybokeh.render(big_endian_16, disparity, 0.5, max_blur=8)
    assert out16.dtype == np.dtype(">u2")
    np.testing.assert_array_equal(out16, pybokeh.render(image.astype(np.uint16) * 257, disparity, 0.5, max_blur=8))


@pytest.mark.parametrize("image,match", [
    (np.zeros((48, 64), np.uint8), "H×W×3"),
    (np.zeros((48, 64, 4), np.uint8), "RGBA"),
    (np.zeros((3, 48, 64), np.uint8), "channels first"),
    (np.zeros((0, 64, 3), np.uint8), "empty"),
    (np.zeros((1, 1, 3), np.uint8), "at least 2 pixels"),
    (np.full((48, 64, 3), 1.5, np.float32), r"\[0, 1\]"),
    (np.full((48, 64, 3), np.nan, np.float32), "NaN"),
])
def test_bad_images_raise_value_error(scene, image, match):
    _, disparity = scene
    with pytest.raises(ValueError, match=match) as info:
        pybokeh.render(image, disparity if image.shape[:2] == SHAPE else np.zeros(image.shape[:2] or (1, 1)), 0.5)
    assert "image" in str(info.value)


@pytest.mark.parametrize("image", [np.zeros((48, 64, 3), np.int32), np.zeros((48, 64, 3), bool), [[1, 2, 3]],
                                   "photo.jpg"])
def test_bad_image_types_raise_type_error(scene, image):
    with pytest.raises(TypeError, match="image"):
        pybokeh.render(image, scene[1], 0.5)


def test_pil_image_in_another_mode(scene):
    with pytest.raises(ValueError, match="convert"):
        pybokeh.render(Image.fromarray(scene[0]).convert("RGBA"), scene[1], 0.5)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(depth=np.zeros((48, 64, 2))), ValueError, "depth must have shape"),
    (dict(depth=np.zeros((1, 48, 64))), ValueError, "squeeze"),
    (dict(depth=np.zeros((48, 20))), ValueError, "aspect ratio"),
    (dict(depth=np.zeros((0, 0))), ValueError, "depth is empty"),
    (dict(depth=np.zeros((48, 64), bool)), TypeError, "depth dtype"),
    (dict(depth="depth.png"), TypeError, "depth must be"),
    (dict(depth=np.full((48, 64), np.nan)), ValueError, "depth has no valid values"),
    (dict(focus=(64, 10)), ValueError, "outside"),
    (dict(focus=(-1, 10)), ValueError, "outside"),
    (dict(focus=(1, 2, 3)), ValueError, "focus"),
    (dict(focus=float("nan")), ValueError, "focus"),
    (dict(focus=True), TypeError, "focus"),
    (dict(focus="near"), TypeError, "focus"),
    (dict(depth_kind="metres"), ValueError, "depth_kind"),
    (dict(f_number=2.0, max_blur=4.0), ValueError, "f_number"),
    (dict(f_number=0.0), ValueError, "f_number"),
    (dict(focus=1.5), ValueError, r"focus must be a normalised disparity in \[0, 1\]"),
    (dict(focus=-0.2), ValueError, "focus"),
    (dict(focus_range=1.2), ValueError, "focus_range"),
    (dict(max_blur=-1.0), ValueError, "max_blur"),
    (dict(max_blur=float("inf")), ValueError, "max_blur"),
    (dict(max_blur=1e6), ValueError, "circle of confusion"),
    (dict(blades=1), ValueError, "blades"),
    (dict(blades=2), ValueError, "blades"),
    (dict(blades=17), ValueError, "blades"),
    (dict(blades=-3), ValueError, "blades"),
    (dict(blades=6.0), TypeError, "blades"),
    (dict(rotation_deg=float("nan")), ValueError, "rotation_deg"),
    (dict(highlight_boost=-1.0), ValueError, "highlight_boost"),
    (dict(focus_range=-0.1), ValueError, "focus_range"),
    (dict(backend="gpu"), ValueError, "backend"),
    (dict(backend=3), TypeError, "backend"),
    (dict(threads=0), ValueError, "threads"),
])
def test_bad_arguments_name_themselves(scene, kwargs, exc, match):
    image, disparity = scene
    args = dict(depth=disparity, focus=0.5)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        pybokeh.render(image, args.pop("depth"), args.pop("focus"), **args)


@pytest.mark.parametrize("kwargs,match", [
    (dict(f_number=0.0), "f_number"),
    (dict(f_number=-2.0), "f_number"),
    (dict(focal_length_mm=0.0), "focal_length_mm"),
    (dict(focal_length_mm=-50.0), "focal_length_mm"),
    (dict(sensor_width_mm=0.0), "sensor_width_mm"),
    (dict(focus=0.03), "focal length"),            # 3 cm: inside a 50 mm lens's focal length
    (dict(focus=-1.0), "focus"),
])
def test_absurd_lens_values(scene, kwargs, match):
    image, _ = scene
    depth = np.full(SHAPE, 2.0, np.float32)
    args = dict(focus=2.0, depth_kind="depth")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        pybokeh.render(image, depth, args.pop("focus"), **args)


def test_all_backends_listed_and_selectable(scene):
    image, disparity = scene
    assert pybokeh.backends()[:2] == ["cpp", "numba"]
    outs = {b: pybokeh.render(image, disparity, 0.5, max_blur=8, backend=b) for b in ("cpp", "numba", "numpy")}
    assert np.abs(outs["cpp"].astype(int) - outs["numba"]).max() <= 2
    assert np.abs(outs["cpp"].astype(int) - outs["numpy"]).max() <= 1


def test_cuda_requested_without_gpu_raises_clearly(scene):
    if "cuda" in pybokeh.backends():
        pytest.skip("a CUDA device is present")
    with pytest.raises(pybokeh.BackendUnavailableError, match="cuda"):
        pybokeh.render(scene[0], scene[1], 0.5, backend="cuda")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_missing_compiled_module_falls_back_and_explicit_request_raises():
    result = _run("""
        import sys, warnings
        sys.modules["pybokeh._core"] = None          # as if the wheel had no compiled module
        import numpy as np, pybokeh
        assert "cpp" not in pybokeh.backends(), pybokeh.backends()
        img = np.zeros((8, 8, 3), np.uint8); d = np.zeros((8, 8), np.float32)
        pybokeh.render(img, d, 0.0)                  # auto -> numba
        try:
            pybokeh.render(img, d, 0.0, backend="cpp")
        except pybokeh.BackendUnavailableError as e:
            assert "pybokeh._core" in str(e), e
        else:
            raise SystemExit("explicit cpp did not raise")
        print("ok")
    """)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_missing_numba_and_compiled_module_fall_back_to_numpy():
    result = _run("""
        import sys, warnings
        sys.modules["pybokeh._core"] = None
        sys.modules["numba"] = None
        import numpy as np, pybokeh
        assert pybokeh.backends() == ["numpy"], pybokeh.backends()
        img = np.zeros((8, 8, 3), np.uint8); d = np.zeros((8, 8), np.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pybokeh.render(img, d, 0.0)
        assert any("NumPy reference" in str(w.message) for w in caught)
        try:
            pybokeh.render(img, d, 0.0, backend="numba")
        except pybokeh.BackendUnavailableError as e:
            assert "Numba" in str(e)
        else:
            raise SystemExit("explicit numba did not raise")
        print("ok")
    """)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_numba_backend_works_without_a_writable_cache(tmp_path):
    # A cache path that cannot be created (it lies under a regular file): the
    # Numba backend must still compile and render, just without caching.
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(blocker / "cache")}
    code = textwrap.dedent("""
        import numpy as np, pybokeh
        img = np.zeros((8, 8, 3), np.uint8); img[4, 4] = 255
        out = pybokeh.render(img, np.zeros((8, 8), np.float32), 1.0, max_blur=4, backend="numba")
        assert out.shape == (8, 8, 3) and out.sum() > 0
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
