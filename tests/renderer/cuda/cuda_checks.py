"""Shared by the CUDA backend tests: the kernels' argument tuple, parity assertions, the
skip marks for machines with and without a GPU, and scene tables and probes used by both
the emulated and the on-device tests."""
from __future__ import annotations

import numpy as np
import pytest

from pybokeh import Aperture
from pybokeh.highlights import highlight_gain_map
from pybokeh.renderer import cuda_backend

from gpu_scenes import tolerance


GPU_REASON = cuda_backend.unavailable_reason()
requires_gpu = pytest.mark.skipif(bool(GPU_REASON), reason=f"needs a CUDA device: {GPU_REASON}")
no_gpu_only = pytest.mark.skipif(not GPU_REASON, reason="checks behaviour without a GPU; a GPU is present")


def render_args(image, coc, aperture, boost=16.0):
    """Arguments of pybokeh._core.render before ``threads`` (also those of _cuda.render and _cuda_emu.render).

    The highlight gain map is pybokeh.render's for ``highlight_boost=boost``.
    """
    luts, extents = aperture.kernel_tables()
    return (image, coc, aperture.blades, luts, extents, highlight_gain_map(image, boost, coc))


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def assert_parity(out: np.ndarray, ref: np.ndarray, dtype) -> None:
    """The emulated CUDA renderer against cpp: within 1/255 everywhere, equal nearly everywhere."""
    assert out.dtype == ref.dtype and out.shape == ref.shape
    assert max_diff(out, ref) <= tolerance(dtype)
    # A systematic error would show in the mean.
    assert np.abs(out.astype(np.float64) - ref).mean() <= 0.01 * tolerance(dtype)


def assert_frame_parity(out: np.ndarray, ref: np.ndarray, dtype) -> None:
    """The GPU against cpp or the emulation: within 2/255 everywhere, at most 1 pixel in 10^4 beyond 1/255.

    Looser than :func:`assert_parity` (which the emulation meets): nvcc
    contracts multiply-adds into FMAs, so the GPU's float steps (span ends,
    splat totals, compositing) round differently from the CPU's in the last
    bit, which can tip a few pixels over a quantisation boundary.
    """
    d = np.abs(out.astype(np.float64) - ref.astype(np.float64)).max(axis=-1)
    tol = tolerance(dtype)
    assert d.max() <= 2 * tol, d.max()
    assert np.mean(d > tol) <= 1e-4, (np.mean(d > tol), d.max())
    assert d.mean() <= 0.01 * tol


RAMPS = [  # (height, width, CoC from, CoC to (px), dtype, blades): layers continue behind nearer ones
    (80, 96, -40.0, 40.0, np.uint8, 0),     # far and near sides, level-0 and coarse coverage splats
    (72, 64, 0.6, 60.0, np.uint8, 6),       # near side only, reflected aperture
    (90, 50, -70.0, -0.6, np.uint16, 5),    # far side only, up to level 3
    (64, 88, -12.0, 9.0, np.float32, 0),    # mostly level 0
    (40, 120, 2.0, 30.0, np.uint8, 9),
]


FINE_LIGHTS = [  # (height, width, max radius px, dtype, blades): point lights in coarse layers
    (96, 120, 10.0, np.uint8, 0),
    (96, 120, 25.0, np.uint16, 6),
    (110, 90, 40.0, np.float32, 0),
    (110, 130, 60.0, np.uint8, 5),
]


def lone_light_scene(crowd: int, crowd_gain: float, light_gain: float, radius: float = 40.0):
    """Black 130 x 400 frame at CoC ``radius``: a lone 1-px light at (65, 100) and a crowd of
    ``crowd`` x ``crowd`` clipped pixels far to the right, with explicit highlight gains."""
    h, w = 130, 400
    img = np.zeros((h, w, 3), np.float32)
    gain = np.zeros((h, w), np.float32)
    img[65, 100] = 1.0
    gain[65, 100] = light_gain
    y0, x0 = 65 - crowd // 2, 350 - crowd // 2
    img[y0:y0 + crowd, x0:x0 + crowd] = 1.0
    gain[y0:y0 + crowd, x0:x0 + crowd] = crowd_gain
    coc = np.full((h, w), radius, np.float32)
    luts, extents = Aperture().kernel_tables()
    return (img, coc, 0, luts, extents, gain)


def rim_width(out: np.ndarray, y: int = 65, cx: int = 100, radius: int = 40) -> int:
    """Pixels of row y across either rim of the disc around column cx that are neither
    background (< 5% of the disc's plateau) nor disc (> 95%): the wider side."""
    row = out[y, :, 1].astype(np.float64)
    plateau = row[cx - radius // 2:cx + radius // 2].mean()
    assert plateau > 0.2 and row[cx - radius // 2:cx + radius // 2].std() < 0.02 * plateau
    f = row / plateau
    mid = (f > 0.05) & (f < 0.95)
    left = int(mid[cx - 2 * radius:cx].sum())
    right = int(mid[cx:cx + 2 * radius].sum())
    return max(left, right)
