"""Backend registry: which renderers exist on this machine, and picking one.

Preference order for ``backend="auto"``: ``cuda`` (when a GPU and the CUDA
module are present), ``cpp`` (the compiled module), ``numba``, ``numpy`` (the
slow reference, always present).  A missing optional piece never breaks
``import pybokeh``; only an explicit request for it raises.
"""
from __future__ import annotations

import functools
import importlib
import os
import warnings
from typing import Callable

import numpy as np

from ..aperture import Aperture
from ..validate import integer, text
from .errors import BackendUnavailableError

#: Signature of a backend: (image, coc, aperture, highlight_gain (H×W float32 or None), threads) -> image;
#: coc is H×W float32 px, or for :data:`GRID_STEP_BACKENDS` int16 steps of 1/COC_STEPS_PER_PX px
#: (:func:`pybokeh.lens.grid_steps`).
Backend = Callable[[np.ndarray, np.ndarray, Aperture, "np.ndarray | None", int], np.ndarray]

ORDER = ("cuda", "cpp", "numba", "numpy")
#: Backends that read a CoC map on the kernel grid as int16 steps (half the memory of float32).
GRID_STEP_BACKENDS = frozenset({"cpp"})


@functools.lru_cache(maxsize=None)
def _probe(name: str) -> tuple[Backend | None, str]:
    """Load a backend; returns ``(function, "")`` or ``(None, reason)``."""
    if name == "numpy":
        from .reference import render_reference

        def run_numpy(image, coc, aperture, gain, threads):
            return render_reference(image, coc, aperture, gain)

        return run_numpy, ""
    if name == "cpp":
        try:
            core = importlib.import_module("pybokeh._core")
        except ImportError as exc:
            return None, f"the compiled module pybokeh._core is missing ({exc})"

        def run_cpp(image, coc, aperture, gain, threads):
            luts, extents = aperture.kernel_tables()
            return core.render(image, coc, aperture.blades, luts, extents, gain, threads)

        return run_cpp, ""
    if name == "numba":
        try:
            from . import numba_backend
        except ImportError as exc:
            return None, f"Numba is not installed or failed to import ({exc})"
        return numba_backend.render_numba, ""
    if name == "cuda":
        try:
            from . import cuda_backend
        except ImportError as exc:
            return None, f"the CUDA backend is not built ({exc})"
        reason = cuda_backend.unavailable_reason()
        if reason:
            return None, reason
        return cuda_backend.render_cuda, ""
    raise ValueError(f"unknown backend {name!r}")


def backends() -> list[str]:
    """Names of the backends that can run here, fastest first."""
    return [name for name in ORDER if _probe(name)[0] is not None]


def get_backend(name: str) -> tuple[str, Backend]:
    """Resolve ``name`` ("auto" or one of :data:`ORDER`) to ``(name, function)``."""
    if text(name, "backend") == "auto":
        for candidate in ORDER:
            fn, _ = _probe(candidate)
            if fn is not None:
                if candidate == "numpy":
                    warnings.warn("pybokeh: neither the compiled module nor Numba is available; "
                                  "falling back to the slow NumPy reference renderer", RuntimeWarning,
                                  stacklevel=3)
                return candidate, fn
    if name not in ORDER:
        raise ValueError(f"backend must be 'auto' or one of {', '.join(map(repr, ORDER))}, got {name!r}")
    fn, reason = _probe(name)
    if fn is None:
        raise BackendUnavailableError(name, reason)
    return name, fn


#: Most CPU threads a render may ask for (the kernels never start more than
#: they have rows or bands of work); ``_core.MAX_THREADS`` checks the same.
MAX_THREADS = 1024


def check_threads(threads: int | None) -> int:
    """``threads`` validated (an int, NumPy ints too, in 1..MAX_THREADS), or :func:`default_threads` for None."""
    if threads is None:
        return default_threads()
    return integer(threads, "threads", 1, MAX_THREADS)


def default_threads() -> int:
    """CPU threads the CPU backends use by default: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
