"""pybokeh: portrait-mode lens blur from one photo.

>>> import pybokeh
>>> out = pybokeh.render(image, depth, focus)   # doctest: +SKIP

Main entry points: :func:`render`, :func:`coc_map`, :func:`backends` and,
with the ``depth`` extra installed, :func:`estimate_depth`.
"""
from __future__ import annotations

from .aperture import Aperture
from .depth import estimate_depth
from .lens import coc_map
from .renderer import DEFAULT_HIGHLIGHT_BOOST, BackendUnavailableError, backends, render

__version__ = "0.1.0"

__all__ = ["render", "estimate_depth", "coc_map", "backends", "Aperture", "BackendUnavailableError",
           "DEFAULT_HIGHLIGHT_BOOST", "__version__"]
