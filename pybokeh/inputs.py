"""Conversion and validation of user inputs (images and depth maps).

Images arrive as NumPy arrays, PIL images or CPU torch tensors; the renderer
works on C-contiguous, native-endian NumPy arrays and hands the result back
in the caller's container, dtype and shape.  Depth maps become float32 NumPy
arrays, or torch tensors on the device of an image on a GPU.  Inputs are
never modified.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from .arrays import is_cupy, is_torch

#: The image dtypes the kernels take, by name, with the code of a channel at the top
#: of its range (the clip level); other float dtypes are computed in float32.
KERNEL_DTYPES = {"uint8": 255, "uint16": 65535, "float32": 1.0}


def dtype_name(dtype: Any) -> str:
    """The name of a NumPy, CuPy or torch dtype: ``"uint8"``, ``"float32"``, ``"bfloat16"``, ..."""
    text = str(dtype)
    return text[len("torch."):] if text.startswith("torch.") else np.dtype(dtype).name


def kernel_dtype(dtype: Any, name: str = "image") -> str:
    """The kernel dtype (a key of :data:`KERNEL_DTYPES`) an image of ``dtype`` is computed in.

    uint8, uint16 and float32 as they are; the other float dtypes in float32;
    anything else raises TypeError naming ``name``.
    """
    kind = dtype_name(dtype)
    if kind in KERNEL_DTYPES:
        return kind
    if kind in ("float16", "bfloat16", "float64"):
        return "float32"
    raise TypeError(f"{name} dtype must be uint8, uint16 or float32 in [0, 1], got {dtype}")


def is_pil_image(x: Any) -> bool:
    """Whether ``x`` is a PIL image (without importing PIL)."""
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(x, pil.Image)


def as_image(image: Any, name: str = "image") -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Validate a photo and return it as an H×W×3 kernel array plus a restorer.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        H×W×3 sRGB photo: uint8 (0–255), uint16 (0–65535) or float32/float64
        in [0, 1]. PIL images must be in mode ``"RGB"``; torch tensors must be
        on the CPU, channels last.

    Returns
    -------
    array : numpy.ndarray
        C-contiguous, native-endian H×W×3 array of dtype uint8, uint16 or float32
        (a copy where the input was not already in that form).
    restore : callable
        Turns a kernel result (same dtype as ``array``) back into the caller's
        type, dtype and shape.
    """
    if is_pil_image(image):
        if image.mode != "RGB":
            raise ValueError(
                f"{name}: PIL images must be in mode 'RGB', got {image.mode!r}; "
                f"use {name}.convert('RGB')")
        arr = np.asarray(image, dtype=np.uint8)
        pil = sys.modules["PIL.Image"]
        return _checked(arr, name), lambda out: pil.fromarray(out)  # H×W×3 uint8 -> mode RGB
    if is_torch(image):
        torch = sys.modules["torch"]
        if image.device.type != "cpu":
            raise ValueError(f"{name}: torch tensor on {image.device} needs backend='cuda'; "
                             f"this backend takes CPU tensors")
        if image.requires_grad:
            image = image.detach()
        src_dtype = image.dtype
        try:
            arr = image.numpy()  # shares memory; never written
        except TypeError as exc:
            raise TypeError(f"{name} dtype {src_dtype} is not supported; use uint8, uint16 or float32") from exc
        checked = _checked(arr, name)

        def restore_torch(out: np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(out))
            return t if t.dtype == src_dtype else t.to(src_dtype)

        return checked, restore_torch
    if isinstance(image, np.ndarray):
        src_dtype = image.dtype
        checked = _checked(image, name)
        if checked.dtype == src_dtype.newbyteorder("="):
            return checked, lambda out: out.astype(src_dtype, copy=False)
        return checked, lambda out: out.astype(src_dtype)
    raise TypeError(f"{name} must be a numpy array, PIL image or torch tensor, got {type(image).__name__}")


def check_image_shape(shape: tuple[int, ...], name: str = "image") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``shape`` is H×W×3 with at least 2 pixels."""
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or shape[2] != 3:
        hint = ""
        if len(shape) == 3 and shape[0] == 3:
            hint = " (channels first? move the channel axis last)"
        elif len(shape) == 3 and shape[2] == 4:
            hint = " (RGBA? drop the alpha channel)"
        raise ValueError(f"{name} must have shape H×W×3, got {shape}{hint}")
    h, w = shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"{name} is empty (shape {shape})")
    if h * w < 2:
        raise ValueError(f"{name} must have at least 2 pixels, got {h}×{w}")


def _checked(arr: np.ndarray, name: str) -> np.ndarray:
    check_image_shape(arr.shape, name)
    kind = kernel_dtype(arr.dtype, name)
    if kind == "float32":
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name}: float images must lie in [0, 1] (sRGB), got range [{lo:g}, {hi:g}]")
        return arr
    return np.ascontiguousarray(arr, dtype=kind)


def as_depth(depth: Any, name: str = "depth", like: Any = None, copy: bool = True) -> Any:
    """Validate a depth or disparity map and return it as a float32 H×W copy.

    Accepts NumPy arrays, PIL images (modes ``L``, ``I;16``, ``I``, ``F``),
    torch tensors (any device) and, with ``like``, CuPy arrays, of any real
    dtype.  Values are not interpreted here (see :func:`pybokeh.lens.coc_map`).

    Parameters
    ----------
    like : torch.Tensor, optional
        Return a contiguous tensor on ``like``'s device instead of a NumPy
        array (a map already on that device stays there).
    copy : bool
        False: a NumPy result may be ``depth`` itself when that is already a
        C-contiguous float32 array (for callers that only read it).
    """
    if is_torch(like) and (is_torch(depth) or is_cupy(depth)):
        torch = sys.modules["torch"]
        tensor = depth if is_torch(depth) else torch.from_dlpack(depth)
        _check_depth(tensor.dtype, tuple(tensor.shape), name)
        return tensor.detach().to(like.device).to(torch.float32).clone(memory_format=torch.contiguous_format)
    if is_pil_image(depth):
        if depth.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "F"):
            raise ValueError(f"{name}: PIL depth maps must be single-channel (mode L, I;16, I or F), "
                             f"got {depth.mode!r}")
        arr = np.asarray(depth)
    elif is_torch(depth):
        try:
            arr = depth.detach().cpu().numpy()
        except TypeError as exc:
            raise TypeError(f"{name} dtype {depth.dtype} is not supported") from exc
    elif isinstance(depth, np.ndarray):
        arr = depth
    else:
        raise TypeError(f"{name} must be a numpy array, PIL image or torch tensor, got {type(depth).__name__}")
    _check_depth(arr.dtype, arr.shape, name)
    arr = np.array(arr, dtype=np.float32, order="C", copy=True if copy or is_torch(like) else None)
    return sys.modules["torch"].from_numpy(arr).to(like.device) if is_torch(like) else arr


def _check_depth(dtype: Any, shape: tuple[int, ...], name: str) -> None:
    if not dtype_name(dtype).startswith(("uint", "int", "float", "bfloat")):
        raise TypeError(f"{name} dtype must be integer or floating point, got {dtype}")
    if len(shape) != 2:
        hint = " (squeeze the singleton axis)" if len(shape) == 3 and 1 in (shape[0], shape[-1]) else ""
        raise ValueError(f"{name} must have shape H×W, got {shape}{hint}")
    if 0 in shape:
        raise ValueError(f"{name} is empty (shape {shape})")
