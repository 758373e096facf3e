"""The few array operations whose spelling differs between NumPy and torch.

Maths written against :func:`namespace` runs unchanged on NumPy arrays and on
torch tensors (CPU or GPU), so the host and the device paths share one
implementation (:mod:`pybokeh.highlights`).  Everything else (arithmetic,
indexing, ``cumsum(axis)``, ``maximum``) is spelled alike in both libraries.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np


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

    def arange(self, n, like=None):
        return self.xp.arange(n, device=None if like is None else like.device)

    def asarray(self, a, like=None):
        return self.xp.as_tensor(np.asarray(a), device=None if like is None else like.device)

    def where(self, cond, a, b):
        return self.xp.where(cond, a, b)

    @staticmethod
    def size(a) -> int:
        return int(a.numel())


def is_torch(a: Any) -> bool:
    """Whether ``a`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def namespace(a: Any) -> NumpyOps | TorchOps:
    """The operations for ``a``'s array library."""
    return TorchOps() if is_torch(a) else NumpyOps()
