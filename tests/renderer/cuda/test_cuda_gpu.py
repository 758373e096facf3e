"""The CUDA kernels on a device (marked ``gpu``, skipped without a CUDA device): parity with
``cpp`` and the emulation, determinism, every output pixel written, torch and CuPy arrays,
and CUDA errors as Python exceptions."""
from __future__ import annotations

import numpy as np
import pytest

import pybokeh
from pybokeh import Aperture, _core, _cuda_emu
from pybokeh.highlights import highlight_gain_map
from pybokeh.renderer import cuda_backend, device_inputs
from pybokeh.renderer.dispatch import get_backend

from cuda_checks import (FINE_LIGHTS, RAMPS, assert_frame_parity, lone_light_scene, max_diff, render_args,
                         requires_gpu, rim_width)
from gpu_scenes import add_lights, ramp_coc, random_coc, random_image


def _scene(seed: int, height: int, width: int, radius: float, dtype, blades: int):
    rng = np.random.default_rng(seed)
    img = random_image(rng, height, width, dtype)
    coc = random_coc(rng, height, width, radius)
    return render_args(img, coc, Aperture(blades, float(rng.random() * 90)))


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_gpu_matches_cpp_on_random_scenes(seed, dtype):
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(2, 400)), int(rng.integers(2, 600))
    radius = float(rng.choice([0.8, 4.0, 16.0, 40.0, 90.0]))
    blades = int(rng.choice([0, 3, 5, 6, 8, 11]))
    args = _scene(seed, height, width, radius, dtype, blades)
    out = cuda_backend.module().render(*args)
    ref = _core.render(*args, 2)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    assert_frame_parity(out, ref, dtype)
    # The same integer layer buffers as the emulation: near bit-identical.
    assert_frame_parity(out, _cuda_emu.render(*args), dtype)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("height,width,lo,hi,dtype,blades", RAMPS)
def test_gpu_matches_cpp_on_depth_ramps_with_lights(height, width, lo, hi, dtype, blades):
    rng = np.random.default_rng(height * 7 + width)
    img = add_lights(rng, random_image(rng, height, width, dtype))
    args = render_args(img, ramp_coc(rng, height, width, lo, hi), Aperture(blades, 11.0))
    out = cuda_backend.module().render(*args)
    assert_frame_parity(out, _core.render(*args, 2), dtype)
    assert_frame_parity(out, _cuda_emu.render(*args), dtype)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("height,width,radius,dtype,blades", FINE_LIGHTS)
def test_gpu_matches_cpp_with_fine_highlights(height, width, radius, dtype, blades):
    # Crisp highlights on the device: the highlight histogram (k_classify),
    # k_splat_fine and the fine-light scan and composite, against cpp and the
    # emulation, deterministic from run to run and across layer groups.
    rng = np.random.default_rng(int(radius) * 13 + height)
    img = add_lights(rng, random_image(rng, height, width, dtype), count=14)
    args = render_args(img, random_coc(rng, height, width, radius), Aperture(blades, 20.0), boost=100.0)
    mod = cuda_backend.module()
    out = mod.render(*args)
    assert_frame_parity(out, _core.render(*args, 2), dtype)
    assert_frame_parity(out, _cuda_emu.render(*args), dtype)
    np.testing.assert_array_equal(mod.render(*args, 4096.0, 4096), out)


@pytest.mark.gpu
@requires_gpu
def test_gpu_fine_highlight_rims_and_budget_cap():
    mod = cuda_backend.module()
    widths = {}
    for name, args in (("few", lone_light_scene(30, 400.0, 400.0)),
                       ("same", lone_light_scene(40, 400.0, 400.0)),
                       ("brighter", lone_light_scene(40, 400.0, 1000.0))):
        out = mod.render(*args)
        assert_frame_parity(out, _cuda_emu.render(*args), np.float32)
        widths[name] = rim_width(out)
    assert widths["few"] <= 2 and widths["brighter"] <= 2 and widths["same"] >= 5, widths


