"""Images that already live on a GPU: torch CUDA tensors and CuPy arrays.

:func:`pybokeh.render` takes such an image through the same steps as a NumPy
array: :func:`device_image` stands in for :func:`pybokeh.inputs.as_image` and
hands back the image as a tensor on its device with the ``cuda`` kernel to run
on it, so that the depth map (moved there by :func:`pybokeh.inputs.as_depth`),
the CoC map (:mod:`pybokeh.lens`) and the highlight gain map
(:mod:`pybokeh.highlights`) are computed on the device by the same code as on
the host, and the kernel reads the image in place on the caller's current
stream.  Only a few scalars cross to the host (depth and CoC ranges, focus
median, whether anything is clipped or invalid, the kernel's statistics).

CuPy arrays go through torch (zero-copy DLPack) when torch sees the GPU;
without torch the image is copied to the host and rendered by the ``cuda``
backend for NumPy arrays, and the result copied back.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

from ..aperture import Aperture
from ..arrays import is_cupy
from ..inputs import as_image, check_image_shape, dtype_name, kernel_dtype
from ..validate import text

__all__ = ["is_device_array", "device_image", "render_tensors", "cuda_kernel"]


def is_device_array(x: Any) -> bool:
    """True for a torch tensor on a CUDA device or a CuPy array (never imports either)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.device.type == "cuda"
    return is_cupy(x)


def device_image(image: Any, backend: str) -> tuple[Any, Callable[[Any], Any], Callable]:
    """The GPU counterpart of :func:`pybokeh.inputs.as_image`, with the kernel to run.

    Parameters
    ----------
    image : torch.Tensor or cupy.ndarray
        H×W×3 sRGB on a GPU: uint8, uint16, or float in [0, 1]
        (float16/bfloat16/float64 are computed in float32).
    backend : str
        ``"auto"`` or ``"cuda"`` (a CPU backend raises ValueError).

    Returns
    -------
    array : torch.Tensor or numpy.ndarray
        The image as a contiguous kernel-dtype tensor on its device (a NumPy
        copy for CuPy without torch).
    restore : callable
        Turns the kernel's result into the caller's type, device and dtype.
    kernel : callable
        A backend (see :data:`pybokeh.renderer.dispatch.Backend`) for ``array``.
    """
    if text(backend, "backend") not in ("auto", "cuda"):
        raise ValueError(f"image is on a GPU, but backend={backend!r} runs on the CPU: use backend='cuda' "
                         f"(or 'auto'), or move the image to the host first")
    if not is_cupy(image):
        work, restore = _image_tensor(image)
        return work, restore, render_tensors
    cupy, torch = sys.modules["cupy"], _torch_with_cuda()
    if torch is None:
        from .cuda_backend import render_cuda

        array, restore = as_image(cupy.asnumpy(image))
        return array, lambda out: cupy.asarray(restore(out)), render_cuda
    # Zero-copy views; DLPack orders torch's stream after CuPy's work.
    work, restore = _image_tensor(torch.from_dlpack(image))
    return work, lambda out: cupy.from_dlpack(restore(out)), render_tensors


def render_tensors(image, coc, aperture: Aperture, gain, threads: int):
    """Backend for torch tensors on one device: the result is a new tensor there (``threads`` unused)."""
    out = sys.modules["torch"].empty_like(image)
    try:
        cuda_kernel(image, coc, out, aperture, gain)
    except ValueError as exc:
        raise _input_error(exc, image) from None
    return out


def cuda_kernel(image, coc, out, aperture: Aperture, gain) -> None:
    """The CUDA kernel on torch tensors, queued on the device's current torch stream.

    ``image``/``out`` H×W×3 of a kernel dtype, ``coc`` H×W float32, ``gain``
    H×W float32 or None, all on one CUDA device.  Returns when the render is done.
    """
    from . import cuda_backend  # loads the CUDA module on first use only

    torch = sys.modules["torch"]
    device = image.device.index if image.device.index is not None else torch.cuda.current_device()
    stream = torch.cuda.current_stream(device).cuda_stream
    args = (image.data_ptr(), coc.data_ptr(), out.data_ptr(), image.shape[0], image.shape[1],
            dtype_name(image.dtype), aperture, 0 if gain is None else gain.data_ptr(), stream, device)
    try:
        cuda_backend.launch(*args)
    except cuda_backend.CudaOutOfMemoryError:
        # Memory cached by torch's allocator is invisible to cudaMalloc: give it back once.
        torch.cuda.empty_cache()
        cuda_backend.launch(*args)


def _image_tensor(image):
    """Validate an H×W×3 image tensor; returns (contiguous kernel-dtype tensor, restore)."""
    torch = sys.modules["torch"]
    image = image.detach()
    check_image_shape(image.shape)
    h, w = image.shape[:2]
    if h > (1 << 28) or w > (1 << 28):
        raise ValueError(f"image is too large ({h}×{w})")
    src = image.dtype
    work = image.to(getattr(torch, kernel_dtype(src))).contiguous()
    return work, lambda out: out if out.dtype == src else out.to(src)


def _input_error(exc: ValueError, image) -> ValueError:
    """Turn the kernel's flags into :func:`pybokeh.render`'s messages (computes the offending range)."""
    torch = sys.modules["torch"]
    text = str(exc)
    if text.startswith("image"):
        if not bool(torch.isfinite(image).all()):
            return ValueError("image contains NaN or infinite values")
        lo, hi = (float(v) for v in torch.aminmax(image))
        return ValueError(f"image: float images must lie in [0, 1] (sRGB), got range [{lo:g}, {hi:g}]")
    if text.startswith("highlight_gain"):
        return ValueError(f"highlight_boost is too large for the GPU renderer ({exc})")
    return exc


def _torch_with_cuda():
    """torch, when it is installed and sees a CUDA device; else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None
