"""The benchmarks measure the installed package, also when run as `python -m pytest` from the
repository root (scripts/gpu_checks.sh does): the source tree has no compiled modules and no
``pybokeh.nets``, and importing it made bench_fused_norm.py fail at collection and bench_cuda.py
skip as if the CUDA module were missing (issue 15)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_python_m_pytest_from_the_root_collects_every_benchmark_against_the_installed_package():
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider", "bench/"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    text = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, text
    assert "error" not in result.stdout.lower().split("collected")[-1], text
    header = next(line for line in result.stdout.splitlines() if line.startswith("pybokeh "))
    assert str(REPO / "pybokeh") not in header and "site-packages" in header, header
    for bench in ("bench_render.py", "bench_fused_norm.py", "bench_cuda.py", "bench_depth.py"):
        assert bench in result.stdout, bench
