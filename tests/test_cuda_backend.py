"""The CUDA backend: build switch, import and dispatch without a GPU, the CUDA
algorithm through its CPU emulation, the device-side input path, and (marked
``gpu``, skipped without a CUDA device) the kernels themselves.

Without a GPU the CUDA kernels cannot run, but their logic can:
``pybokeh._cuda_emu`` runs the same plan and per-thread steps
(``csrc/gpu_plan.h``, ``csrc/gpu_steps.h``) serially, so the parity tests
below check the CUDA algorithm against the ``cpp`` backend on every machine.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pybokeh
from pybokeh import Aperture, BackendUnavailableError
from pybokeh.highlights import highlight_gain_map
from pybokeh.lens import MAX_COC_RADIUS
from pybokeh.renderer import cuda_backend, device_inputs
from pybokeh.renderer.dispatch import get_backend

from gpu_scenes import add_lights, ramp_coc, random_coc, random_image, tolerance

try:
    from pybokeh import _core, _cuda_emu  # built with every install
except ImportError as exc:  # pragma: no cover - environment problem, not a test outcome
    raise ImportError(f"{exc}: run the tests against the installed package (`pytest` or `python -P -m pytest`); "
                      f"`python -m pytest` puts the source tree, which has no compiled modules, first on "
                      f"sys.path") from exc

REPO = Path(__file__).resolve().parents[1]
GPU_REASON = cuda_backend.unavailable_reason()
requires_gpu = pytest.mark.skipif(bool(GPU_REASON), reason=f"needs a CUDA device: {GPU_REASON}")
no_gpu_only = pytest.mark.skipif(not GPU_REASON, reason="checks behaviour without a GPU; a GPU is present")


def _nvcc() -> str | None:
    return shutil.which("nvcc") or next((p for p in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(p)), None)


def render_args(image, coc, aperture, boost=16.0):
    """Arguments of pybokeh._core.render before ``threads`` (also those of _cuda.render and _cuda_emu.render).

    The highlight gain map is pybokeh.render's for ``highlight_boost=boost``.
    """
    luts, extents = aperture.kernel_tables()
    return (image, coc, aperture.blades, luts, extents, highlight_gain_map(image, boost, coc))


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def assert_parity(out: np.ndarray, ref: np.ndarray, dtype) -> None:
    """The emulated CUDA renderer against cpp: within 1/255 everywhere, equal nearly everywhere."""
    assert out.dtype == ref.dtype and out.shape == ref.shape
    assert max_diff(out, ref) <= tolerance(dtype)
    # A systematic error would show in the mean.
    assert np.abs(out.astype(np.float64) - ref).mean() <= 0.01 * tolerance(dtype)


def assert_frame_parity(out: np.ndarray, ref: np.ndarray, dtype) -> None:
    """The GPU against cpp or the emulation: within 2/255 everywhere, at most 1 pixel in 10^4 beyond 1/255.

    Looser than :func:`assert_parity` (which the emulation meets): nvcc
    contracts multiply-adds into FMAs, so the GPU's float steps (span ends,
    splat totals, compositing) round differently from the CPU's in the last
    bit, which can tip a few pixels over a quantisation boundary.
    """
    d = np.abs(out.astype(np.float64) - ref.astype(np.float64)).max(axis=-1)
    tol = tolerance(dtype)
    assert d.max() <= 2 * tol, d.max()
    assert np.mean(d > tol) <= 1e-4, (np.mean(d > tol), d.max())
    assert d.mean() <= 0.01 * tol


# ------------------------------------------------------------------ build

@pytest.mark.skipif(os.environ.get("PYBOKEH_CUDA", "AUTO").upper() == "OFF", reason="installed with PYBOKEH_CUDA=OFF")
@pytest.mark.skipif(_nvcc() is None, reason="nvcc is not installed: PYBOKEH_CUDA=AUTO builds no CUDA module")
def test_cuda_module_is_built_where_nvcc_is_installed():
    import pybokeh._cuda as mod  # an ImportError here means the AUTO build skipped CUDA

    count, message = mod.device_status()
    assert isinstance(count, int) and count >= 0 and message


def _configure(tmp_path: Path, *defines: str) -> subprocess.CompletedProcess:
    pybind11 = pytest.importorskip("pybind11", reason="pybind11 (test extra) locates its CMake files")
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not on PATH")
    cmd = [cmake, "-S", str(REPO), "-B", str(tmp_path / "build"), f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
           f"-DPython_EXECUTABLE={sys.executable}", *defines]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.build
def test_cmake_cuda_on_without_compiler_fails(tmp_path):
    res = _configure(tmp_path, "-DPYBOKEH_CUDA=ON", "-DCMAKE_CUDA_COMPILER=/nonexistent/nvcc")
    assert res.returncode != 0
    assert "PYBOKEH_CUDA=ON but no usable CUDA compiler" in res.stderr + res.stdout


@pytest.mark.build
def test_cmake_cuda_auto_without_compiler_builds_cpu_only(tmp_path):
    res = _configure(tmp_path, "-DPYBOKEH_CUDA=AUTO", "-DCMAKE_CUDA_COMPILER=/nonexistent/nvcc")
    assert res.returncode == 0, res.stderr
    assert "not building pybokeh._cuda" in res.stdout
    assert not (tmp_path / "build" / "CMakeFiles" / "_cuda.dir").exists()
    assert (tmp_path / "build" / "CMakeFiles" / "_core.dir").exists()


@pytest.mark.build
def test_cmake_cuda_off_has_no_cuda_target(tmp_path):
    res = _configure(tmp_path, "-DPYBOKEH_CUDA=OFF")
    assert res.returncode == 0, res.stderr
    assert "not building pybokeh._cuda (PYBOKEH_CUDA=OFF)" in res.stdout
    assert not (tmp_path / "build" / "CMakeFiles" / "_cuda.dir").exists()
    assert (tmp_path / "build" / "CMakeFiles" / "_cuda_emu.dir").exists()


@pytest.mark.build
def test_cmake_rejects_unknown_switch_value(tmp_path):
    res = _configure(tmp_path, "-DPYBOKEH_CUDA=MAYBE")
    assert res.returncode != 0
    assert "PYBOKEH_CUDA must be AUTO, ON or OFF" in res.stderr + res.stdout


# ------------------------------------------------- import and dispatch

def test_import_and_dispatch_with_cuda_module_blocked(tmp_path):
    code = textwrap.dedent("""
        import sys
        sys.modules["pybokeh._cuda"] = None  # any import of it raises ImportError
        import numpy as np
        import pybokeh
        from pybokeh.renderer import cuda_backend
        assert "cuda" not in pybokeh.backends(), pybokeh.backends()
        assert "without its CUDA module" in cuda_backend.unavailable_reason()
        img = np.zeros((4, 5, 3), np.uint8)
        try:
            pybokeh.render(img, np.zeros((4, 5), np.float32), 0.5, backend="cuda")
        except pybokeh.BackendUnavailableError as exc:
            assert "backend 'cuda' is not available" in str(exc), exc
        else:
            raise AssertionError("backend='cuda' did not raise")
        assert pybokeh.render(img, np.zeros((4, 5), np.float32), 0.5).shape == (4, 5, 3)
        print("ok")
    """)
    # Run outside the repository, so that the installed package is imported.
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("ok")


@no_gpu_only
def test_explicit_cuda_backend_without_gpu_raises_clear_error():
    rng = np.random.default_rng(0)
    img = random_image(rng, 8, 9, np.uint8)
    with pytest.raises(BackendUnavailableError, match="backend 'cuda' is not available: .+"):
        pybokeh.render(img, rng.random((8, 9)), 0.5, backend="cuda")


@no_gpu_only
def test_auto_never_picks_cuda_without_gpu():
    assert "cuda" not in pybokeh.backends()
    name, _ = get_backend("auto")
    assert name != "cuda"


@no_gpu_only
def test_cuda_module_without_gpu_reports_and_raises_cuda_errors():
    mod = cuda_backend.module()
    if mod is None:
        pytest.skip(f"pybokeh._cuda is not built here: {cuda_backend.unavailable_reason()}")
    count, message = mod.device_status()
    assert count == 0 and message
    assert message in GPU_REASON
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(mod.CudaError, match="CUDA error cuda"):
        mod.render(*render_args(img, np.zeros((4, 4), np.float32), Aperture()))
    assert issubclass(mod.CudaError, RuntimeError)
    assert issubclass(mod.CudaOutOfMemoryError, mod.CudaError)


def test_is_device_array_is_false_for_host_arrays():
    torch = pytest.importorskip("torch")
    assert not device_inputs.is_device_array(np.zeros((2, 2, 3)))
    assert not device_inputs.is_device_array(torch.zeros(2, 2, 3))
    assert not device_inputs.is_device_array([1, 2, 3])


# ------------------------------------------- the CUDA algorithm, emulated

SCENES = [  # (height, width, max radius px, dtype, blades)
    (37, 53, 3.0, np.uint8, 0),
    (64, 80, 12.0, np.uint8, 6),
    (90, 71, 40.0, np.uint8, 0),
    (90, 71, 40.0, np.uint16, 5),
    (90, 71, 40.0, np.float32, 0),
    (61, 97, 70.0, np.uint8, 9),
    (2, 300, 20.0, np.uint8, 0),
    (150, 3, 20.0, np.float32, 3),
]


@pytest.mark.parametrize("height,width,radius,dtype,blades", SCENES)
def test_emulated_cuda_matches_cpp(height, width, radius, dtype, blades):
    rng = np.random.default_rng(height * 1000 + width)
    img = random_image(rng, height, width, dtype)
    coc = random_coc(rng, height, width, radius)
    args = render_args(img, coc, Aperture(blades, float(rng.random() * 90)))
    out = _cuda_emu.render(*args)
    assert_parity(out, _core.render(*args, 1), dtype)
    # The blur did something (the scene is not trivially in focus).
    assert max_diff(out, img) > 10 * tolerance(dtype)


RAMPS = [  # (height, width, CoC from, CoC to (px), dtype, blades): layers continue behind nearer ones
    (80, 96, -40.0, 40.0, np.uint8, 0),     # far and near sides, level-0 and coarse coverage splats
    (72, 64, 0.6, 60.0, np.uint8, 6),       # near side only, reflected aperture
    (90, 50, -70.0, -0.6, np.uint16, 5),    # far side only, up to level 3
    (64, 88, -12.0, 9.0, np.float32, 0),    # mostly level 0
    (40, 120, 2.0, 30.0, np.uint8, 9),
]


@pytest.mark.parametrize("height,width,lo,hi,dtype,blades", RAMPS)
def test_emulated_cuda_matches_cpp_on_depth_ramps(height, width, lo, hi, dtype, blades):
    rng = np.random.default_rng(height * 7 + width)
    img = random_image(rng, height, width, dtype)
    args = render_args(img, ramp_coc(rng, height, width, lo, hi), Aperture(blades, 11.0))
    assert_parity(_cuda_emu.render(*args), _core.render(*args, 1), dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_emulated_cuda_matches_cpp_with_clipped_lights(dtype):
    rng = np.random.default_rng(31)
    img = add_lights(rng, random_image(rng, 70, 90, dtype), count=8)
    coc = random_coc(rng, 70, 90, 25.0)
    args = render_args(img, coc, Aperture(6))
    gain = args[-1]
    assert gain is not None and gain.max() > 6.0  # lights on random mid-grey texture: about half the boost
    boosted = _cuda_emu.render(*args)
    assert_parity(boosted, _core.render(*args, 1), dtype)
    # The gain map is applied: without it the lights' discs are much dimmer.
    plain = _cuda_emu.render(*args[:-1], None)
    assert_parity(plain, _core.render(*args[:-1], None, 1), dtype)
    assert boosted.astype(np.float64).sum() > plain.astype(np.float64).sum() * 1.02


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    height=st.integers(1, 80),
    width=st.integers(1, 100),
    radius=st.sampled_from([0.7, 2.0, 6.0, 15.0, 40.0, 90.0]),
    kind=st.sampled_from(["photo", "ramp", "noise"]),
    blades=st.sampled_from([0, 3, 4, 5, 6, 8, 11, 16]),
    rotation=st.floats(-180, 180),
    boost=st.sampled_from([0.0, 2.0, 16.0, 100.0]),
    lights=st.booleans(),
    budget=st.sampled_from([0, 4096, 65536]),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
)
def test_emulated_cuda_matches_cpp_on_random_scenes(seed, height, width, radius, kind, blades, rotation, boost,
                                                    lights, budget, dtype):
    rng = np.random.default_rng(seed)
    img = random_image(rng, height, width, dtype)
    if lights:
        add_lights(rng, img, 4)
    if kind == "photo" and height > 1:
        coc = random_coc(rng, height, width, radius)
    elif kind == "ramp":
        coc = ramp_coc(rng, height, width, float(rng.uniform(-radius, radius)), float(rng.uniform(-radius, radius)))
    else:
        coc = rng.uniform(-radius, radius, (height, width)).astype(np.float32)
    args = render_args(img, coc, Aperture(blades, rotation), boost=boost)
    out = _cuda_emu.render(*args, 4096.0, budget)  # budget > 0: layers rendered in several groups
    ref = _core.render(*args, 1)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    # Next to lights boosted 100x, cpp's float difference markers leave residues
    # that a thinly covered pixel's colour (divided by its coverage, down to
    # 0.001) magnifies to 2/255; the GPU's fixed-point markers cancel exactly and
    # match the float64 reference there (seed 0, 52x52, radius 2, noise, 3 blades,
    # lights: emu = reference, cpp off by 2).  The bound is 2/255.
    assert max_diff(out, ref) <= tolerance(dtype) * (2.0 if boost >= 100.0 else 1.0)


def test_emulated_cuda_matches_cpp_with_strong_highlight_gain():
    # The colour fixed-point scale shrinks with the largest boost; values must not overflow.
    rng = np.random.default_rng(7)
    img = random_image(rng, 50, 60, np.uint8)
    img[10:20, 10:20] = 255
    coc = random_coc(rng, 50, 60, 15.0)
    args = render_args(img, coc, Aperture(), boost=500.0)
    assert args[-1].max() > 100.0
    assert_parity(_cuda_emu.render(*args), _core.render(*args, 1), np.uint8)


FINE_LIGHTS = [  # (height, width, max radius px, dtype, blades): point lights in coarse layers
    (96, 120, 10.0, np.uint8, 0),
    (96, 120, 25.0, np.uint16, 6),
    (110, 90, 40.0, np.float32, 0),
    (110, 130, 60.0, np.uint8, 5),
]


@pytest.mark.parametrize("height,width,radius,dtype,blades", FINE_LIGHTS)
def test_emulated_cuda_matches_cpp_with_fine_highlights(height, width, radius, dtype, blades):
    # Clipped single-pixel and 3x3 lights in dark surroundings, strongly boosted
    # by the gain map, at radii up to 60 px: coarse layers whose highlights keep
    # full-resolution light splats (crisp highlights), with lights near the
    # frame edges (mirrored splats).
    rng = np.random.default_rng(int(radius) * 13 + height)
    img = random_image(rng, height, width, dtype) // (16 if dtype != np.float32 else 1)
    if dtype == np.float32:
        img *= 1.0 / 16.0
    top = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    for k, (y, x) in enumerate(zip(rng.integers(0, height, 14), rng.integers(0, width, 14))):
        img[y:y + 1 + 2 * (k % 2), x:x + 1 + 2 * (k % 2)] = top
    coc = np.clip(random_coc(rng, height, width, radius), -radius, radius)
    coc = np.where(np.abs(coc) < 0.6 * radius, np.sign(coc + 1e-3) * rng.uniform(0.6, 1.0, coc.shape) * radius, coc)
    args = render_args(img, coc.astype(np.float32), Aperture(blades, 20.0), boost=400.0)
    assert args[-1].max() > 100.0
    out = _cuda_emu.render(*args)
    assert_parity(out, _core.render(*args, 1), dtype)
    # Layer groups (a small buffer budget) do not change the result.
    np.testing.assert_array_equal(_cuda_emu.render(*args, 4096.0, 4096), out)


def _lone_light_scene(crowd: int, crowd_gain: float, light_gain: float, radius: float = 40.0):
    """Black 130 x 400 frame at CoC ``radius``: a lone 1-px light at (65, 100) and a crowd of
    ``crowd`` x ``crowd`` clipped pixels far to the right, with explicit highlight gains."""
    h, w = 130, 400
    img = np.zeros((h, w, 3), np.float32)
    gain = np.zeros((h, w), np.float32)
    img[65, 100] = 1.0
    gain[65, 100] = light_gain
    y0, x0 = 65 - crowd // 2, 350 - crowd // 2
    img[y0:y0 + crowd, x0:x0 + crowd] = 1.0
    gain[y0:y0 + crowd, x0:x0 + crowd] = crowd_gain
    coc = np.full((h, w), radius, np.float32)
    luts, extents = Aperture().kernel_tables()
    return (img, coc, 0, luts, extents, gain)


def _rim_width(out: np.ndarray, y: int = 65, cx: int = 100, radius: int = 40) -> int:
    """Pixels of row y across either rim of the disc around column cx that are neither
    background (< 5% of the disc's plateau) nor disc (> 95%): the wider side."""
    row = out[y, :, 1].astype(np.float64)
    plateau = row[cx - radius // 2:cx + radius // 2].mean()
    assert plateau > 0.2 and row[cx - radius // 2:cx + radius // 2].std() < 0.02 * plateau
    f = row / plateau
    mid = (f > 0.05) & (f < 0.95)
    left = int(mid[cx - 2 * radius:cx].sum())
    right = int(mid[cx:cx + 2 * radius].sum())
    return max(left, right)


def test_emulated_cuda_fine_highlight_discs_have_crisp_rims():
    # A lone point light at r = 40 lands in a layer splatted on a grid 8 times
    # coarser; its light keeps a full-resolution splat, so the rim of its disc
    # spans at most ~2 px (the coarse grid alone would blur it over ~2 cells).
    args = _lone_light_scene(crowd=4, crowd_gain=400.0, light_gain=400.0)
    out = _cuda_emu.render(*args)
    assert_parity(out, _core.render(*args, 1), np.float32)
    assert _rim_width(out) <= 2


def test_emulated_cuda_fine_highlight_budget_raises_the_threshold():
    # The crowd has more highlights than the layer may splat at full
    # resolution (fine_light_capacity: 2 * 130 * 400 / 91.5 ~ 1136): the
    # threshold rises above their brightness.  A lone light as bright as the
    # crowd then goes to the coarse grid (soft rim); one brighter than the crowd
    # (a higher fine_light_bin) still gets its crisp full-resolution splat.
    crowded_same = _lone_light_scene(crowd=40, crowd_gain=400.0, light_gain=400.0)  # both bin 8
    crowded_brighter = _lone_light_scene(crowd=40, crowd_gain=400.0, light_gain=1000.0)  # bin 9 vs 8
    few = _lone_light_scene(crowd=30, crowd_gain=400.0, light_gain=400.0)  # 900 + 1 fit: all fine
    widths = {}
    for name, args in (("same", crowded_same), ("brighter", crowded_brighter), ("few", few)):
        out = _cuda_emu.render(*args)
        assert_parity(out, _core.render(*args, 1), np.float32)
        widths[name] = _rim_width(out)
    assert widths["few"] <= 2 and widths["brighter"] <= 2, widths
    assert widths["same"] >= 5, widths  # the cap engaged: the lone light is coarse


@pytest.mark.slow
def test_emulated_cuda_matches_cpp_on_a_large_frame():
    rng = np.random.default_rng(17)
    img = random_image(rng, 600, 900, np.uint8)
    args = render_args(img, random_coc(rng, 600, 900, 64.0), Aperture(6))
    assert_parity(_cuda_emu.render(*args), _core.render(*args, 2), np.uint8)


def test_emulated_cuda_layer_groups_do_not_change_the_result():
    # A tiny buffer budget renders the layers in many groups, carrying the
    # accumulator through memory: the result must be bit-identical.
    rng = np.random.default_rng(3)
    img = random_image(rng, 70, 90, np.float32)
    coc = random_coc(rng, 70, 90, 30.0)
    args = render_args(img, coc, Aperture(7))
    one = _cuda_emu.render(*args, 4096.0, 0)
    many = _cuda_emu.render(*args, 4096.0, 4096)
    np.testing.assert_array_equal(one, many)


def test_emulated_cuda_in_focus_image_is_unchanged():
    rng = np.random.default_rng(5)
    img = random_image(rng, 20, 30, np.uint16)
    coc = (rng.random((20, 30)) - 0.5).astype(np.float32) * 0.9  # |CoC| < 0.5 everywhere
    np.testing.assert_array_equal(_cuda_emu.render(*render_args(img, coc, Aperture())), img)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("clipped", [False, True])
def test_emulated_cuda_constant_image_stays_constant(dtype, clipped):
    # Also with a clipped channel (every pixel clipped, no unclipped surroundings: an all-zero gain map).
    rng = np.random.default_rng(2)
    top = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    colour = rng.random(3) * top
    if clipped:
        colour[1] = top
    img = np.empty((40, 50, 3), dtype)
    img[...] = colour.astype(dtype) if dtype == np.float32 else np.round(colour).astype(dtype)
    for seed, radius in ((2, 25.0), (3, 4.0), (4, 60.0)):
        coc = random_coc(np.random.default_rng(seed), 40, 50, radius)
        out = _cuda_emu.render(*render_args(img, coc, Aperture(5), boost=16.0))
        assert max_diff(out, img) <= (2e-5 if dtype == np.float32 else 1)


@pytest.mark.parametrize("bad,match", [
    ("nan_coc", "coc"), ("huge_coc", "coc"), ("image_range", "image"), ("image_nan", "image"),
    ("gain_inf", "highlight_gain"), ("gain_nan", "highlight_gain"), ("gain_huge", "highlight_gain")])
def test_emulated_cuda_flags_invalid_inputs(bad, match):
    rng = np.random.default_rng(1)
    img = random_image(rng, 10, 12, np.float32)
    coc = random_coc(rng, 10, 12, 5.0)
    gain = np.zeros((10, 12), np.float32)
    if bad == "nan_coc":
        coc[3, 4] = np.nan
    elif bad == "huge_coc":
        coc[3, 4] = 5000.0
    elif bad == "image_range":
        img[1, 1, 1] = 1.5
    elif bad == "image_nan":
        img[1, 1, 1] = np.nan
    else:
        gain[2, 5] = {"gain_inf": np.inf, "gain_nan": np.nan, "gain_huge": 2.0 ** 21}[bad]
    with pytest.raises(ValueError, match=match):
        _cuda_emu.render(*render_args(img, coc, Aperture())[:-1], gain)


@pytest.mark.parametrize("bad", [-3.0, 1000.5, np.inf, np.nan])
def test_emulated_cuda_and_cpp_reject_gains_outside_their_range(bad):
    # Both compiled renderers take gains in [0, MAX_HIGHLIGHT_GAIN] only (issue 15: an inf
    # gain indexed before the fine-light histogram in cpp).
    rng = np.random.default_rng(4)
    img = random_image(rng, 30, 40, np.uint8)
    coc = random_coc(rng, 30, 40, 8.0)
    args = render_args(img, coc, Aperture())[:-1]
    gain = np.zeros((30, 40), np.float32)
    gain[3, 4] = bad
    for module in (_cuda_emu, _core):
        with pytest.raises(ValueError, match="highlight_gain"):
            module.render(*args, gain) if module is _cuda_emu else module.render(*args, gain, 1)


def test_emulated_cuda_rejects_bad_arguments():
    img = np.zeros((4, 4, 3), np.uint8)
    coc = np.zeros((4, 4), np.float32)
    luts, ext = Aperture(5).kernel_tables()
    with pytest.raises(ValueError, match="blades"):
        _cuda_emu.render(img, coc, 2, luts, ext, None)
    with pytest.raises(ValueError, match="aperture_luts"):
        _cuda_emu.render(img, coc, 5, luts[:, :10], ext, None)
    with pytest.raises(ValueError, match="aperture_extents"):
        _cuda_emu.render(img, coc, 5, luts, ext[:1], None)
    with pytest.raises(ValueError, match="aperture_extents must lie"):
        _cuda_emu.render(img, coc, 5, luts, ext * 3, None)
    with pytest.raises(ValueError, match="coc"):
        _cuda_emu.render(img, np.zeros((4, 5), np.float32), 5, luts, ext, None)
    with pytest.raises(ValueError, match="dtype"):
        _cuda_emu.render(img.astype(np.int32), coc, 5, luts, ext, None)
    with pytest.raises(ValueError, match="highlight_gain must be None or an H x W float32 array"):
        _cuda_emu.render(img, coc, 5, luts, ext, np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="highlight_gain must be None or an H x W float32 array"):
        _cuda_emu.render(img, coc, 5, luts, ext, 2.0)


# ---------------------------------------- device input path, emulated

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


# ------------------------------------------------------------ the GPU

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
    for name, args in (("few", _lone_light_scene(30, 400.0, 400.0)),
                       ("same", _lone_light_scene(40, 400.0, 400.0)),
                       ("brighter", _lone_light_scene(40, 400.0, 1000.0))):
        out = mod.render(*args)
        assert_frame_parity(out, _cuda_emu.render(*args), np.float32)
        widths[name] = _rim_width(out)
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
