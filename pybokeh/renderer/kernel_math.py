"""Python transcription of the shared per-pixel maths in ``csrc/bokeh_math.h``.

Used by the NumPy reference renderer and the Numba backend; every function
mirrors its C++ namesake (same float32 constants), so a change there must be
made here too.  The functions are plain Python on scalars, valid both as
NumPy code and inside ``numba.njit``.
"""
from __future__ import annotations

import math

import numpy as np

from ..aperture import LUT_SIZE as APERTURE_LUT_SIZE  # one definition of the aperture table's size

IN_FOCUS_RADIUS = np.float32(0.5)
MAX_BINS_PER_SIDE = 40
MAX_GRID_RADIUS = np.float32(8.0)

#: Lower edge of |CoC| bin j: 0.5 * sqrt(2)^j, computed in double and rounded once.
LAYER_EDGES = np.array([0.5 * 2.0 ** (0.5 * j) for j in range(MAX_BINS_PER_SIDE + 2)], dtype=np.float32)


def radius_bin(abs_r, nbins, edges):
    """Bin of a radius ``abs_r >= 0.5``, clamped to ``[0, nbins - 1]``."""
    # clamped before floor(), which raises OverflowError on inf in Python (not in Numba)
    j = int(math.floor(min(2.0 * math.log2(abs_r * 2.0), MAX_BINS_PER_SIDE - 1.0)))
    if j < 0:
        j = 0
    while j > 0 and abs_r < edges[j]:
        j -= 1
    while j + 1 < MAX_BINS_PER_SIDE and abs_r >= edges[j + 1]:
        j += 1
    return j if j < nbins else nbins - 1


def layer_index(coc, nbins, edges):
    """Composite position of a pixel's layer, far (0) to near (2 * nbins)."""
    a = abs(coc)
    if not a >= 0.5:
        return nbins
    return side_layer(coc, radius_bin(a, nbins, edges), nbins)


def side_layer(coc, j, nbins):
    """Composite position of radius bin ``j`` on ``coc``'s side of the focus: far (``coc < 0``) below
    ``nbins``, near above."""
    return nbins - 1 - j if coc < 0.0 else nbins + 1 + j


def layer_bin(layer, nbins):
    """Radius bin of a non-focus layer."""
    return nbins - 1 - layer if layer < nbins else layer - nbins - 1


def layer_level(layer, nbins, edges):
    """Grid level (splats on a grid 2^level coarser) of a layer."""
    if layer == nbins:
        return 0
    r_hi = edges[layer_bin(layer, nbins) + 1]
    k = 0
    while r_hi > 8.0 * (1 << k) and k < 30:
        k += 1
    return k


#: Fixed-point unit of the |CoC| sums behind a layer's coverage radius (1/1024 px):
#: integer sums are exact, so every backend (and the GPU's atomics) get the same radius.
COC_UNITS = 1024.0


#: A layer's coverage of one radius counts in proportion to the layer's own
#: coverage up to this much (see ``composite_over`` in bokeh_math.h).
COVER_TRUST = 0.05


def coc_units(abs_coc):
    """``|CoC|`` (float32, >= 0) in fixed-point units, rounded: ``floor(|CoC| * 1024 + 0.5)`` (int64; beyond 2^20 px
    and NaN count as 2^20 px)."""
    a = np.asarray(abs_coc, np.float32)
    a = np.where(a <= np.float32(1048576.0), a, np.float32(1048576.0))
    return np.floor(a * np.float32(COC_UNITS) + np.float32(0.5)).astype(np.int64)


def coverage_radius(units_sum, count):
    """Radius (px, float32) of a layer's coverage splats: the mean |CoC| of its pixels, from the fixed-point sum."""
    return np.float32(float(units_sum) / (COC_UNITS * float(count)))


def highlight_gain(gain, abs_coc):
    """Boost factor of a pixel's linear colour: ``1 + gain * clamp(|CoC| - 0.5, 0, 1)``."""
    if not gain > 0.0:
        return 1.0
    return 1.0 + gain * min(max(abs_coc - 0.5, 0.0), 1.0)


def centroid_weight(r, g, b):
    """Weight of a pixel in the position of a coarse splat (brightness plus a floor)."""
    return r + g + b + 1e-3


#: Radius grid (steps per px or grid cell): ``kCocStepsPerPx`` (see pybokeh.lens.COC_STEPS_PER_PX).
COC_STEPS_PER_PX = 64.0


def on_radius_grid(r):
    """A coarse cell's mean radius (grid cells, float32) rounded to the radius grid, halves to even."""
    return np.float32(np.rint(np.float32(r) * np.float32(COC_STEPS_PER_PX)) * np.float32(1.0 / COC_STEPS_PER_PX))


LIGHT_CENTROID_SNAP = 0.25


def light_centroid_moves(x, y, lx, ly):
    """Whether a coarse cell's light splat leaves the plain centroid (see C++)."""
    return abs(lx - x) > LIGHT_CENTROID_SNAP or abs(ly - y) > LIGHT_CENTROID_SNAP


#: Crisp highlights (see the "crisp highlights" section of bokeh_math.h): in a
#: coarse layer, pixels whose max linear channel reaches the threshold keep a
#: full-resolution light splat.
FINE_LIGHT_MIN = 2.0
FINE_LIGHT_BUDGET = 2.0
FINE_LIGHT_BINS = 64


