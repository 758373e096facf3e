"""Test seam: run the tests against another build of ``pybokeh._core``.

``PYBOKEH_TEST_CORE=/path/to/_core....so`` makes :func:`install` load that
extension module as ``pybokeh._core`` before anything asks for the ``cpp``
backend (``tests/renderer/test_sanitizers.py`` uses it for the AddressSanitizer + UBSan
build).  Without the variable nothing happens.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

ENV = "PYBOKEH_TEST_CORE"


def install() -> str | None:
    """Load the module named by ``$PYBOKEH_TEST_CORE`` as ``pybokeh._core``; returns its path or None."""
    path = os.environ.get(ENV)
    if not path:
        return None
    import pybokeh

    loader = importlib.machinery.ExtensionFileLoader("pybokeh._core", path)
    spec = importlib.util.spec_from_file_location("pybokeh._core", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules["pybokeh._core"] = module
    pybokeh._core = module
    return path
