"""Rendering images that already live on a GPU: torch CUDA tensors and CuPy arrays.

:func:`pybokeh.render` hands such images to :func:`render_device`, which keeps
the whole render on the image's device: the depth map is moved there (a no-op
for a tensor already on it), the CoC map (:mod:`.device_lens`) and the
highlight gain map (:mod:`pybokeh.highlights`, written for both) are computed there, the kernel
reads the image in place on the caller's current stream, and the result is a
new tensor / array on the same device.  Only a few scalars cross to the host
(depth range, focus median, whether anything is clipped, the kernel's layer
statistics).

CuPy arrays go through torch (zero-copy DLPack) when torch is installed;
without torch their CoC and gain maps are computed on the host from the depth
map and a host copy of the image (the render itself stays on the GPU).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

import numpy as np

from ..aperture import Aperture
from ..highlights import DEFAULT_HIGHLIGHT_BOOST, check_highlight_boost, highlight_gain_map
from ..inputs import check_image_shape
from ..lens import MAX_COC_RADIUS, coc_map
from .dispatch import BackendUnavailableError, check_threads

__all__ = ["is_device_array", "render_device"]

#: Kernel dtypes by name; other float dtypes are computed in float32.
_KERNEL_DTYPES = ("uint8", "uint16", "float32")


def _torch():
    return sys.modules.get("torch")


def _cupy():
    return sys.modules.get("cupy")


def is_device_array(x: Any) -> bool:
    """True for a torch tensor on a CUDA device or a CuPy array (never imports either)."""
    torch = _torch()
    if torch is not None and isinstance(x, torch.Tensor):
        return x.device.type == "cuda"
    cupy = _cupy()
    return cupy is not None and isinstance(x, cupy.ndarray)


#: Runs the kernel: (image, coc, out, aperture, gain map or None) with torch
#: tensors on one device.  Tests swap in the CPU emulation.
Kernel = Callable[[Any, Any, Any, Aperture, Any], None]


def _cuda_kernel(image, coc, out, aperture: Aperture, gain) -> None:
    """The CUDA kernel on torch tensors, queued on the device's current torch stream."""
    import torch

    from . import cuda_backend

    device = image.device.index if image.device.index is not None else torch.cuda.current_device()
    stream = torch.cuda.current_stream(device).cuda_stream
    gain_ptr = 0 if gain is None else gain.data_ptr()
    args = (image.data_ptr(), coc.data_ptr(), out.data_ptr(), image.shape[0], image.shape[1],
            str(image.dtype).replace("torch.", ""), aperture, gain_ptr, stream, device)
    try:
        cuda_backend.launch(*args)
    except cuda_backend.CudaOutOfMemoryError:
        # Memory cached by torch's allocator is invisible to cudaMalloc: give it back once.
        torch.cuda.empty_cache()
        cuda_backend.launch(*args)


def _emulated_kernel(image, coc, out, aperture: Aperture, gain) -> None:
    """The serial CPU emulation of the CUDA kernel on CPU tensors (for tests)."""
    from .. import _cuda_emu

    luts, extents = aperture.kernel_tables()
    result = _cuda_emu.render(image.numpy(), coc.numpy(), aperture.blades, luts, extents,
                              None if gain is None else gain.numpy(), float(MAX_COC_RADIUS), 0)
    out.copy_(_torch().from_numpy(result))


