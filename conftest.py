"""Test and benchmark the installed package, not the source tree.

``python -m pytest`` from the repository root puts the root first on ``sys.path``,
where ``pybokeh/`` lacks ``pybokeh.nets`` and the compiled module (the wheel maps
``nets/`` to ``pybokeh/nets`` and builds ``_core``), so ``import pybokeh.nets`` would
fail.  Drop the root so that the installed package is imported.
"""
import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]
