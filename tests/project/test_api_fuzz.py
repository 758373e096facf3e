"""Fuzzing of the public API in subprocesses (``tests/fuzz_api.py``): a crash or abort
fails the test with the batch's seed instead of killing the test run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]  # fuzz_api.py and core_override.py live there


def run_fuzz(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``tests/fuzz_api.py`` in a fresh interpreter; its output comes back in the result."""
    return subprocess.run([sys.executable, str(TESTS / "fuzz_api.py"), *args], cwd=TESTS, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("batch_seed", [0, 1])
def test_public_api_survives_hostile_input_on_every_backend(batch_seed):
    # Each case ends in a result of the input's type (backends within 2/255 of each
    # other) or in a ValueError/TypeError with a message; never a crash, an abort,
    # another exception or a raw warning.
    result = run_fuzz("--cases", "120", "--seed", str(batch_seed), "--backends", "cpp", "numba", "numpy")
    detail = f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, detail  # negative: killed by a signal (segfault, abort)
    assert "cases: " in result.stdout and "rendered: 0," not in result.stdout, detail