def render_device(
    image: Any,
    depth: Any,
    focus: float | Sequence[float],
    *,
    depth_kind: str = "disparity",
    max_blur: float | None = None,
    f_number: float | None = None,
    focal_length_mm: float = 50.0,
    sensor_width_mm: float = 36.0,
    blades: int = 0,
    rotation_deg: float = 0.0,
    highlight_boost: float = DEFAULT_HIGHLIGHT_BOOST,
    focus_range: float = 0.0,
    backend: str = "auto",
    threads: int | None = None,
    _kernel: Kernel | None = None,
):
    """:func:`pybokeh.render` for an image on a GPU; same arguments, result on the image's device.

    ``image`` is a torch CUDA tensor or a CuPy array, H×W×3 sRGB: uint8,
    uint16, or float in [0, 1] (float16/bfloat16/float64 are computed in
    float32 and returned in their dtype).  ``depth`` may be on the same GPU, on
    the CPU, a NumPy array or a PIL image.  ``backend`` must be ``"auto"`` or
    ``"cuda"``; ``threads`` is accepted and ignored.
    """
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string, got {type(backend).__name__}")
    if backend not in ("auto", "cuda"):
        raise ValueError(f"image is on a GPU, but backend={backend!r} runs on the CPU: use backend='cuda' "
                         f"(or 'auto'), or move the image to the host first")
    check_threads(threads)
    cupy = _cupy()
    if cupy is not None and isinstance(image, cupy.ndarray):
        return _render_cupy(image, depth, focus, depth_kind=depth_kind, max_blur=max_blur, f_number=f_number,
                            focal_length_mm=focal_length_mm, sensor_width_mm=sensor_width_mm, blades=blades,
                            rotation_deg=rotation_deg, highlight_boost=highlight_boost, focus_range=focus_range,
                            kernel=_kernel)
    lens_kw = dict(depth_kind=depth_kind, max_blur=max_blur, f_number=f_number, focal_length_mm=focal_length_mm,
                   sensor_width_mm=sensor_width_mm, focus_range=focus_range)
    return _render_torch(image, depth, focus, lens_kw, blades, rotation_deg, highlight_boost,
                         _kernel or _checked_cuda_kernel())


def _checked_cuda_kernel() -> Kernel:
    from . import cuda_backend

    reason = cuda_backend.unavailable_reason()
    if reason:
        raise BackendUnavailableError(f"backend 'cuda' is not available: {reason}")
    return _cuda_kernel


def _render_torch(image, depth, focus, lens_kw: dict, blades: int, rotation_deg: float, highlight_boost: float,
                  kernel: Kernel):
    import torch

    from .device_lens import coc_map_torch

    work, src_dtype = _image_tensor(image)
    aperture = Aperture(blades, rotation_deg)
    strength = check_highlight_boost(highlight_boost)
    height, width = work.shape[:2]
    coc = coc_map_torch(_depth_tensor(depth, work.device), focus, image_shape=(height, width), **lens_kw)
    gain = highlight_gain_map(work, strength, coc)
    out = torch.empty_like(work)
    try:
        kernel(work, coc, out, aperture, gain)
    except ValueError as exc:
        raise _input_error(exc, work, coc) from None
    return out if out.dtype == src_dtype else out.to(src_dtype)


def _image_tensor(image):
    """Validate an H×W×3 image tensor; returns (contiguous kernel-dtype tensor, original dtype)."""
    import torch

    if image.requires_grad:
        image = image.detach()
    check_image_shape(image.shape)
    h, w = image.shape[:2]
    if h > (1 << 28) or w > (1 << 28):
        raise ValueError(f"image is too large ({h}×{w})")
    src = image.dtype
    name = str(src).replace("torch.", "")
    if src.is_floating_point:
        work = image.to(torch.float32)
    elif name in _KERNEL_DTYPES:
        work = image
    else:
        raise TypeError(f"image dtype must be uint8, uint16 or float32 in [0, 1], got {src}")
    return work.contiguous(), src


def _depth_tensor(depth: Any, device):
    """The depth map as a tensor on ``device`` (PIL and NumPy maps are copied there)."""
    import torch

    from ..inputs import _pil_image

    if isinstance(depth, torch.Tensor):
        return depth.detach().to(device)
    cupy = _cupy()
    if cupy is not None and isinstance(depth, cupy.ndarray):
        return torch.from_dlpack(depth).to(device)
    if _pil_image(depth):
        depth = np.asarray(depth)
    if not isinstance(depth, np.ndarray):
        raise TypeError(f"depth must be a numpy array, PIL image, torch tensor or CuPy array, "
                        f"got {type(depth).__name__}")
    if depth.dtype == np.bool_ or depth.dtype.kind not in "uif":
        raise TypeError(f"depth dtype must be integer or floating point, got {depth.dtype}")
    if depth.dtype.kind == "u" and depth.dtype.itemsize > 1:
        depth = depth.astype(np.float32)  # torch has few ops for wide unsigned types
    return torch.from_numpy(np.ascontiguousarray(depth)).to(device)


