"""Benchmarks: run with `pytest bench/ --benchmark-only` (not part of the test suite).

Like ``tests/``, the benchmarks measure the installed package: ``python -m pytest``
run from the repository root puts the source tree (no compiled modules, no
``pybokeh.nets``) first on ``sys.path``, so it is dropped before anything imports
pybokeh.
"""
from __future__ import annotations

import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != REPO]


def pytest_report_header(config):
    import pybokeh

    return f"pybokeh {pybokeh.__version__} from {pathlib.Path(pybokeh.__file__).resolve().parent}"


def pytest_configure(config):
    import pybokeh

    if pathlib.Path(pybokeh.__file__).resolve().parent == REPO / "pybokeh":
        import pytest

        raise pytest.UsageError("the benchmarks import pybokeh from the source tree, which has no compiled "
                                "modules: install the package (pip install '.[depth,test]') first")
