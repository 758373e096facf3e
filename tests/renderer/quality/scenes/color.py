"""sRGB encoding of the photo and of every rendered image (8 bits, like a camera)."""
from __future__ import annotations

import numpy as np


def srgb8_to_linear(img: np.ndarray) -> np.ndarray:
    """uint8 sRGB -> float32 linear light in [0, 1] (exact IEC 61966-2-1 curve)."""
    x = img.astype(np.float64) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb8(lin: np.ndarray) -> np.ndarray:
    """Linear light (any float) -> clipped to [0, 1] -> sRGB -> rounded uint8."""
    x = np.clip(np.asarray(lin, dtype=np.float64), 0.0, 1.0)
    s = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)
    return np.clip(np.round(s * 255.0), 0, 255).astype(np.uint8)
