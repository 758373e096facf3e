"""Highlight boost: giving clipped highlights back the energy the photo lost.

A channel at the top of the range (255, 65535 or 1.0) recorded only "at least
this bright".  Out of focus, a real lens spreads the full energy of such a
light into a bright disc of the aperture's shape; a blur of the clipped value
gives a dim grey smudge instead.  The renderer multiplies the linear colour of
every clipped out-of-focus pixel by ``1 + gain`` before the blur (all three
channels alike, keeping the highlight's hue).

How far over the clip level a highlight really was is unknown, but its
surroundings tell: a clipped spot in dark surroundings is a light source,
typically many times brighter than the clip level; a clipped patch inside a
bright cloud or wall is barely over it.  So the gain of a clipped pixel is

    gain = highlight_boost * (1 - s)²

where ``s`` in [0, 1] is the mean linear luminance (Rec. 709) of the unclipped
pixels within a window around it (radius 1 % of the image diagonal, at least
2 px; s = 1 when the window holds no unclipped pixel).
"""
from __future__ import annotations

import math

import numpy as np

from .color import srgb_to_linear
from .validate import in_range

#: Default ``highlight_boost`` of :func:`pybokeh.render`, chosen on the reference scenes
#: (README, "Quality against an exact reference").
DEFAULT_HIGHLIGHT_BOOST = 16.0
#: Largest ``highlight_boost``: a light boosted 1000× spreads over a disc of 1000 px at full
#: white already, and beyond it the float32 sums of the kernels lose the precision of the
#: pixels next to it.  The compiled kernels check the same bound (``_core.MAX_HIGHLIGHT_GAIN``).
MAX_HIGHLIGHT_BOOST = 1000.0
#: Window radius for the surroundings of a clipped pixel, as a fraction of the image diagonal.
WINDOW_FRACTION = 0.01
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def check_highlight_boost(value) -> float:
    """``highlight_boost`` validated: a real number in [0, :data:`MAX_HIGHLIGHT_BOOST`]."""
    return in_range(value, "highlight_boost", 0.0, MAX_HIGHLIGHT_BOOST,
                    "the kernels' float32 precision; 16 is the default")


def clipped_mask(image: np.ndarray) -> np.ndarray:
    """H×W bool: pixels with at least one channel at the top of the range."""
    top = np.iinfo(image.dtype).max if image.dtype.kind == "u" else 1.0
    return np.maximum(np.maximum(image[..., 0], image[..., 1]), image[..., 2]) >= top


def highlight_gain_map(image: np.ndarray, strength: float) -> np.ndarray | None:
    """Per-pixel gain for clipped pixels, or None when nothing is boosted.

    Parameters
    ----------
    image : numpy.ndarray
        H×W×3 sRGB, uint8, uint16 or float32 in [0, 1].
    strength : float
        ``highlight_boost`` (≥ 0): the gain of a clipped pixel in black
        surroundings.

    Returns
    -------
    numpy.ndarray or None
        H×W float32, zero except at clipped pixels.
    """
    if not strength > 0:
        return None
    clipped = clipped_mask(image)
    ys, xs = np.nonzero(clipped)
    if ys.size == 0:
        return None
    h, w = clipped.shape
    radius = max(2, int(round(WINDOW_FRACTION * math.hypot(h, w))))
    step, mean = _surround_luminance(image, radius)
    s = np.clip(mean[ys // step, xs // step], 0.0, 1.0)
    gain = np.zeros((h, w), np.float32)
    gain[ys, xs] = np.float32(strength) * (1.0 - s) ** 2
    return gain


def _surround_luminance(image: np.ndarray, radius: int) -> tuple[int, np.ndarray]:
    """Mean linear luminance of the unclipped pixels within ``radius`` of each block.

    The image is sampled at the middle of every ``step × step`` block, ``step =
    radius // 4`` (the surroundings' brightness is a smooth statistic; the
    last, partial blocks are sampled at their last pixel), and the window sums
    come from an integral image of the samples, so the cost is small whatever
    the radius.  Returns ``(step, mean)``; ``mean[y // step, x // step]`` is
    pixel (y, x)'s value.
    """
    step = max(1, radius // 4)
    sub = image[sample_rows(image.shape[0], step)][:, sample_rows(image.shape[1], step)]
    valid = ~clipped_mask(sub)
    lum = np.zeros(valid.shape, np.float32)
    if image.dtype.kind == "u":  # exact table: much faster than pow() per pixel
        top = np.iinfo(image.dtype).max
        table = srgb_to_linear(np.arange(top + 1, dtype=np.float32) / np.float32(top))
        for c in range(3):
            lum += _LUMA[c] * table[sub[..., c]]
    else:
        for c in range(3):
            lum += _LUMA[c] * srgb_to_linear(sub[..., c])
    lum[~valid] = 0.0
    k = max(1, int(round(radius / step)))
    lum_box = _box_sum(lum.astype(np.float64), k)
    cnt_box = _box_sum(valid.astype(np.float64), k)
    return step, np.where(cnt_box > 0, lum_box / np.maximum(cnt_box, 1e-12), 1.0)


def sample_rows(n: int, step: int) -> np.ndarray:
    """Index of the sample of each of the ceil(n / step) blocks of ``step`` along an axis of ``n``."""
    return np.minimum(np.arange(-(-n // step)) * step + step // 2, n - 1)


def _box_sum(a: np.ndarray, k: int) -> np.ndarray:
    """Sum over a (2k+1)² window (clipped at the borders) through an integral image."""
    h, w = a.shape
    s = np.zeros((h + 1, w + 1))
    s[1:, 1:] = a.cumsum(axis=0).cumsum(axis=1)
    y0 = np.clip(np.arange(h) - k, 0, h)
    y1 = np.clip(np.arange(h) + k + 1, 0, h)
    x0 = np.clip(np.arange(w) - k, 0, w)
    x1 = np.clip(np.arange(w) + k + 1, 0, w)
    return s[y1][:, x1] - s[y0][:, x1] - s[y1][:, x0] + s[y0][:, x0]
