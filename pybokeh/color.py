"""sRGB transfer functions (IEC 61966-2-1), the plain definitions.

The compiled backends use the same formulas (``csrc/bokeh_math.h``) through
lookup tables; these are the definitions the tests compare them with.
:func:`srgb_to_linear` also runs on torch tensors (:mod:`pybokeh.highlights`
computes its gain map next to an image on a GPU).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .arrays import is_torch, namespace


def srgb_to_linear(v: Any) -> Any:
    """Decode sRGB values in [0, 1] to linear light (float32, same shape; NumPy in, NumPy out, torch likewise)."""
    ops = namespace(v)
    v = ops.cast(v, ops.float32) if is_torch(v) else np.asarray(v, dtype=np.float32)
    return ops.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Encode linear light in [0, 1] to sRGB (float32, same shape); clips to [0, 1] first."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, np.float32(12.92) * x,
                    np.float32(1.055) * x ** np.float32(1 / 2.4) - np.float32(0.055)).astype(np.float32)