@pytest.mark.gpu
@requires_gpu
def test_gpu_gain_map_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    img = add_lights(rng, random_image(rng, 333, 517, np.uint16), count=20)
    coc = random_coc(rng, 333, 517, 20.0)
    out = highlight_gain_map(torch.from_numpy(img).cuda(), 16.0, torch.from_numpy(coc).cuda())
    assert out.is_cuda
    np.testing.assert_allclose(out.cpu().numpy(), highlight_gain_map(img, 16.0, coc), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@requires_gpu
def test_gpu_large_frame_with_many_groups_matches_cpp():
    args = _scene(99, 1080, 1920, 64.0, np.uint8, 0)
    mod = cuda_backend.module()
    out = mod.render(*args, 4096.0, 8 << 20)  # 8 MiB budget: many layer groups
    assert_frame_parity(out, _core.render(*args, 2), np.uint8)
    np.testing.assert_array_equal(out, mod.render(*args))


@pytest.mark.gpu
@requires_gpu
def test_gpu_runs_are_bit_identical_and_independent_of_leftover_memory():
    mod = cuda_backend.module()
    a = _scene(1, 300, 500, 50.0, np.float32, 0)
    b = _scene(2, 300, 500, 20.0, np.float32, 6)
    first = mod.render(*a)
    mod.render(*b)  # leaves other data in the freed device memory
    for _ in range(3):
        np.testing.assert_array_equal(mod.render(*a), first)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_gpu_writes_every_output_pixel(dtype):
    # Outputs pre-filled with different garbage must come out bit-identical.
    torch = pytest.importorskip("torch")
    args = _scene(4, 123, 257, 30.0, np.dtype(dtype), 5)
    image, coc, gain = args[0], args[1], args[-1]
    ap = Aperture(5)
    img_t = torch.from_numpy(image).cuda()
    coc_t = torch.from_numpy(coc).cuda()
    gain_t = torch.from_numpy(gain).cuda()
    results = []
    for poison in (0.0, 255.0, float("nan")) if dtype == "float32" else (0, 255, 0x7F):
        out = torch.full_like(img_t, poison)
        device_inputs.cuda_kernel(img_t, coc_t, out, ap, gain_t)
        results.append(out.cpu().numpy())
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    assert_frame_parity(results[0], _core.render(*render_args(image, coc, ap), 2), np.dtype(dtype))


@pytest.mark.gpu
@requires_gpu
def test_gpu_torch_tensors_stay_on_device_on_current_stream(monkeypatch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    img = random_image(rng, 200, 300, np.uint8)
    depth = rng.random((200, 300)).astype(np.float32)
    ref = pybokeh.render(img, depth, (150, 100), backend="cpp", blades=6)
    img_t, depth_t = torch.from_numpy(img).cuda(), torch.from_numpy(depth).cuda()

    def no_host_copy(*args, **kwargs):
        raise AssertionError("the device path copied a tensor to the host")

    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        monkeypatch.setattr(torch.Tensor, "cpu", no_host_copy)
        monkeypatch.setattr(torch.Tensor, "numpy", no_host_copy)
        out = pybokeh.render(img_t, depth_t, (150, 100), blades=6)
        monkeypatch.undo()
    stream.synchronize()
    assert out.is_cuda and out.device == img_t.device and out.dtype == torch.uint8
    assert_frame_parity(out.cpu().numpy(), ref, np.uint8)
    default = pybokeh.render(img_t, depth_t, (150, 100), blades=6, backend="cuda")
    assert torch.equal(default, out)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_gpu_torch_float_dtypes_round_trip(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    img = random_image(rng, 64, 96, np.float32)
    depth = rng.random((64, 96)).astype(np.float32)
    img_t = torch.from_numpy(img).cuda().to(getattr(torch, dtype))
    out = pybokeh.render(img_t, torch.from_numpy(depth).cuda(), 0.5)
    assert out.dtype == img_t.dtype and out.is_cuda
    ref = pybokeh.render(img_t.float().cpu().numpy(), depth, 0.5, backend="cpp")
    if dtype == "float16":
        assert max_diff(out.float().cpu().numpy(), ref) <= 2 / 255 + 1e-3
    else:
        assert_frame_parity(out.float().cpu().numpy(), ref, np.float32)


@pytest.mark.gpu
@requires_gpu
def test_gpu_cupy_arrays():
    cupy = pytest.importorskip("cupy")
    rng = np.random.default_rng(8)
    img = random_image(rng, 80, 120, np.uint8)
    depth = rng.random((80, 120)).astype(np.float32)
    out = pybokeh.render(cupy.asarray(img), cupy.asarray(depth), 0.4)
    assert isinstance(out, cupy.ndarray) and out.dtype == cupy.uint8
    assert_frame_parity(cupy.asnumpy(out), pybokeh.render(img, depth, 0.4, backend="cpp"), np.uint8)


@pytest.mark.gpu
@requires_gpu
def test_gpu_numpy_in_numpy_out_through_render():
    rng = np.random.default_rng(9)
    img = random_image(rng, 100, 150, np.uint16)
    depth = rng.random((100, 150))
    out = pybokeh.render(img, depth, 0.3, backend="cuda")
    assert isinstance(out, np.ndarray) and out.dtype == np.uint16
    assert_frame_parity(out, pybokeh.render(img, depth, 0.3, backend="cpp"), np.uint16)
    assert get_backend("auto")[0] == "cuda"


@pytest.mark.gpu
@requires_gpu
def test_gpu_errors_surface_as_python_exceptions():
    mod = cuda_backend.module()
    with pytest.raises(mod.CudaOutOfMemoryError, match="out of memory"):
        mod._debug_malloc(1 << 55)
    with pytest.raises(mod.CudaError, match="invalid configuration"):
        mod._debug_bad_launch()
    host = np.zeros((4, 4, 3), np.uint8)
    luts, ext = Aperture().kernel_tables()
    with pytest.raises(ValueError, match="highlight_gain must be device memory"):
        torch = pytest.importorskip("torch")
        dev = torch.zeros((4, 4, 3), dtype=torch.uint8, device="cuda")
        coc = torch.zeros((4, 4), device="cuda")
        mod.render_device(dev.data_ptr(), coc.data_ptr(), dev.data_ptr(), 4, 4, "uint8", 0, luts, ext,
                          np.zeros((4, 4), np.float32).ctypes.data, 4096.0, 0, dev.device.index)
    with pytest.raises(ValueError, match="must be device memory"):
        mod.render_device(host.ctypes.data, host.ctypes.data, host.ctypes.data, 4, 4, "uint8", 0, luts, ext, 0,
                          4096.0, 0, 0)
    # The errors were not sticky: the device still renders.
    args = _scene(3, 50, 60, 10.0, np.uint8, 0)
    assert_frame_parity(mod.render(*args), _core.render(*args, 1), np.uint8)
