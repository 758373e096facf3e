"""Random test scenes for the renderer backends (shared by the CUDA tests and benchmarks)."""
from __future__ import annotations

import numpy as np


def random_image(rng: np.random.Generator, height: int, width: int, dtype) -> np.ndarray:
    """Random H×W×3 sRGB image of ``dtype`` with some clipped highlights."""
    dtype = np.dtype(dtype)
    unit = rng.random((height, width, 3), dtype=np.float32)
    unit[rng.random((height, width)) < 0.02] = 1.0  # highlights for the boost
    if dtype == np.uint8:
        return np.round(unit * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(unit * 65535).astype(np.uint16)
    return unit.astype(dtype)


def random_coc(rng: np.random.Generator, height: int, width: int, max_radius: float) -> np.ndarray:
    """A photo-like signed CoC map: a tilted ground plane, a sharp subject, a near blob, noise.

    Spans [-max_radius, max_radius] px, with large in-focus, far and near areas
    and sharp depth edges (where occlusion matters).
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.random(3).astype(np.float32) * 6
    depth = 1.0 - 2.0 * yy / max(height - 1, 1) + 0.2 * np.sin(xx / (5 + 20 * phase[0]) + phase[1])
    cy, cx, rad = height * (0.3 + 0.4 * phase[2] / 6), width * 0.5, 0.25 * min(height, width)
    depth[((xx - cx) ** 2 + (yy - cy) ** 2) < rad ** 2] = 0.0
    near = ((xx - 0.2 * width) ** 2 + (yy - 0.8 * height) ** 2) < (0.15 * min(height, width)) ** 2
    depth[near] = 1.0
    coc = max_radius * np.clip(depth, -1.0, 1.0)
    coc += rng.normal(0.0, 0.05 * max_radius, coc.shape).astype(np.float32)
    return np.clip(coc, -max_radius, max_radius).astype(np.float32)


def ramp_coc(rng: np.random.Generator, height: int, width: int, lo: float, hi: float) -> np.ndarray:
    """A continuous depth ramp (a floor or a wall at an angle) from CoC ``lo`` to ``hi`` px, slightly noisy.

    Every layer bin it crosses borders the next one along a long seam: the
    case the coverage of one radius exists for (a layer continues behind the nearer one).
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = 0.75 * yy / max(height - 1, 1) + 0.25 * xx / max(width - 1, 1)
    coc = lo + (hi - lo) * t + rng.normal(0.0, 0.01 * max(abs(lo), abs(hi)), t.shape)
    return coc.astype(np.float32)


def add_lights(rng: np.random.Generator, image: np.ndarray, count: int = 6) -> np.ndarray:
    """Darkens the image and puts clipped 3×3 lights in it (full highlight gain), in place."""
    top = np.iinfo(image.dtype).max if image.dtype.kind == "u" else 1.0
    image //= 8 if image.dtype.kind == "u" else 1
    if image.dtype.kind == "f":
        image *= 0.125
    h, w = image.shape[:2]
    for y, x in zip(rng.integers(1, max(h - 1, 2), count), rng.integers(1, max(w - 1, 2), count)):
        image[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = top
    return image


def tolerance(dtype) -> float:
    """Parity tolerance with the ``cpp`` backend, in code values: 1/255 of full scale."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 1.0
    if dtype == np.uint16:
        return 65535.0 / 255.0
    return 1.0 / 255.0