def _input_error(exc: ValueError, image, coc) -> ValueError:
    """Turn the kernel's flags into :func:`pybokeh.render`'s messages (computes the offending range)."""
    import torch

    text = str(exc)
    if text.startswith("image"):
        finite = bool(torch.isfinite(image).all())
        if not finite:
            return ValueError("image contains NaN or infinite values")
        lo, hi = (float(v) for v in torch.aminmax(image))
        return ValueError(f"image: float images must lie in [0, 1] (sRGB), got range [{lo:g}, {hi:g}]")
    if text.startswith("coc"):
        return ValueError(f"the lens settings give a circle of confusion over {MAX_COC_RADIUS:g} px; "
                          f"check max_blur, f_number, focal_length_mm and the depth units")
    if text.startswith("highlight_gain"):
        return ValueError(f"highlight_boost is too large for the GPU renderer ({exc})")
    return exc


def _render_cupy(image, depth, focus, *, kernel: Kernel | None, blades: int, rotation_deg: float,
                 highlight_boost: float, **lens_kw):
    cupy = _cupy()
    torch = _torch()
    if torch is None:
        try:
            import torch  # noqa: F811
        except ImportError:
            torch = None
    if torch is not None and torch.cuda.is_available():
        # Zero-copy views; DLPack orders torch's stream after CuPy's work.
        t_image = torch.from_dlpack(image)
        t_depth = torch.from_dlpack(depth) if isinstance(depth, cupy.ndarray) else depth
        out = _render_torch(t_image, t_depth, focus, lens_kw, blades, rotation_deg, highlight_boost,
                            kernel or _checked_cuda_kernel())
        return cupy.from_dlpack(out)
    return _render_cupy_without_torch(image, depth, focus, lens_kw, blades, rotation_deg, highlight_boost)


def _render_cupy_without_torch(image, depth, focus, lens_kw: dict, blades: int, rotation_deg: float,
                               highlight_boost: float):
    """CuPy without torch: CoC from the depth map on the host, image and result on the GPU."""
    from . import cuda_backend

    cupy = _cupy()
    if cuda_backend.unavailable_reason():
        raise BackendUnavailableError(f"backend 'cuda' is not available: {cuda_backend.unavailable_reason()}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape H×W×3, got {tuple(image.shape)}")
    src = image.dtype
    if src.kind == "f":
        work = cupy.ascontiguousarray(image, dtype=cupy.float32)
    elif src in (np.uint8, np.uint16):
        work = cupy.ascontiguousarray(image)
    else:
        raise TypeError(f"image dtype must be uint8, uint16 or float32 in [0, 1], got {src}")
    host_depth = cupy.asnumpy(depth) if isinstance(depth, cupy.ndarray) else depth
    h, w = work.shape[:2]
    host_coc = coc_map(host_depth, focus, image_shape=(h, w), **lens_kw)
    coc = cupy.asarray(host_coc)
    out = cupy.empty_like(work)
    aperture = Aperture(blades, rotation_deg)
    host_gain = highlight_gain_map(cupy.asnumpy(work), check_highlight_boost(highlight_boost), host_coc)
    gain = None if host_gain is None else cupy.asarray(host_gain)
    stream = cupy.cuda.get_current_stream().ptr
    cuda_backend.launch(work.data.ptr, coc.data.ptr, out.data.ptr, h, w, str(work.dtype), aperture,
                        0 if gain is None else gain.data.ptr, stream, work.device.id)
    return out if out.dtype == src else out.astype(src)
