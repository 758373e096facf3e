"""The device-side input path of ``pybokeh.render`` (torch tensors, CuPy arrays), run on
CPU tensors with the emulated CUDA kernel in place of the device kernel."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import pybokeh
from pybokeh import Aperture, _cuda_emu
from pybokeh.lens import MAX_COC_RADIUS
from pybokeh.renderer import cuda_backend, device_inputs
from pybokeh.renderer.dispatch import get_backend

from cuda_checks import max_diff
from gpu_scenes import add_lights, random_image, tolerance


def _emulated_kernel(image, coc, out, aperture: Aperture, gain) -> None:
    """device_inputs.cuda_kernel's contract, run by the serial CPU emulation on CPU tensors."""
    luts, extents = aperture.kernel_tables()
    result = _cuda_emu.render(image.numpy(), coc.numpy(), aperture.blades, luts, extents,
                              None if gain is None else gain.numpy(), float(MAX_COC_RADIUS), 0)
    import torch

    out.copy_(torch.from_numpy(result))


def _emulated_render(monkeypatch):
    """pybokeh.render with CPU torch tensors taking the device path and the emulated kernel."""
    torch = pytest.importorskip("torch")
    import pybokeh.renderer as renderer

    monkeypatch.setattr(renderer, "is_device_array", lambda x: isinstance(x, torch.Tensor))
    monkeypatch.setattr(device_inputs, "cuda_kernel", _emulated_kernel)
    return torch


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
def test_device_path_matches_host_render(monkeypatch, dtype):
    torch = _emulated_render(monkeypatch)
    rng = np.random.default_rng(11)
    np_dtype = np.dtype(dtype)
    img = random_image(rng, 48, 64, np_dtype)
    depth = rng.random((24, 32)).astype(np.float32)  # resampled to the image
    kw = dict(blades=6, rotation_deg=15.0, max_blur=12.0, focus_range=0.05)
    ref = pybokeh.render(img, depth, (30, 20), backend="cpp", **kw)
    out = pybokeh.render(torch.from_numpy(img), torch.from_numpy(depth), (30, 20), **kw)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.from_numpy(img).dtype
    assert tuple(out.shape) == img.shape
    assert max_diff(out.numpy(), ref) <= tolerance(np_dtype if dtype != "float64" else np.float32) + 1e-6


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_device_path_boosts_lights_like_host_render(monkeypatch, dtype):
    # The gain map is computed from the tensor (pybokeh.highlights over torch) and reaches the kernel.
    torch = _emulated_render(monkeypatch)
    rng = np.random.default_rng(13)
    img = add_lights(rng, random_image(rng, 60, 80, dtype), count=5)
    depth = np.tile(np.linspace(0.0, 1.0, 80, dtype=np.float32), (60, 1))  # a ramp: layers continuing behind the next
    kw = dict(blades=5, max_blur=20.0)
    ref = pybokeh.render(img, depth, 0.2, backend="cpp", **kw)
    out = pybokeh.render(torch.from_numpy(img), torch.from_numpy(depth), 0.2, **kw).numpy()
    assert max_diff(out, ref) <= tolerance(dtype)
    plain = pybokeh.render(torch.from_numpy(img), torch.from_numpy(depth), 0.2, highlight_boost=0.0, **kw).numpy()
    assert max_diff(plain, pybokeh.render(img, depth, 0.2, backend="cpp", highlight_boost=0.0, **kw)) \
        <= tolerance(dtype)
    assert out.astype(np.float64).sum() > plain.astype(np.float64).sum() * 1.02


