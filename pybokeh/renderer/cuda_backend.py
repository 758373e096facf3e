"""The ``cuda`` backend: :mod:`pybokeh._cuda` (``csrc/render_cuda.cu``) from Python.

Importing this module never fails: a wheel built without CUDA, a missing
driver or a machine without a GPU only make :func:`unavailable_reason` say so,
and ``backend="cuda"`` raises :class:`~pybokeh.BackendUnavailableError` with
that reason.  Two ways in:

* :func:`render_cuda`, the backend for NumPy arrays (copied to the GPU and
  back), registered in :mod:`.dispatch`;
* :func:`launch`, for memory already on the GPU (torch tensors, CuPy arrays):
  used by :mod:`.device_inputs`, which keeps the whole render on the device.
"""
from __future__ import annotations

import functools
import importlib
from types import ModuleType

import numpy as np

from ..aperture import Aperture
from ..lens import MAX_COC_RADIUS
from .errors import BackendUnavailableError

__all__ = ["unavailable_reason", "require", "render_cuda", "launch", "CudaError", "CudaOutOfMemoryError"]


class _MissingCudaError(RuntimeError):
    """Stand-in for ``pybokeh._cuda.CudaError`` when the module is absent."""


@functools.lru_cache(maxsize=None)
def _load() -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module("pybokeh._cuda"), ""
    except (ImportError, OSError) as exc:
        return None, (f"pybokeh was installed without its CUDA module or it failed to load ({exc}); "
                      f"reinstall with nvcc on PATH (PYBOKEH_CUDA=ON makes a missing nvcc a build error)")


def module() -> ModuleType | None:
    """``pybokeh._cuda``, or None when it is not there."""
    return _load()[0]


#: Exceptions raised by the CUDA module (CUDA error name and message in the text).
CudaError = getattr(module(), "CudaError", _MissingCudaError)
CudaOutOfMemoryError = getattr(module(), "CudaOutOfMemoryError", _MissingCudaError)


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str:
    """Why the CUDA backend cannot run here, or ``""`` when it can.

    Covers: the module was not built or does not load, no CUDA driver, no GPU,
    or only GPUs older than compute capability 7.5.
    """
    mod, reason = _load()
    if mod is None:
        return reason
    count, message = mod.device_status()
    if count == 0:
        return f"no usable CUDA device ({message})"
    return ""


def render_cuda(image: np.ndarray, coc: np.ndarray, aperture: Aperture, gain: np.ndarray | None,
                threads: int) -> np.ndarray:
    """Backend entry for NumPy arrays (see :data:`pybokeh.renderer.dispatch.Backend`).

    ``image`` H×W×3 uint8/uint16/float32 sRGB, ``coc`` H×W float32 (px) and
    ``gain`` (the highlight gain map, H×W float32, or None: no boost; see
    :mod:`pybokeh.highlights`) are copied to the current CUDA device; the
    result comes back as a new array of the image's dtype.  ``threads`` is
    ignored.
    """
    del threads
    mod = require()
    luts, extents = aperture.kernel_tables()
    return mod.render(image, coc, aperture.blades, luts, extents, gain, float(MAX_COC_RADIUS))


def launch(image_ptr: int, coc_ptr: int, out_ptr: int, height: int, width: int, dtype: str, aperture: Aperture,
           gain_ptr: int, stream: int, device: int, budget_bytes: int = 0) -> None:
    """Render from device memory (all buffers on ``device``), queued on ``stream``.

    ``dtype`` is ``"uint8"``, ``"uint16"`` or ``"float32"`` (image and out);
    coc is H×W float32; ``gain_ptr`` points to the H×W float32 highlight gain
    map, or is 0 for no boost.  Returns after the stream has finished the
    render; raises ``ValueError`` for invalid pixels/CoC/gain and
    :data:`CudaError` for CUDA failures.
    """
    mod = require()
    luts, extents = aperture.kernel_tables()
    mod.render_device(image_ptr, coc_ptr, out_ptr, height, width, dtype, aperture.blades, luts, extents,
                      int(gain_ptr), float(MAX_COC_RADIUS), stream, device, budget_bytes)


def require() -> ModuleType:
    """``pybokeh._cuda``, or :class:`~pybokeh.BackendUnavailableError` saying why it cannot run here."""
    reason = unavailable_reason()
    if reason:
        raise BackendUnavailableError("cuda", reason)
    return module()
