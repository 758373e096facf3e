"""The C++ renderer under AddressSanitizer and UBSan.

Builds ``pybokeh._core`` with ``-DPYBOKEH_SANITIZE=ON`` (every report fatal) in a
temporary directory, then runs, with the sanitizer runtimes preloaded, the API fuzz
(``tests/fuzz_api.py``, which starts with the issue-15 reproducer), the renderer's
property tests and the reliability tests, all on that build (``PYBOKEH_TEST_CORE``,
see ``tests/core_override.py``).  Any report fails the test.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]  # fuzz_api.py and core_override.py live there
REPO = TESTS.parent

pytestmark = [pytest.mark.build, pytest.mark.slow]


def _runtime(name: str) -> str | None:
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        return None
    path = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.fixture(scope="module")
def sanitized_core(tmp_path_factory) -> Path:
    if shutil.which("cmake") is None or _runtime("libasan.so") is None:
        pytest.skip("cmake or the compiler's AddressSanitizer runtime (libasan) is not installed")
    pybind11 = pytest.importorskip("pybind11")
    build = tmp_path_factory.mktemp("asan-build")
    configure = ["cmake", "-S", str(REPO), "-B", str(build), "-DPYBOKEH_SANITIZE=ON", "-DPYBOKEH_CUDA=OFF",
                 "-DCMAKE_BUILD_TYPE=RelWithDebInfo", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
                 f"-DPython_EXECUTABLE={sys.executable}"]
    for cmd in (configure, ["cmake", "--build", str(build), "--target", "_core", "-j", "2"]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    found = sorted(build.glob("_core*.so"))
    assert found, list(build.iterdir())
    return found[0]


def _sanitized_env(core: Path) -> dict:
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(p for p in (_runtime("libasan.so"), _runtime("libubsan.so")) if p)
    # Python itself leaks by design at exit; what matters are invalid accesses and UB.
    env["ASAN_OPTIONS"] = "detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1:exitcode=87"
    env["PYBOKEH_TEST_CORE"] = str(core)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _assert_clean(result: subprocess.CompletedProcess) -> None:
    text = result.stdout[-4000:] + "\n" + result.stderr[-6000:]
    assert "AddressSanitizer" not in result.stderr and "runtime error:" not in result.stderr, text
    assert result.returncode == 0, f"exit {result.returncode}\n{text}"


def test_api_fuzz_under_asan_and_ubsan(sanitized_core):
    result = subprocess.run([sys.executable, str(TESTS / "fuzz_api.py"), "--cases", "250", "--batches", "2",
                             "--seed", "100", "--backends", "cpp"], cwd=TESTS, env=_sanitized_env(sanitized_core),
                            capture_output=True, text=True, timeout=900)
    _assert_clean(result)
    assert "cases: " in result.stdout and f"_core: {sanitized_core}" in result.stdout


BOUNDARIES = """
import itertools
import numpy as np
import core_override
core_override.install()
from pybokeh import Aperture, _core

# The largest values _core accepts, the smallest frames, more threads than rows, and the
# reproducer's scene with the gain at its bound: every table index at its edge.
rng = np.random.default_rng(0)
for (h, w), blades, r, gain, threads in itertools.product(
        [(1, 2), (2, 1), (1, 64), (64, 1), (3, 3), (64, 64)], [0, 3, 16], [0.49, 0.5, 7.9, 64.0, 4096.0],
        [0.0, 1.0, 1000.0], [1, 2, 7]):
    img = (rng.random((h, w, 3)) * 60).astype(np.uint8)
    img[rng.random((h, w)) < 0.1] = 255
    coc = np.clip(np.linspace(-r, r, h * w, dtype=np.float32), -4096, 4096).reshape(h, w)
    luts, ext = Aperture(blades, 10.0).kernel_tables()
    g = np.full((h, w), gain, np.float32)
    for dtype in (np.uint8, np.uint16, np.float32):
        src = img.astype(dtype) / (255 if dtype == np.float32 else 1)
        if dtype == np.uint16:
            src = img.astype(np.uint16) * 257
        out = _core.render(np.ascontiguousarray(src, dtype), coc, blades, luts, ext, g, threads)
        assert out.shape == img.shape
print("boundaries ok:", _core.__file__)
"""


def test_core_boundaries_under_asan_and_ubsan(sanitized_core):
    result = subprocess.run([sys.executable, "-c", BOUNDARIES], cwd=TESTS, env=_sanitized_env(sanitized_core),
                            capture_output=True, text=True, timeout=900)
    _assert_clean(result)
    assert f"boundaries ok: {sanitized_core}" in result.stdout


def test_renderer_tests_under_asan_and_ubsan(sanitized_core):
    # The property, parity-with-reference and reliability tests of the cpp backend.
    tests = ["renderer/test_renderer_properties.py", "renderer/test_reliability.py", "cli/test_cli_reliability.py",
             "renderer/test_renderer_occlusion.py"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k",
                             "cpp or core or reliab or bins", *tests], cwd=TESTS, env=_sanitized_env(sanitized_core),
                            capture_output=True, text=True, timeout=1200)
    _assert_clean(result)
    assert " passed" in result.stdout
