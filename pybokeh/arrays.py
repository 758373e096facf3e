"""The few array operations whose spelling differs between NumPy and torch.

Maths written against :func:`namespace` runs unchanged on NumPy arrays and on
torch tensors (CPU or GPU), so the host and the device paths share one
implementation (:mod:`pybokeh.lens`, :mod:`pybokeh.highlights`,
:mod:`pybokeh.color`).  Everything else (arithmetic, indexing, comparisons,
``cumsum(axis)``, ``sum(axis=...)``, ``reshape``, ``min``/``max``, ``maximum``,
``abs``, ``isfinite``, ``isnan``) is spelled alike in both libraries and used
directly through ``ops.xp``.
"""
from __future__ import annotations

import mmap
import sys
from typing import Any

import numpy as np

#: Arrays of at least this many bytes come from :meth:`NumpyOps.sparse_zeros`'s own mapping.
SPARSE_ZEROS_MIN_BYTES = 1 << 20
#: Row block of :meth:`NumpyOps.subtract_clip` (its only temporary), in elements.
_BLOCK_ELEMENTS = 1 << 18


class NumpyOps:
    """NumPy spellings."""

    xp = np
    float32, float64, int64 = np.float32, np.float64, np.int64

    @staticmethod
    def nonzero(mask):
        return np.nonzero(mask)

    @staticmethod
    def clip(a, lo, hi):
        return np.clip(a, lo, hi)

    @staticmethod
    def cast(a, dtype):
        return a.astype(dtype, copy=False)

    def zeros(self, shape, dtype, like=None):
        return np.zeros(shape, dtype)

    @staticmethod
    def sparse_zeros(shape, dtype, like=None):
        """Zeros for a map that will be written at few pixels: memory is only committed for the
        4 KiB pages written to.

        NumPy asks for transparent huge pages on large arrays, so one write commits 2 MiB and a
        map with a few thousand scattered entries (a highlight gain) becomes fully resident; a
        private anonymous mapping of its own keeps the kernel's zero page behind unwritten
        pages, which reads do not commit either.
        """
        dtype = np.dtype(dtype)
        n = int(np.prod(shape)) * dtype.itemsize
        if n < SPARSE_ZEROS_MIN_BYTES or not hasattr(mmap, "MAP_ANONYMOUS"):
            return np.zeros(shape, dtype)
        buf = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        return np.frombuffer(buf, dtype).reshape(shape)  # the array keeps the mapping alive

    @staticmethod
    def subtract_clip(a, lo: float, hi: float):
        """``a -= clip(a, lo, hi)`` in place, in row blocks (no full-size temporary); returns ``a``."""
        flat = a.reshape(-1)
        for start in range(0, flat.size, _BLOCK_ELEMENTS):
            block = flat[start:start + _BLOCK_ELEMENTS]
            block -= np.clip(block, lo, hi)
        return a

    def arange(self, n, like=None):
        return np.arange(n)

    def asarray(self, a, like=None):
        """A NumPy array (``like`` names the device of the other namespaces)."""
        return np.asarray(a)

    @staticmethod
    def where(cond, a, b):
        return np.where(cond, a, b)

    @staticmethod
    def size(a) -> int:
        return int(a.size)

    @staticmethod
    def minmax(a) -> tuple[float, float]:
        return float(a.min()), float(a.max())

    @staticmethod
    def sort(a):
        return np.sort(a)

    @staticmethod
    def pad_end(a, rows: int, cols: int):
        """Zeros appended: ``rows`` at the bottom, ``cols`` on the right of a 2-D array."""
        return np.pad(a, ((0, rows), (0, cols)))

    @staticmethod
    def repeat2(a):
        """Each element of a 2-D array as a 2×2 block."""
        return np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)

    @staticmethod
    def resize_bilinear(a, shape: tuple[int, int]):
        """A float32 2-D map resampled to ``shape`` (H, W): bilinear, antialiased when shrinking (PIL)."""
        from PIL import Image

        img = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))  # mode F
        return np.asarray(img.resize((shape[1], shape[0]), Image.BILINEAR), dtype=np.float32)


class TorchOps:
    """torch spellings; new tensors go to the device of ``like``."""

    def __init__(self):
        import torch

        self.xp = torch
        self.float32, self.float64, self.int64 = torch.float32, torch.float64, torch.int64

    def nonzero(self, mask):
        return self.xp.nonzero(mask, as_tuple=True)

    def clip(self, a, lo, hi):
        return self.xp.clamp(a, lo, hi)

    @staticmethod
    def cast(a, dtype):
        return a.to(dtype)

    def zeros(self, shape, dtype, like=None):
        return self.xp.zeros(shape, dtype=dtype, device=None if like is None else like.device)

    sparse_zeros = zeros

    def subtract_clip(self, a, lo: float, hi: float):
        return a.sub_(self.xp.clamp(a, lo, hi))

    def arange(self, n, like=None):
        return self.xp.arange(n, device=None if like is None else like.device)

    def asarray(self, a, like=None):
        return self.xp.as_tensor(np.asarray(a), device=None if like is None else like.device)

    def where(self, cond, a, b):
        return self.xp.where(cond, a, b)

    @staticmethod
    def size(a) -> int:
        return int(a.numel())

    def minmax(self, a) -> tuple[float, float]:
        lo, hi = self.xp.aminmax(a)
        return float(lo), float(hi)

    def sort(self, a):
        return self.xp.sort(a).values

    def pad_end(self, a, rows: int, cols: int):
        return self.xp.nn.functional.pad(a[None, None], (0, cols, 0, rows))[0, 0]

    @staticmethod
    def repeat2(a):
        return a.repeat_interleave(2, dim=0).repeat_interleave(2, dim=1)

    def resize_bilinear(self, a, shape: tuple[int, int]):
        """PIL's filter in torch: bilinear with antialiasing (the same taps within float rounding)."""
        out = self.xp.nn.functional.interpolate(a[None, None], size=tuple(shape), mode="bilinear",
                                                align_corners=False, antialias=True)
        return out[0, 0].contiguous()


def is_torch(a: Any) -> bool:
    """Whether ``a`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def is_cupy(a: Any) -> bool:
    """Whether ``a`` is a CuPy array (without importing CuPy)."""
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(a, cupy.ndarray)


def namespace(a: Any) -> NumpyOps | TorchOps:
    """The operations for ``a``'s array library."""
    return TorchOps() if is_torch(a) else NumpyOps()