def test_device_path_defaults_follow_render(monkeypatch):
    # Every setting left at render's defaults: the same picture on both paths, right side up.
    torch = _emulated_render(monkeypatch)
    rng = np.random.default_rng(14)
    img = add_lights(rng, random_image(rng, 50, 70, np.uint8), count=4)
    depth = np.tile(np.linspace(0.0, 1.0, 50, dtype=np.float32)[:, None], (1, 70))  # a vertical ramp
    ref = pybokeh.render(img, depth, 0.3, backend="cpp")
    out = pybokeh.render(torch.from_numpy(img), torch.from_numpy(depth), 0.3).numpy()
    assert max_diff(out, ref) <= tolerance(np.uint8)
    assert max_diff(out[::-1], ref) > 10 * tolerance(np.uint8)  # the comparison sees a flipped picture


def test_cupy_without_torch_goes_through_the_host(monkeypatch):
    # A stand-in for CuPy (arrays that hold a NumPy array) on a machine whose torch sees no
    # GPU: the image is copied to the host, rendered by the cuda backend for NumPy arrays
    # (here cpp in its place) and copied back.
    import types

    class FakeCupyArray:
        def __init__(self, host):
            self.host = host

    fake = types.SimpleNamespace(ndarray=FakeCupyArray, asnumpy=lambda a: a.host, asarray=FakeCupyArray)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(device_inputs, "_torch_with_cuda", lambda: None)
    monkeypatch.setattr(cuda_backend, "render_cuda", get_backend("cpp")[1])
    rng = np.random.default_rng(15)
    img = random_image(rng, 30, 40, np.uint16)
    depth = rng.random((30, 40)).astype(np.float32)
    out = pybokeh.render(FakeCupyArray(img), depth, (20, 10), blades=5, max_blur=9.0)
    assert isinstance(out, FakeCupyArray) and out.host.dtype == np.uint16
    np.testing.assert_array_equal(out.host, pybokeh.render(img, depth, (20, 10), blades=5, max_blur=9.0,
                                                           backend="cpp"))
    with pytest.raises(ValueError, match="backend='numba' runs on the CPU"):
        pybokeh.render(FakeCupyArray(img), depth, 0.5, backend="numba")


def test_device_path_depth_mode_and_numpy_depth(monkeypatch):
    torch = _emulated_render(monkeypatch)
    rng = np.random.default_rng(12)
    img = random_image(rng, 40, 50, np.uint8)
    depth = (1.0 + 4.0 * rng.random((40, 50))).astype(np.float32)
    depth[0, :5] = np.inf
    depth[5, 5] = np.nan
    kw = dict(depth_kind="depth", f_number=1.4, focal_length_mm=85.0)
    ref = pybokeh.render(img, depth, 2.0, backend="cpp", **kw)
    out = pybokeh.render(torch.from_numpy(img), depth, 2.0, **kw)
    assert max_diff(out.numpy(), ref) <= tolerance(np.uint8)


def test_device_path_rejects_cpu_backends_and_bad_images(monkeypatch):
    torch = _emulated_render(monkeypatch)
    img = torch.zeros(8, 8, 3, dtype=torch.uint8)
    depth = torch.rand(8, 8)
    with pytest.raises(ValueError, match="backend='cpp' runs on the CPU"):
        pybokeh.render(img, depth, 0.5, backend="cpp")
    with pytest.raises(ValueError, match="H×W×3"):
        pybokeh.render(torch.zeros(3, 8, 8), depth, 0.5)
    with pytest.raises(TypeError, match="dtype"):
        pybokeh.render(torch.zeros(8, 8, 3, dtype=torch.int32), depth, 0.5)
    bright = torch.zeros(8, 8, 3)
    bright[2, 3, 1] = 2.0
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 1\].*range \[0, 2\]"):
        pybokeh.render(bright, depth, 0.5)
    bright[2, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        pybokeh.render(bright, depth, 0.5)
    with pytest.raises(ValueError, match="circle of confusion over 4096"):
        pybokeh.render(img, depth, 0.5, max_blur=1e6)
    with pytest.raises(ValueError, match="depth must have shape"):
        pybokeh.render(img, torch.rand(8, 8, 2), 0.5)