def fine_light_bin(m):
    """Histogram bin of a pixel's max channel ``m`` (float32): floor(log2(m)) for m >= 2, else 0.

    NaN and negative values give 0, +inf and values beyond the table the last bin.
    """
    if not m >= FINE_LIGHT_MIN:
        return 0
    if not m < 2.0 ** 62:
        return FINE_LIGHT_BINS - 1
    e = math.frexp(m)[1] - 1
    return e if e < FINE_LIGHT_BINS - 1 else FINE_LIGHT_BINS - 1


def fine_light_capacity(height, width, r_hi):
    """Most fine highlights a layer with largest radius ``r_hi`` (px) may have."""
    return int(FINE_LIGHT_BUDGET * float(height) * float(width) / (2.0 * float(r_hi) + 1.0))


def fine_light_threshold(counts, capacity):
    """Smallest bin ``j >= 1`` whose pixels (bins >= j) fit ``capacity``; FINE_LIGHT_BINS for none."""
    n = 0
    j = FINE_LIGHT_BINS
    while j > 1 and n + counts[j - 1] <= capacity:
        j -= 1
        n += counts[j]
    return j


def depth_position(coc):
    """Continuous composite position of a CoC (float32): ``±2 log2(2 |CoC|)``, + in front of the focus plane,
    0 in focus (the layer index relative to the focus layer, unrounded; see bokeh_math.h)."""
    a = abs(float(coc))
    if not a > 0.5:
        return 0.0
    p = 2.0 * math.log2(2.0 * a)
    return p if coc > 0.0 else -p


#: Farthest-content fill (see ``far_content`` in bokeh_math.h): a level's
#: answer is fully trusted once its cells' farthest-layer pixels weigh this much.
FAR_CONFIDENT = 0.25
#: Content counts as farther in full from this many depth positions behind the pixel.
FAR_DEPTH_RAMP = 2.0


def far_depth_weight(depth, cell_depth):
    """How much content at depth position ``cell_depth`` counts as farther than a pixel at ``depth``."""
    return min(max((depth - cell_depth) / FAR_DEPTH_RAMP, 0.0), 1.0)


def far_level_weight(max_cell, s):
    """Weight of the far-content pyramid level of cell size ``s``: 1 up to ``max_cell``, 0 from twice that."""
    return min(max(2.0 * max_cell / s - 1.0, 0.0), 1.0)


def aperture_span(blades, lut, v):
    """Horizontal extent ``(ok, xl, xr)`` of the unit aperture at height ``v`` (y down)."""
    if blades == 0:
        h = 1.0 - v * v
        if h <= 0.0:
            return False, 0.0, 0.0
        w = math.sqrt(h)
        return True, -w, w
    t = (v + 1.0) * (0.5 * APERTURE_LUT_SIZE)
    if not (t >= 0.0 and t <= APERTURE_LUT_SIZE):
        return False, 0.0, 0.0
    i = int(t)
    if i >= APERTURE_LUT_SIZE:
        i = APERTURE_LUT_SIZE - 1
    f = t - i
    xl = lut[i, 0] + f * (lut[i + 1, 0] - lut[i, 0])
    xr = lut[i, 1] + f * (lut[i + 1, 1] - lut[i, 1])
    return xr > xl, xl, xr


def splat_rows(cy, r, ext_lo, ext_hi):
    """First and last grid rows a splat can touch."""
    return int(math.floor(cy + r * ext_lo + 0.5)), int(math.floor(cy + r * ext_hi + 0.5))


def splat_row(blades, lut, ext_lo, ext_hi, cx, cy, r, row):
    """Span ``(ok, xa, xb, vy)`` of a splat in grid row ``row``: horizontal extent and vertical coverage."""
    a = max(cy + r * ext_lo, row - 0.5)
    b = min(cy + r * ext_hi, row + 0.5)
    if not b > a:
        return False, 0.0, 0.0, 0.0
    ok, xl, xr = aperture_span(blades, lut, (0.5 * (a + b) - cy) / r)
    if not ok:
        return False, 0.0, 0.0, 0.0
    return True, cx + r * xl, cx + r * xr, b - a


def span_markers(xa, xb, width):
    """Difference markers of the antialiased box ``[xa, xb]`` on a row of ``width`` cells.

    Returns ``(m, i0, w0, i1, w1, i2, w2, i3, w3)``: ``m`` markers (0, 2 or 4)
    of index ``i`` and weight ``w``; a running sum along the row gives each
    cell's covered length.
    """
    xa = max(xa, -0.5)
    xb = min(xb, width - 0.5)
    if not xb > xa:
        return 0, 0, 0.0, 0, 0.0, 0, 0.0, 0, 0.0
    ia = int(math.floor(xa + 0.5))
    ib = int(math.floor(xb + 0.5))
    if ia > width - 1:
        ia = width - 1
    if ib > width - 1:
        ib = width - 1
    if ia == ib:
        ln = xb - xa
        return 2, ia, ln, ia + 1, -ln, 0, 0.0, 0, 0.0
    fa = (ia + 0.5) - xa
    fb = xb - (ib - 0.5)
    return 4, ia, fa, ia + 1, 1.0 - fa, ib, fb - 1.0, ib + 1, -fb
