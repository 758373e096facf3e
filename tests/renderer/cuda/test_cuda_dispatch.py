"""The CUDA backend without a GPU: pybokeh imports and dispatches with the CUDA module
missing or no device present, and ``backend="cuda"`` then fails with a clear error."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pybokeh
from pybokeh import Aperture, BackendUnavailableError
from pybokeh.renderer import cuda_backend, device_inputs
from pybokeh.renderer.dispatch import get_backend

from cuda_checks import GPU_REASON, no_gpu_only, render_args
from gpu_scenes import random_image


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
