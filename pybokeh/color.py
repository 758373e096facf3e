"""sRGB transfer functions (IEC 61966-2-1), NumPy reference versions.

The compiled backends use the same formulas (``csrc/bokeh_math.h``) through
lookup tables; these are the plain definitions the tests compare them with.
"""
from __future__ import annotations

import numpy as np


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """Decode sRGB values in [0, 1] to linear light (float32, same shape)."""
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / np.float32(12.92),
                    ((v + np.float32(0.055)) / np.float32(1.055)) ** np.float32(2.4)).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Encode linear light in [0, 1] to sRGB (float32, same shape); clips to [0, 1] first."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, np.float32(12.92) * x,
                    np.float32(1.055) * x ** np.float32(1 / 2.4) - np.float32(0.055)).astype(np.float32)
