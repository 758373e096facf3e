"""The PYBOKEH_CUDA build switch: the CUDA module is built where nvcc is, and CMake's
AUTO / ON / OFF choices configure what they say (a few seconds each, in a temporary directory)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[3]


def _nvcc() -> str | None:
    return shutil.which("nvcc") or next((p for p in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(p)), None)



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
