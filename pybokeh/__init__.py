"""pybokeh: portrait-mode lens blur from one photo.

>>> import pybokeh
>>> out = pybokeh.render(image, depth, focus)   # doctest: +SKIP

Main entry points: :func:`render`, :func:`coc_map`, :func:`backends`,
:func:`subject_focus` (where to focus), :func:`read_photo_with_depth` (a photo and
the depth a phone embedded in it) and :func:`estimate_depth` (needs an estimator's
extra: ``depth``, ``hf`` or ``onnx``).
"""
from __future__ import annotations

from .aperture import Aperture
from .depth import estimate_depth
from .focus import SubjectFocus, subject_focus
from .phone import read_photo_with_depth
from .lens import coc_map
from .renderer import DEFAULT_HIGHLIGHT_BOOST, BackendUnavailableError, backends, render

__version__ = "0.1.0"

__all__ = ["render", "estimate_depth", "coc_map", "backends", "subject_focus", "SubjectFocus",
           "read_photo_with_depth", "Aperture", "BackendUnavailableError", "DEFAULT_HIGHLIGHT_BOOST", "__version__"]
