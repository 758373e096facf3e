"""Highlight boost: giving under-recorded light sources back the energy the photo lost.

A channel at the top of the range (255, 65535 or 1.0) recorded only "at least
this bright".  Out of focus, a real lens spreads the full energy of a light into
a bright disc of the aperture's shape; a blur of the clipped value gives a dim
smudge instead.  The renderer multiplies the linear colour of a clipped pixel
by ``1 + gain`` before the blur (all three channels alike, so a coloured light
keeps its hue).  How far over the clip a pixel really was is unknown; the gain
is an estimate from what the photo does show, and most clipped pixels are
*not* lights: a red jacket with its red channel clipped, an overexposed sky, a
rim-lit strand of hair next to the focus plane.  The model gives energy back
where a light source is likely and where the energy can actually spread:

``gain = G · q · [ L · P · √(1 − s) · R  +  a · n⁴ · (1 − P) · (1 − s)² ]``, at most ``π r² − 1``

* ``G`` is ``highlight_boost`` (default :data:`DEFAULT_HIGHLIGHT_BOOST`);
* ``q`` in [0, 1]: how clipped the pixel is, its largest channel ramped from
  98 % of the range to the top (JPEG rarely leaves a light exactly at 255);
* ``n`` in [0, 1]: the share of its three channels that clip (same ramp);
* ``L`` (light colour): lights are near-white on a sensor, saturated colours
  are surfaces — the ratio of the smallest to the largest linear channel,
  ramped from 0.1 (a saturated colour: no light) to 0.4 (a warm-white
  lamp: a light), or ``n²`` if larger (a light bright enough to clip in two
  or three channels);
* ``P`` (point-likeness): lights are small.  ``1 / (1 + A / 9)`` with ``A``
  the clipped pixels in the 7×7 window around the pixel, times ``(1 −
  F / 0.15)²`` with ``F`` the clipped fraction of the 17×17 window (the edge
  of a sky or a white wall is no point light);
* ``s`` in [0, 1]: the mean linear luminance of the unclipped pixels around
  it (radius 1 % of the image diagonal): a light in the dark gets the full
  boost, a clipped speck in a bright cloud almost none;
* ``R`` (spread): a light's energy can only spread as far as its blur: ``R``
  ramps from 0 at ``|CoC|`` 2 px to 1 at 6 px, so lights next to the focus
  plane (and specular hair) do not turn into sparks;
* the second term gives large clipped areas (an overexposed sky, a white
  wall) a moderate share ``a = 1/4`` of the boost, white ones only (``n⁴``):
  their true radiance is typically a few times the clip, which shows at their
  blurred edges;
* the cap ``π r² − 1`` (``r = |CoC|``): the boosted light of one pixel never
  makes its blur disc brighter than the clip level, so near the focus plane no
  output pixel outshines the photo around it.

The constants were chosen on the scene families of ``tests/renderer/quality/scenes`` (thin-lens
exact references of lights, saturated colours, clipped areas, hair, receding
surfaces, 8-bit depth) and checked on real photos (``bench/real_photos.py``);
the README shows the sweep.  The map is written once for NumPy arrays and torch
tensors (:mod:`pybokeh.arrays`): the GPU path computes it next to the image.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .arrays import is_torch, namespace
from .color import srgb_to_linear
from .inputs import KERNEL_DTYPES, dtype_name
from .lens import COC_STEPS_PER_PX
from .validate import in_range

#: Default ``highlight_boost`` of :func:`pybokeh.render` (see the module doc and the README's sweep).
DEFAULT_HIGHLIGHT_BOOST = 4.0
#: Largest ``highlight_boost``: beyond it the float32 sums of the kernels lose the precision of
#: the pixels next to a light.  The compiled kernels check the same bound (``_core.MAX_HIGHLIGHT_GAIN``).
MAX_HIGHLIGHT_BOOST = 1000.0
#: Window radius for the surroundings of a clipped pixel, as a fraction of the image diagonal.
WINDOW_FRACTION = 0.01
#: Rec. 709 luminance weights of linear RGB.
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)

#: Width of the clip ramp, as a fraction of the range: q goes from 0 at (1 − CLIP_RAMP)·top to 1 at top.
CLIP_RAMP = 0.02
#: Light colour: smallest/largest linear channel ratio of a surface colour (0) and of a light (1).
WHITENESS_RAMP = (0.1, 0.4)
#: Point-likeness: half-size of the blob window, and the clipped-pixel count at which P = 1/2.
POINT_RADIUS, POINT_PIXELS = 3, 9.0
#: ... half-size of the cluster window, and the clipped fraction at which P reaches 0.
CLUSTER_RADIUS, CLUSTER_FRACTION = 8, 0.15
#: Spread: |CoC| (px) where the light term starts and where it is complete.
SPREAD_RAMP = (2.0, 6.0)
#: Share of the boost given to large white clipped areas.
AREA_SHARE = 0.25
#: Exponents of the surroundings' darkness (1 − s) in the light and the area terms.
LIGHT_DARKNESS, AREA_DARKNESS = 0.5, 2.0


def check_highlight_boost(value) -> float:
    """``highlight_boost`` validated: a real number in [0, :data:`MAX_HIGHLIGHT_BOOST`]."""
    return in_range(value, "highlight_boost", 0.0, MAX_HIGHLIGHT_BOOST,
                    f"the kernels' float32 precision; {DEFAULT_HIGHLIGHT_BOOST:g} is the default")


def top_of_range(dtype: Any) -> float:
    """The clip level of an image dtype: 255, 65535, or 1.0 for floats (NumPy or torch dtypes)."""
    return KERNEL_DTYPES.get(dtype_name(dtype), 1.0)


def clipped_mask(image: np.ndarray) -> np.ndarray:
    """H×W bool: pixels with at least one channel at the top of the range."""
    top = top_of_range(image.dtype)
    return np.maximum(np.maximum(image[..., 0], image[..., 1]), image[..., 2]) >= top


def highlight_gain_map(image: Any, strength: float, coc: Any) -> Any | None:
    """Per-pixel highlight gain, or None when nothing is boosted.

    Parameters
    ----------
    image : numpy.ndarray or torch.Tensor
        H×W×3 sRGB, uint8, uint16 or float32 in [0, 1] (the kernel dtypes); a
        tensor may live on any device.
    strength : float
        ``highlight_boost`` ``G`` in [0, 1000] (see the module doc).
    coc : numpy.ndarray or torch.Tensor
        H×W signed circle of confusion of the same library and device: float px,
        or int16 steps of ``1 / COC_STEPS_PER_PX`` px (:func:`pybokeh.lens.grid_steps`).

    Returns
    -------
    numpy.ndarray or torch.Tensor or None
        H×W float32 gains in [0, G] (zero where nothing clips), of the image's
        library and device; None when ``strength`` is 0 or nothing clips.

    Notes
    -----
    In two steps, :func:`highlight_candidates` (the image alone) and
    :func:`highlight_gains` (with the CoC), so that :func:`pybokeh.render` can find
    the candidates while it computes the CoC map.
    """
    return highlight_gains(highlight_candidates(image, strength), coc)


class HighlightCandidates(NamedTuple):
    """The pixels that may be boosted and their gain terms before the blur is known
    (:func:`highlight_candidates`); every array holds one value per candidate."""

    ys: Any
    xs: Any
    shape: tuple[int, int]
    like: Any        # the image (the gain map's library and device)
    scale: Any       # q · G
    point_term: Any  # light · point · dark ** LIGHT_DARKNESS (times the spread of the blur)
    area_term: Any   # AREA_SHARE · n⁴ · (1 - point) · dark ** AREA_DARKNESS


def highlight_candidates(image: Any, strength: float) -> HighlightCandidates | None:
    """The first step of :func:`highlight_gain_map`: what the image alone decides (None when
    ``strength`` is 0 or nothing clips)."""
    if not strength > 0:
        return None
    ops = namespace(image)
    xp = ops.xp
    top = top_of_range(image.dtype)
    codes = image.to(xp.int32) if is_torch(image) and top == 65535 else image  # torch: few uint16 ops
    if top == 1.0:
        candidate, clipped = 1.0 - CLIP_RAMP, 1.0 - CLIP_RAMP / 2
    else:
        candidate, clipped = math.floor(top * (1.0 - CLIP_RAMP)), math.ceil(top * (1.0 - CLIP_RAMP / 2))
    ys, xs = _pixels_above(codes, candidate, ops)
    if ops.size(ys) == 0:
        return None
    h, w = codes.shape[:2]

    values = codes[ys, xs]  # N×3
    # The clipped pixels (all among the candidates), whose windowed counts tell points from areas.
    inside = xp.maximum(xp.maximum(values[:, 0], values[:, 1]), values[:, 2]) >= clipped
    unit = ops.cast(values, ops.float32) / top
    k = ops.clip((unit - (1.0 - CLIP_RAMP)) / CLIP_RAMP, 0.0, 1.0)
    q = xp.maximum(xp.maximum(k[:, 0], k[:, 1]), k[:, 2])
    n = (k[:, 0] + k[:, 1] + k[:, 2]) / 3.0
    lin = srgb_to_linear(unit)
    lo = xp.minimum(xp.minimum(lin[:, 0], lin[:, 1]), lin[:, 2])
    hi = xp.maximum(xp.maximum(lin[:, 0], lin[:, 1]), lin[:, 2])
    white = ops.clip((lo / ops.clip(hi, 1e-6, None) - WHITENESS_RAMP[0]) / (WHITENESS_RAMP[1] - WHITENESS_RAMP[0]),
                     0.0, 1.0)
    light = xp.maximum(white, n * n)

    counts = _window_counter(inside, ys, xs, (h, w), ops)
    blob = counts(ys, xs, POINT_RADIUS)
    cluster = counts(ys, xs, CLUSTER_RADIUS) / float((2 * CLUSTER_RADIUS + 1) ** 2)
    point = 1.0 / (1.0 + blob / POINT_PIXELS) * ops.clip(1.0 - cluster / CLUSTER_FRACTION, 0.0, 1.0) ** 2

    radius = max(2, int(round(WINDOW_FRACTION * math.hypot(h, w))))
    step, mean = surround_luminance(codes, top, radius)
    dark = 1.0 - ops.clip(ops.cast(mean[ys // step, xs // step], ops.float32), 0.0, 1.0)
    return HighlightCandidates(ys, xs, (h, w), image, q * float(strength), light * point * dark ** LIGHT_DARKNESS,
                               AREA_SHARE * n ** 4 * (1.0 - point) * dark ** AREA_DARKNESS)


def highlight_gains(candidates: HighlightCandidates | None, coc: Any) -> Any | None:
    """The second step of :func:`highlight_gain_map`: the gain map from the candidates and the
    CoC map (float px, or int16 grid steps), or None when there are no candidates."""
    if candidates is None:
        return None
    c = candidates
    ops = namespace(c.like)
    xp = ops.xp
    r = xp.abs(ops.cast(coc[c.ys, c.xs], ops.float32))
    if coc.dtype == (xp.int16 if is_torch(coc) else np.int16):
        r = r * (1.0 / COC_STEPS_PER_PX)  # exact: a power of two
    spread = ops.clip((r - SPREAD_RAMP[0]) / (SPREAD_RAMP[1] - SPREAD_RAMP[0]), 0.0, 1.0)
    g = c.scale * (c.point_term * spread + c.area_term)
    g = xp.minimum(g, ops.clip(math.pi * r * r - 1.0, 0.0, None))
    gain = ops.sparse_zeros(c.shape, ops.float32, like=c.like)  # a few thousand pixels of a 12 MP map
    gain[c.ys, c.xs] = ops.cast(g, ops.float32)
    return gain


#: The window counts come from the mask's points themselves while the candidates number at most
#: this fraction of the pixels (each query is 2·(2k+1) binary searches), else from an integral image.
SPARSE_COUNT_FRACTION = 1.0 / 192.0
#: :func:`_pixels_above` unpacks the bit words holding a hit while at most this fraction of them
#: do (a few lights), else takes NumPy's ``nonzero`` of the per-pixel maximum (blown-out areas).
SPARSE_WORD_FRACTION = 1.0 / 64.0


def _pixels_above(codes, threshold, ops):
    """``(ys, xs)`` in row-major order: the pixels of H×W×3 ``codes`` with a channel above ``threshold``.

    NumPy, few hits: one contiguous comparison of all the samples, packed into 64-bit words, and
    only the non-zero words unpacked (a third of the time of the per-pixel maximum and
    ``nonzero``); many hits: ``nonzero`` of that comparison's per-pixel "any".  Torch (and
    non-contiguous arrays): ``nonzero`` of the per-pixel maximum.
    """
    xp = ops.xp
    h, w = codes.shape[:2]
    if xp is np and codes.flags.c_contiguous and codes.size:
        over = codes.reshape(-1) > threshold
        bits = np.packbits(over)
        bits = np.concatenate([bits, np.zeros((-bits.size) % 8, np.uint8)])
        words = bits.view(np.uint64)
        if np.count_nonzero(words) <= SPARSE_WORD_FRACTION * words.size:
            hot = np.flatnonzero(words)
            rows, bit = np.nonzero(np.unpackbits(bits.reshape(-1, 8)[hot], axis=1))
            pixel = (hot[rows] * 64 + bit) // 3  # sorted: the samples are in pixel order
            pixel = pixel[np.r_[True, pixel[1:] != pixel[:-1]]] if pixel.size else pixel
            return pixel // w, pixel % w
        over = over.reshape(h, w, 3)
        return np.nonzero(over[..., 0] | over[..., 1] | over[..., 2])
    m = xp.maximum(xp.maximum(codes[..., 0], codes[..., 1]), codes[..., 2])
    return ops.nonzero(m > threshold)


def _window_counter(inside, ys, xs, shape: tuple[int, int], ops, sparse: bool | None = None):
    """``count(qy, qx, k)``: pixels of a mask in the (2k+1)² window around each (qy, qx), clipped to the image.

    The mask of the ``shape`` (H, W) image is the candidates ``ys, xs`` (row-major order, as
    ``nonzero`` gives them) where ``inside`` (bool, one per candidate) holds.  Few candidates:
    each window is counted by binary searches in the sorted keys ``y·(W+1) + x`` of the mask's
    pixels, row by row; many: through an integral image of the whole mask.  ``sparse`` forces one
    or the other (tests).  Both counts are exact.
    """
    h, w = shape
    if sparse is None:
        sparse = ops.size(ys) <= SPARSE_COUNT_FRACTION * h * w
    if sparse:
        keys = ops.cast(ys[inside], ops.int64) * (w + 1) + ops.cast(xs[inside], ops.int64)

        def count_sparse(qy, qx, k: int):
            qy, qx = ops.cast(qy, ops.int64), ops.cast(qx, ops.int64)
            x0, x1 = ops.clip(qx - k, 0, w), ops.clip(qx + k + 1, 0, w)
            total = ops.zeros(qy.shape, ops.int64, like=qy)
            for dy in range(-k, k + 1):  # rows outside the image hold no keys: their counts are 0
                row = (qy + dy) * (w + 1)
                total += ops.xp.searchsorted(keys, row + x1) - ops.xp.searchsorted(keys, row + x0)
            return ops.cast(total, ops.float32)

        return count_sparse
    mask = ops.zeros((h, w), ops.xp.int32, like=ys)
    mask[ys[inside], xs[inside]] = 1
    table = ops.zeros((h + 1, w + 1), ops.xp.int32, like=ys)  # counts < 2^31 (kMaxPixels)
    table[1:, 1:] = mask.cumsum(0, dtype=table.dtype).cumsum(1, dtype=table.dtype)

    def count(ys, xs, k: int):
        y0, y1 = ops.clip(ys - k, 0, h), ops.clip(ys + k + 1, 0, h)
        x0, x1 = ops.clip(xs - k, 0, w), ops.clip(xs + k + 1, 0, w)
        return ops.cast(table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0], ops.float32)

    return count


def surround_luminance(codes: Any, top: float, radius: int) -> tuple[int, Any]:
    """Mean linear luminance of the unclipped pixels within ``radius`` of each block.

    The image is sampled at the middle of every ``step × step`` block, ``step =
    radius // 4`` (the surroundings' brightness is a smooth statistic; the
    last, partial blocks are sampled at their last pixel), and the window sums
    come from an integral image of the samples, so the cost is small whatever
    the radius.  Returns ``(step, mean)``; ``mean[y // step, x // step]`` is
    pixel (y, x)'s value (1 where the window holds no unclipped sample).
    """
    ops = namespace(codes)
    step = max(1, radius // 4)
    rows = ops.asarray(sample_rows(codes.shape[0], step), like=codes)
    cols = ops.asarray(sample_rows(codes.shape[1], step), like=codes)
    sub = codes[rows][:, cols]
    valid = ops.xp.maximum(ops.xp.maximum(sub[..., 0], sub[..., 1]), sub[..., 2]) < top
    lum = ops.zeros(valid.shape, ops.float32, like=codes)
    if top != 1.0:  # integer codes: the exact table, much faster than pow() per pixel
        table = ops.asarray(srgb_to_linear(np.arange(int(top) + 1, dtype=np.float32) / np.float32(top)),
                            like=codes)
        for c in range(3):
            lum = lum + float(LUMA[c]) * table[ops.cast(sub[..., c], ops.int64)]
    else:
        for c in range(3):
            lum = lum + float(LUMA[c]) * srgb_to_linear(sub[..., c])
    lum = ops.where(valid, lum, 0.0)
    k = max(1, int(round(radius / step)))
    lum_box = _box_sum(ops.cast(lum, ops.float64), k, ops)
    cnt_box = _box_sum(ops.cast(valid, ops.float64), k, ops)
    return step, ops.where(cnt_box > 0, lum_box / ops.clip(cnt_box, 1e-12, None), 1.0)


def sample_rows(n: int, step: int) -> np.ndarray:
    """Index of the sample of each of the ceil(n / step) blocks of ``step`` along an axis of ``n``."""
    return np.minimum(np.arange(-(-n // step)) * step + step // 2, n - 1)


def _box_sum(a, k: int, ops):
    """Sum over a (2k+1)² window (clipped at the borders) through an integral image."""
    h, w = a.shape
    s = ops.zeros((h + 1, w + 1), a.dtype, like=a)
    s[1:, 1:] = a.cumsum(0).cumsum(1)
    y, x = ops.arange(h, like=a), ops.arange(w, like=a)
    y0, y1 = ops.clip(y - k, 0, h), ops.clip(y + k + 1, 0, h)
    x0, x1 = ops.clip(x - k, 0, w), ops.clip(x + k + 1, 0, w)
    return s[y1][:, x1] - s[y0][:, x1] - s[y1][:, x0] + s[y0][:, x0]
