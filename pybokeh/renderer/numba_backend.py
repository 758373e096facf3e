"""Numba backend: the layered scatter renderer for machines without the compiled module.

A transcription of ``csrc/render_cpu.cpp`` (same bands, grids, splats and
compositing; see that file for the algorithm).  Like the C++, it keeps no
full-size float copies: a pixel's linear colour is decoded where it is read
(:func:`_colour`), level-0 pixels and whole coarse cells are splatted from a
per-layer table of precomputed splats (:class:`Radii`), and the output is
encoded in place.  Compiled on first use; compiled code is cached on disk when
the package or the user cache directory is writable and silently recompiled
otherwise.
"""
from __future__ import annotations

import contextlib
import math
import threading
import types
from typing import NamedTuple

import numba
import numpy as np
from numba import prange

from ..aperture import Aperture
from . import kernel_math as km

BAND_ROWS = 32
SPAN_MAX = 64     # longest run of neighbouring splats on one stamp written at once (_stamp_span)
ENCODE_LUT_SIZE = 4096
DECODE_LUT_SIZE = 4096


def _jit(fn=None, *, parallel=False, inline=False):
    """``numba.njit`` with on-disk caching where a cache directory is writable.

    ``inline``: inlined into its callers by Numba.  For the small helpers called
    per pixel or per splat row: a call of a compiled function that takes arrays
    is not inlined by LLVM and increments and decrements every array's reference
    count, which made reading one pixel's colour (``_colour``) 7x slower.
    """
    options = dict(parallel=parallel, error_model="numpy", inline="always" if inline else "never")

    def wrap(f):
        try:
            return numba.njit(cache=True, **options)(f)
        except RuntimeError:  # no writable cache locator: compile per process
            return numba.njit(cache=False, **options)(f)

    return wrap(fn) if fn is not None else wrap


def _jit_kernel_math():
    """Jit the shared scalar maths of :mod:`kernel_math`.

    The functions call each other by global name, so each is rebuilt over a
    namespace where those names are the jitted versions (Numba resolves
    globals when it compiles, on first call).
    """
    namespace = dict(vars(km))
    names = ("radius_bin", "side_layer", "layer_index", "layer_bin", "layer_level", "highlight_gain", "centroid_weight",
             "on_radius_grid", "light_centroid_moves", "aperture_span", "splat_rows", "splat_row", "span_markers",
             "fine_light_bin", "fine_light_capacity", "fine_light_threshold", "far_level_weight", "depth_position",
             "far_depth_weight")
    for name in names:
        fn = getattr(km, name)
        namespace[name] = _jit(types.FunctionType(fn.__code__, namespace, name, fn.__defaults__))
    return [namespace[name] for name in names]


(radius_bin, side_layer, layer_index, layer_bin, layer_level, highlight_gain, centroid_weight, on_radius_grid,
 light_centroid_moves, aperture_span, splat_rows, splat_row, span_markers, fine_light_bin, fine_light_capacity,
 fine_light_threshold, far_level_weight, depth_position, far_depth_weight) = _jit_kernel_math()


@_jit(inline=True)
def _lut_lerp(lut, n, t):
    """``lut_lerp`` of bokeh_math.h, in float32 as there: a function sampled at n + 1 points on [0, 1] at t, clamped."""
    t = min(max(np.float32(t), np.float32(0.0)), np.float32(1.0)) * np.float32(n)
    i = int(t)
    if i >= n:
        return lut[n]
    f = t - np.float32(i)
    return lut[i] + f * (lut[i + 1] - lut[i])


@_jit(inline=True)
def _decode(lut, v):
    """sRGB code value ``v`` to linear light: the exact table of an integer dtype (256 or 65536 entries), or the
    float table (DECODE_LUT_SIZE + 1 samples) interpolated in float32 (``Decoder`` in render_cpu.cpp)."""
    if lut.shape[0] != DECODE_LUT_SIZE + 1:
        return lut[int(v)]
    return _lut_lerp(lut, DECODE_LUT_SIZE, v)


@_jit(inline=True)
def _colour(image, lut, gain, coc, y, x):
    """Linear colour of pixel (y, x), highlight boost applied (``Renderer::colour`` in render_cpu.cpp): decoded
    where it is read, so no H×W×3 float copy exists.  ``gain``: H×W, or 0×0 for no boost."""
    g = highlight_gain(gain[y, x], abs(coc[y, x])) if gain.shape[0] else 1.0
    return (np.float32(_decode(lut, image[y, x, 0]) * g), np.float32(_decode(lut, image[y, x, 1]) * g),
            np.float32(_decode(lut, image[y, x, 2]) * g))


@_jit
def _coc_units(a):
    """``coc_units`` of bokeh_math.h: |CoC| (float32) in 1/1024 px, rounded; 2^20 px and beyond (NaN) capped."""
    if not a <= np.float32(1048576.0):
        a = np.float32(1048576.0)
    return np.int64(a * np.float32(km.COC_UNITS) + np.float32(0.5))


@_jit(parallel=True)
def _prepare(coc, nbins, edges, bins, layer_of, counts, units):
    """Layer of each pixel; bucket sizes and |CoC| sums per (layer, row).  A radius on the kernels' grid (what
    ``render`` hands over) takes its bin from ``bins`` (``_radius_bins``), any other (NaN included) from
    ``layer_index``."""
    height, width = coc.shape
    nsteps = bins.shape[0]
    steps = np.float32(km.COC_STEPS_PER_PX)
    for y in prange(height):
        for x in range(width):
            c = coc[y, x]
            a = abs(c)
            k = a * steps
            if k >= 0.0 and k < nsteps and np.float32(int(k)) == k:
                j = np.int64(bins[int(k)])
                layer = nbins if j < 0 else side_layer(c, j, nbins)
            else:
                layer = layer_index(c, nbins, edges)
            layer_of[y, x] = layer
            counts[layer, y] += 1
            units[layer, y] += _coc_units(a)


@_jit
def _radius_bins(nbins, edges, nsteps):
    """Radius bin of |CoC| = k / COC_STEPS_PER_PX px for k < nsteps, -1 below 0.5 px (in focus): a lookup instead
    of ``radius_bin``'s logarithm (``Renderer::run``'s bin_of_step)."""
    bins = np.empty(nsteps, np.int8)
    for k in range(nsteps):
        r = np.float32(k) / np.float32(km.COC_STEPS_PER_PX)
        bins[k] = radius_bin(r, nbins, edges) if r >= 0.5 else -1
    return bins


@_jit(parallel=True)
def _fill_buckets(layer_of, offsets, xs):
    height, width = layer_of.shape
    nlayers = offsets.shape[0]
    for y in prange(height):
        cursor = np.empty(nlayers, np.int64)
        for layer in range(nlayers):
            cursor[layer] = offsets[layer, y]
        for x in range(width):
            layer = layer_of[y, x]
            xs[cursor[layer]] = x
            cursor[layer] += 1


@_jit(inline=True)
def _is_fine(c0, c1, c2, fine_bin):
    """Whether a pixel of colour (c0, c1, c2) is a fine highlight of a layer whose threshold bin is ``fine_bin``
    (FINE_LIGHT_BINS: none; unboosted colour is at most 1, bin 0, never fine)."""
    return fine_bin < km.FINE_LIGHT_BINS and fine_light_bin(max(c0, c1, c2)) >= fine_bin


@_jit
def _aggregate_row(layer, gy, s, image, lut, gain, coc, fine_bin, offsets, xs, acc):
    """Sum the layer's pixels of grid row ``gy`` per cell into ``acc`` (10 values per cell; all zero on entry).

    Fine highlights count with no light: theirs is splatted on the image grid.
    """
    height, width = coc.shape
    y0, y1 = gy * s, min(height, gy * s + s)
    inv_s = 1.0 / s
    for y in range(y0, y1):
        for k in range(offsets[layer, y], offsets[layer, y + 1]):
            x = np.int64(xs[k])
            g = x // s
            c0, c1, c2 = _colour(image, lut, gain, coc, y, x)
            if _is_fine(c0, c1, c2, fine_bin):
                c0, c1, c2 = np.float32(0.0), np.float32(0.0), np.float32(0.0)
            acc[g, 0] += c0
            acc[g, 1] += c1
            acc[g, 2] += c2
            acc[g, 3] += 1.0
            acc[g, 4] += abs(coc[y, x])
            u = np.float32((x + 0.5) * inv_s - 0.5)
            v = np.float32((y + 0.5) * inv_s - 0.5)
            wgt = centroid_weight(c0, c1, c2)
            acc[g, 5] += u
            acc[g, 6] += v
            acc[g, 7] += wgt * u
            acc[g, 8] += wgt * v
            acc[g, 9] += wgt


@_jit(parallel=True)
def _fine_lights(coarse_layers, r_his, image, lut, gain, coc, offsets, xs, fine_bin, fine_counts):
    """The fine-highlight threshold of each coarse layer (``fine_bin``, see ``fine_light_threshold`` in C++) and
    how many each (layer, row) has.  Only boosted pixels (gain > 0) can pass it."""
    height, width = coc.shape
    for i in prange(coarse_layers.shape[0]):
        _fine_lights_item(i, coarse_layers, r_his, image, lut, gain, coc, offsets, xs, fine_bin, fine_counts)


@_jit
def _fine_lights_item(i, coarse_layers, r_his, image, lut, gain, coc, offsets, xs, fine_bin, fine_counts):
    """One item of ``_fine_lights``.  (A parallel loop's body calls only functions Numba does not inline: helpers
    inlined into it made bounds-checked builds, NUMBA_BOUNDSCHECK=1, report out-of-bounds indices.)"""
    height, width = coc.shape
    layer = coarse_layers[i]
    hist = np.zeros(km.FINE_LIGHT_BINS, np.int64)
    for y in range(height):
        for k in range(offsets[layer, y], offsets[layer, y + 1]):
            x = np.int64(xs[k])
            if not gain[y, x] > 0.0:
                hist[0] += 1
                continue
            c0, c1, c2 = _colour(image, lut, gain, coc, y, x)
            hist[fine_light_bin(max(c0, c1, c2))] += 1
    j = fine_light_threshold(hist, fine_light_capacity(height, width, r_his[layer]))
    fine_bin[layer] = j
    if j >= km.FINE_LIGHT_BINS:
        return
    for y in range(height):
        for k in range(offsets[layer, y], offsets[layer, y + 1]):
            x = np.int64(xs[k])
            if gain[y, x] > 0.0:
                c0, c1, c2 = _colour(image, lut, gain, coc, y, x)
                if _is_fine(c0, c1, c2, j):
                    fine_counts[layer, y] += 1


@_jit(parallel=True)
def _fill_fine(coarse_layers, sides, image, lut, gain, coc, offsets, xs, fine_bin, blades, luts, extents,
               fine_start, fine_x, fine_total):
    """Column and splat total (at an integer centre, of its own radius) of every fine highlight, grouped by
    (layer, row) from ``fine_start``."""
    height, width = coc.shape
    for i in prange(coarse_layers.shape[0]):
        _fill_fine_item(i, coarse_layers, sides, image, lut, gain, coc, offsets, xs, fine_bin, blades, luts, extents,
                        fine_start, fine_x, fine_total)


@_jit
def _fill_fine_item(i, coarse_layers, sides, image, lut, gain, coc, offsets, xs, fine_bin, blades, luts, extents,
                    fine_start, fine_x, fine_total):
    """One item of ``_fill_fine``."""
    height, width = coc.shape
    layer = coarse_layers[i]
    j = fine_bin[layer]
    if j >= km.FINE_LIGHT_BINS:
        return
    side = sides[layer]
    for y in range(height):
        q = fine_start[layer, y]
        for k in range(offsets[layer, y], offsets[layer, y + 1]):
            x = np.int64(xs[k])
            if gain[y, x] > 0.0:
                c0, c1, c2 = _colour(image, lut, gain, coc, y, x)
                if _is_fine(c0, c1, c2, j):
                    fine_x[q] = x
                    fine_total[q] = _splat_total(0.0, 0.0, abs(coc[y, x]), blades, luts[side], extents[side, 0],
                                                 extents[side, 1])
                    q += 1


@_jit(parallel=True)
def _count_coarse(coarse_layers, levels, offsets, xs, height, width, grid_counts):
    """Occupied cells of each grid row of each coarse layer (sizes the splat table)."""
    for i in prange(coarse_layers.shape[0]):
        layer = coarse_layers[i]
        s = 1 << levels[layer]
        gh, gw = (height + s - 1) // s, (width + s - 1) // s
        seen = np.full(gw, -1, np.int64)   # last grid row that marked the cell
        for gy in range(gh):
            n = 0
            for y in range(gy * s, min(height, gy * s + s)):
                for k in range(offsets[layer, y], offsets[layer, y + 1]):
                    gx = np.int64(xs[k]) // s
                    if seen[gx] != gy:
                        seen[gx] = gy
                        n += 1
            grid_counts[layer, gy] = n


@_jit(parallel=True)
def _build_coarse(coarse_layers, levels, image, lut, gain, coc, fine_bin, offsets, xs, grid_start, splats):
    height, width = coc.shape
    for i in prange(coarse_layers.shape[0]):
        _build_coarse_item(i, coarse_layers, levels, image, lut, gain, coc, fine_bin, offsets, xs, grid_start, splats)


@_jit
def _build_coarse_item(i, coarse_layers, levels, image, lut, gain, coc, fine_bin, offsets, xs, grid_start, splats):
    """One item of ``_build_coarse``."""
    height, width = coc.shape
    layer = coarse_layers[i]
    s = 1 << levels[layer]
    gh, gw = (height + s - 1) // s, (width + s - 1) // s
    acc = np.zeros((gw, 10))
    for gy in range(gh):
        if _rows_empty(offsets, layer, layer, gy * s, min(height, gy * s + s)):
            continue
        _aggregate_row(layer, gy, s, image, lut, gain, coc, fine_bin[layer], offsets, xs, acc)
        k = grid_start[layer, gy]
        for gx in range(gw):
            cnt = acc[gx, 3]
            if cnt > 0:
                cell = min(s, width - gx * s) * (min(height, gy * s + s) - gy * s)
                splats[k, 0] = acc[gx, 5] / cnt
                splats[k, 1] = acc[gx, 6] / cnt
                splats[k, 2] = on_radius_grid(np.float32(acc[gx, 4] / cnt) * np.float32(1.0 / s))
                splats[k, 3] = cnt / cell
                splats[k, 4] = acc[gx, 0] / cnt
                splats[k, 5] = acc[gx, 1] / cnt
                splats[k, 6] = acc[gx, 2] / cnt
                splats[k, 7] = acc[gx, 7] / acc[gx, 9]
                splats[k, 8] = acc[gx, 8] / acc[gx, 9]
                if not light_centroid_moves(splats[k, 0], splats[k, 1], splats[k, 7], splats[k, 8]):
                    splats[k, 7] = splats[k, 0]
                    splats[k, 8] = splats[k, 1]
                k += 1
                acc[gx, :] = 0.0


@_jit(inline=True)
def _rows_empty(offsets, first, last, y0, y1):
    """Whether layers ``first..last`` have no pixels in rows [y0, y1) (skipped grid rows cost nothing)."""
    for layer in range(first, last + 1):
        if offsets[layer, y1] > offsets[layer, y0]:
            return False
    return True


@_jit
def _cover_row(layer, last, gy, s, offsets, xs, height, acc):
    """Count and centroid sums of the pixels of layers ``layer..last`` per cell of grid row ``gy`` (``acc``: all zero
    on entry, and again after ``_cover_cells``)."""
    inv_s = 1.0 / s
    for y in range(gy * s, min(height, gy * s + s)):
        for src in range(layer, last + 1):
            for k in range(offsets[src, y], offsets[src, y + 1]):
                x = np.int64(xs[k])
                g = x // s
                acc[g, 0] += 1.0
                acc[g, 1] += np.float32((x + 0.5) * inv_s - 0.5)
                acc[g, 2] += np.float32((y + 0.5) * inv_s - 0.5)


@_jit
def _cover_cells(layer, acc, gy, s, width, height, stamp_x0, stamp_x1, bottom_ok, out, k, write):
    """The coverage records of grid row ``gy`` from its cell sums ``acc`` (see ``_cover_row``); returns how many.

    A record is ``(x, y, weight, n, total)``: ``n = 0`` a splat at the centroid
    (``total``: its splat total, filled in by the caller), ``n > 0`` a run of
    ``n`` fully covered cells from column ``x`` splatted with the layer's stamp
    (see ``SplatWriter::cover_run`` in render_cpu.cpp).
    """
    gw = acc.shape[0]
    count = 0
    run_open = False
    for gx in range(gw):
        n, sx, sy = acc[gx, 0], acc[gx, 1], acc[gx, 2]
        if not n > 0:
            run_open = False
            continue
        acc[gx, 0] = acc[gx, 1] = acc[gx, 2] = 0.0
        cell_w = min(s, width - gx * s)
        cell_h = min(height, gy * s + s) - gy * s
        if cell_w == s and cell_h == s and n == s * s and stamp_x0 <= gx <= stamp_x1 and bottom_ok:
            if run_open:
                if write:
                    out[k + count - 1, 3] += 1.0
                continue
            if write:
                out[k + count, 0] = gx
                out[k + count, 1] = gy
                out[k + count, 2] = 1.0
                out[k + count, 3] = 1.0
                out[k + count, 4] = 0.0
            count += 1
            run_open = True
            continue
        run_open = False
        if write:
            out[k + count, 0] = sx / n
            out[k + count, 1] = sy / n
            out[k + count, 2] = n / (cell_w * cell_h)
            out[k + count, 3] = 0.0
            out[k + count, 4] = 0.0
        count += 1
    return count


@_jit
def _bottom_ok(gy, s, height, r, ext_hi):
    """Whether a cell's mirror image across the bottom edge (if any) falls on a grid row."""
    edge_y = np.float32(height / s - 0.5)
    return height % s == 0 or not (np.float32(gy) + r * ext_hi > edge_y)


@_jit(parallel=True)
def _count_covers(layers_with, lasts, levels, offsets, xs, height, width, stamp_r, stamp_x0, stamp_x1, extents,
                  sides, counts):
    for i in prange(layers_with.shape[0]):
        _count_covers_item(i, layers_with, lasts, levels, offsets, xs, height, width, stamp_r, stamp_x0, stamp_x1,
                           extents, sides, counts)


@_jit
def _count_covers_item(i, layers_with, lasts, levels, offsets, xs, height, width, stamp_r, stamp_x0, stamp_x1, extents,
                       sides, counts):
    """One item of ``_count_covers``."""
    dummy = np.zeros((1, 5), np.float32)
    layer = layers_with[i]
    s = 1 << levels[layer]
    gh, gw = (height + s - 1) // s, (width + s - 1) // s
    acc = np.zeros((gw, 3))
    for gy in range(gh):
        if _rows_empty(offsets, layer, lasts[layer], gy * s, min(height, gy * s + s)):
            continue
        _cover_row(layer, lasts[layer], gy, s, offsets, xs, height, acc)
        ok = _bottom_ok(gy, s, height, stamp_r[layer], extents[sides[layer], 1])
        counts[layer, gy] = _cover_cells(layer, acc, gy, s, width, height, stamp_x0[layer], stamp_x1[layer], ok,
                                         dummy, 0, False)


@_jit(parallel=True)
def _build_covers(layers_with, lasts, levels, offsets, xs, height, width, stamp_r, stamp_x0, stamp_x1, sides, blades,
                  luts, extents, start, out):
    for i in prange(layers_with.shape[0]):
        _build_covers_item(i, layers_with, lasts, levels, offsets, xs, height, width, stamp_r, stamp_x0, stamp_x1,
                           sides, blades, luts, extents, start, out)


@_jit
def _build_covers_item(i, layers_with, lasts, levels, offsets, xs, height, width, stamp_r, stamp_x0, stamp_x1, sides,
                       blades, luts, extents, start, out):
    """One item of ``_build_covers``."""
    layer = layers_with[i]
    s = 1 << levels[layer]
    gh, gw = (height + s - 1) // s, (width + s - 1) // s
    side = sides[layer]
    acc = np.zeros((gw, 3))
    for gy in range(gh):
        if _rows_empty(offsets, layer, lasts[layer], gy * s, min(height, gy * s + s)):
            continue
        _cover_row(layer, lasts[layer], gy, s, offsets, xs, height, acc)
        ok = _bottom_ok(gy, s, height, stamp_r[layer], extents[side, 1])
        k = start[layer, gy]
        n = _cover_cells(layer, acc, gy, s, width, height, stamp_x0[layer], stamp_x1[layer], ok, out, k, True)
        for q in range(k, k + n):
            if out[q, 3] == 0.0:
                out[q, 4] = _splat_total(out[q, 0], out[q, 1], stamp_r[layer], blades, luts[side],
                                         extents[side, 0], extents[side, 1])


@_jit
def _stamp_row(blades, lut, ext_lo, ext_hi, r, row, scale, idx, w):
    """Row ``row`` (relative to the centre) of the splat of radius ``r`` at the origin as difference markers: their
    columns into ``idx``, weights times ``scale`` and the row's vertical coverage into ``w``; returns how many (0:
    the row misses the shape).  Unlike ``span_markers`` the markers are not clipped to a row: the callers use them
    only where the splat stays inside the image (``stamp_row`` in render_cpu.cpp)."""
    ok, xa, xb, vy = splat_row(blades, lut, ext_lo, ext_hi, 0.0, 0.0, r, row)
    if not ok:
        return 0
    ia = int(math.floor(xa + 0.5))
    ib = int(math.floor(xb + 0.5))
    a = scale * vy
    if ia == ib:
        idx[0] = ia
        w[0] = (xb - xa) * a
        idx[1] = ia + 1
        w[1] = -(xb - xa) * a
        return 2
    fa = (ia + 0.5) - xa
    fb = xb - (ib - 0.5)
    idx[0] = ia
    w[0] = fa * a
    idx[1] = ia + 1
    w[1] = (1.0 - fa) * a
    idx[2] = ib
    w[2] = (fb - 1.0) * a
    idx[3] = ib + 1
    w[3] = -fb * a
    return 4


@_jit
def _build_stamp(r, scale, gw, edge_x, blades, lut, ext_lo, ext_hi, m_out, idx_out, w_out):
    """The coverage splat of radius ``r`` (grid units) centred on a grid point, as span markers per row relative to
    the centre (see ``Renderer::build_stamp`` in render_cpu.cpp).  Returns the first row and the columns whose splat
    stays inside the image horizontally."""
    r0, r1 = splat_rows(0.0, r, ext_lo, ext_hi)
    m_out[:] = 0
    for k in range(r1 - r0 + 1):
        m_out[k] = _stamp_row(blades, lut, ext_lo, ext_hi, r, r0 + k, scale, idx_out[k], w_out[k])
    x0 = 0
    while x0 < gw and x0 - r < -0.5:
        x0 += 1
    x1 = gw - 1
    while x1 >= 0 and x1 + r > edge_x:
        x1 -= 1
    # Every marker a run writes must fall in the row's gw + 1 cells (see build_stamp in render_cpu.cpp).
    lo = 0
    hi = 0
    for k in range(r1 - r0 + 1):
        if m_out[k]:
            lo = min(lo, idx_out[k, 0])
            hi = max(hi, idx_out[k, m_out[k] - 1])
    return r0, max(x0, -lo), min(x1, gw - hi)


@_jit
def _build_radii(key0, blades, lut, ext_lo, ext_hi, r_out, total_out, r0_out, nrows_out, lo_out, hi_out, idx_out,
                 w_out):
    """The energy-normalised splats of radii ``(key0 + k) / COC_STEPS_PER_PX`` (grid units) at an integer centre,
    k = 0, 1, ...: radius, total, first row and row count (rows that miss the shape left out at both ends), marker
    columns [lo, hi] relative to the centre, and the rows' markers (see :class:`Radii`; ``StampTable::build`` in
    render_cpu.cpp).  Every row gets four markers, a two-marker row (the span within one cell) two of weight 0 at
    its last column, so that ``_stamp`` copies rows without branches."""
    idx = np.zeros(4, np.int64)
    w = np.zeros(4, np.float32)
    for k in range(r_out.shape[0]):
        r = np.float32(key0 + k) / np.float32(km.COC_STEPS_PER_PX)
        total = np.float32(_splat_total(0.0, 0.0, r, blades, lut, ext_lo, ext_hi))
        inv = np.float32(1.0) / total if total > 0.0 else np.float32(0.0)
        r0, r1 = splat_rows(0.0, r, ext_lo, ext_hi)
        r_out[k] = r
        total_out[k] = total
        first = -1
        last = -1
        lo = 0
        hi = 0
        idx_out[k] = 0
        w_out[k] = 0.0
        for j in range(r1 - r0 + 1):
            m = _stamp_row(blades, lut, ext_lo, ext_hi, r, r0 + j, inv, idx, w)
            if m == 0:
                continue
            if first < 0:
                first = j
            last = j
            q = j - first
            for c in range(4):
                idx_out[k, q, c] = idx[c] if c < m else idx[m - 1]
                w_out[k, q, c] = w[c] if c < m else 0.0
            lo = min(lo, idx[0])
            hi = max(hi, idx[m - 1])
        r0_out[k] = r0 + max(first, 0)
        nrows_out[k] = last - first + 1 if first >= 0 else 0
        lo_out[k] = lo
        hi_out[k] = hi


@_jit(inline=True)
def _find_radius(key0, n, r):
    """Index (from the layer's first) of the splat of radius ``r`` (grid units) in a layer's table of ``n`` from
    ``key0``; -1 when ``r`` is off the grid or outside the table (``StampTable::find``)."""
    k = r * np.float32(km.COC_STEPS_PER_PX)
    if not (k >= key0 and k < key0 + n):
        return -1
    ik = int(k)
    return ik - key0 if np.float32(ik) == k else -1


@_jit(inline=True)
def _inside(x, y, r, lo, hi, ext_lo, ext_hi, edge_x, edge_y, gw):
    """Whether the splat of radius ``r`` at the grid point (x, y), markers in [lo, hi] of it, stays inside the grid:
    no mirror images (the test of ``_splat_mirrored``) and every marker in its row (``SplatWriter::inside``)."""
    cx = np.float32(x)
    cy = np.float32(y)
    return not (cx - r < -0.5 or cx + r > edge_x or cy + r * ext_lo < -0.5 or cy + r * ext_hi > edge_y) and \
        x + lo >= 0 and x + hi <= gw


@_jit(inline=True)
def _stamp(si, x, y, v0, v1, v2, v3, r0s, nrows, idxs, ws, buf, row0, row1, touched):
    """Splat ``si`` of a :class:`Radii` table with value (v0, v1, v2: premultiplied rgb, v3: coverage) at the grid
    point (x, y), inside the grid: its precomputed markers shifted there (``SplatWriter::stamp``)."""
    r0 = r0s[si]
    k0 = max(0, row0 - y - r0)
    k1 = min(nrows[si] - 1, row1 - y - r0)
    for k in range(k0, k1 + 1):
        row = y + r0 + k - row0
        # Markers read before the stores: the buffers might alias the table as far as the compiler knows.
        i0, i1, i2, i3 = x + idxs[si, k, 0], x + idxs[si, k, 1], x + idxs[si, k, 2], x + idxs[si, k, 3]
        f0, f1, f2, f3 = ws[si, k, 0], ws[si, k, 1], ws[si, k, 2], ws[si, k, 3]
        buf[row, i0, 0] += f0 * v0
        buf[row, i0, 1] += f0 * v1
        buf[row, i0, 2] += f0 * v2
        buf[row, i0, 3] += f0 * v3
        buf[row, i1, 0] += f1 * v0
        buf[row, i1, 1] += f1 * v1
        buf[row, i1, 2] += f1 * v2
        buf[row, i1, 3] += f1 * v3
        buf[row, i2, 0] += f2 * v0
        buf[row, i2, 1] += f2 * v1
        buf[row, i2, 2] += f2 * v2
        buf[row, i2, 3] += f2 * v3
        buf[row, i3, 0] += f3 * v0
        buf[row, i3, 1] += f3 * v1
        buf[row, i3, 2] += f3 * v2
        buf[row, i3, 3] += f3 * v3
        touched[row, 0] = min(touched[row, 0], i0)
        touched[row, 1] = max(touched[row, 1], i3)


@_jit(inline=True)
def _stamp_span(si, x0, n, y, span, r0s, nrows, idxs, ws, buf, row0, row1, touched):
    """A run of ``n`` splats ``si`` at the grid points (x0 + j, y), j < n, of values ``span[1 + j]`` (``span[0]`` and
    ``span[n + 1]`` zero).  A row's markers come in pairs on adjacent cells, so a pair of the whole run is one pass
    over the n + 1 cells it reaches: cell j takes wa * c[j] + wb * c[j - 1] (``SplatWriter::stamp_span``; a padded
    pair of weight 0 is skipped)."""
    r0 = r0s[si]
    k0 = max(0, row0 - y - r0)
    k1 = min(nrows[si] - 1, row1 - y - r0)
    for k in range(k0, k1 + 1):
        row = y + r0 + k - row0
        for p in range(0, 4, 2):
            wa, wb = ws[si, k, p], ws[si, k, p + 1]
            if wa == 0.0 and wb == 0.0:
                continue
            i = x0 + idxs[si, k, p]
            for j in range(n + 1):
                for ch in range(4):
                    buf[row, i + j, ch] += wa * span[j + 1, ch] + wb * span[j, ch]
        touched[row, 0] = min(touched[row, 0], x0 + idxs[si, k, 0])
        touched[row, 1] = max(touched[row, 1], x0 + n - 1 + idxs[si, k, 3])


@_jit(inline=True)
def _stamp_run(x0, n, cy, r0, m, idx, w, dbuf, row0, row1, gw, touched):
    """Coverage splats of the run ``[x0, x0 + n)`` of grid row ``cy`` with a stamp: each marker becomes the two ends
    of a box over the run in ``dbuf`` (differenced once more than ``pbuf``)."""
    rows = m.shape[0]
    k0 = max(0, row0 - cy - r0)
    k1 = min(rows - 1, row1 - cy - r0)
    for k in range(k0, k1 + 1):
        mk = m[k]
        if mk == 0:
            continue
        row = cy + r0 + k - row0
        for q in range(mk):
            dbuf[row, x0 + idx[k, q]] += w[k, q]
            e = x0 + n + idx[k, q]
            if e <= gw:
                dbuf[row, e] -= w[k, q]
        touched[row, 0] = min(touched[row, 0], x0 + idx[k, 0])
        touched[row, 1] = max(touched[row, 1], min(gw, x0 + n + idx[k, mk - 1]))


@_jit
def _cover_run(x0, n, cy, r, r0, m, idx, w, ext_lo, ext_hi, edge_y, dbuf, row0, row1, gw, touched):
    """``_stamp_run`` plus the mirror image across the top or bottom edge (see ``SplatWriter::cover_run``)."""
    _stamp_run(x0, n, cy, r0, m, idx, w, dbuf, row0, row1, gw, touched)
    fy = np.float32(cy)
    if fy + r * ext_lo < -0.5:
        _stamp_run(x0, n, -1 - cy, r0, m, idx, w, dbuf, row0, row1, gw, touched)
    elif fy + r * ext_hi > edge_y:
        _stamp_run(x0, n, int(2.0 * edge_y) - cy, r0, m, idx, w, dbuf, row0, row1, gw, touched)


@_jit
def _splat_total(cx, cy, r, blades, lut, ext_lo, ext_hi):
    """Sum over the splat's rows of vertical coverage × span (``splat_total`` in C++)."""
    r0, r1 = splat_rows(cy, r, ext_lo, ext_hi)
    total = 0.0
    for rr in range(r0, r1 + 1):
        ok, a, b, v = splat_row(blades, lut, ext_lo, ext_hi, cx, cy, r, rr)
        if ok:
            total += v * (b - a)
    return total


@_jit(inline=True)
def _splat(cx, cy, r, w, c0, c1, c2, channels, blades, lut, ext_lo, ext_hi, buf, pbuf, row0, row1, gw, touched,
           total):
    """Splat one aperture (see SplatWriter in C++).

    ``channels``: 1 light (RGB into ``buf``), 2 coverage (``buf``), 3 both,
    4 coverage of one radius (into ``pbuf``).  ``total``: the splat total when
    known (pixels on the image grid: at their integer centre), else <= 0 to compute it here.
    """
    r0, r1 = splat_rows(cy, r, ext_lo, ext_hi)
    if r1 < row0 or r0 > row1:
        return
    if not total > 0.0:
        total = _splat_total(cx, cy, r, blades, lut, ext_lo, ext_hi)
    if not total > 0.0:
        return
    scale = w / total
    for rr in range(max(r0, row0), min(r1, row1) + 1):
        ok, xa, xb, vy = splat_row(blades, lut, ext_lo, ext_hi, cx, cy, r, rr)
        if not ok:
            continue
        m, i0, w0, i1, w1, i2, w2, i3, w3 = span_markers(xa, xb, gw)
        if m == 0:
            continue
        row = rr - row0
        a = scale * vy
        v0, v1, v2 = a * c0, a * c1, a * c2
        for q in range(m):
            if q == 0:
                idx, f = i0, w0
            elif q == 1:
                idx, f = i1, w1
            elif q == 2:
                idx, f = i2, w2
            else:
                idx, f = i3, w3
            if channels & 1:
                buf[row, idx, 0] += f * v0
                buf[row, idx, 1] += f * v1
                buf[row, idx, 2] += f * v2
            if channels & 2:
                buf[row, idx, 3] += f * a
            if channels & 4:
                pbuf[row, idx] += f * a
        touched[row, 0] = min(touched[row, 0], i0)
        touched[row, 1] = max(touched[row, 1], i3 if m == 4 else i1)


@_jit
def _splat_mirrored(cx, cy, r, w, c0, c1, c2, channels, blades, lut, ext_lo, ext_hi, buf, pbuf, row0, row1, gw,
                    touched, edge_x, edge_y, total):
    """A splat plus its mirror images across the image edges it crosses (see SplatWriter in C++).

    All copies share the total of the original centre (``total`` if > 0).
    """
    if not total > 0.0:
        total = _splat_total(cx, cy, r, blades, lut, ext_lo, ext_hi)
    left = cx - r < -0.5
    right = cx + r > edge_x
    top = cy + r * ext_lo < -0.5
    bottom = cy + r * ext_hi > edge_y
    _splat(cx, cy, r, w, c0, c1, c2, channels, blades, lut, ext_lo, ext_hi, buf, pbuf, row0, row1, gw, touched, total)
    if not (left or right or top or bottom):
        return
    mx = -1.0 - cx if left else 2.0 * edge_x - cx
    my = -1.0 - cy if top else 2.0 * edge_y - cy
    if left or right:
        _splat(mx, cy, r, w, c0, c1, c2, channels, blades, lut, ext_lo, ext_hi, buf, pbuf, row0, row1, gw, touched, total)
    if top or bottom:
        _splat(cx, my, r, w, c0, c1, c2, channels, blades, lut, ext_lo, ext_hi, buf, pbuf, row0, row1, gw, touched, total)
    if (left or right) and (top or bottom):
        _splat(mx, my, r, w, c0, c1, c2, channels, blades, lut, ext_lo, ext_hi, buf, pbuf, row0, row1, gw, touched, total)


# State of the band renderer: namedtuples of arrays and scalars, which Numba
# passes to jitted functions as one value.  A parallel loop cannot take a
# namedtuple holding another one, so these stay flat.

class Tables(NamedTuple):
    """What the band stages read, built once per render (the ``Renderer`` members of render_cpu.cpp)."""

    image: np.ndarray        # H x W x 3 sRGB code values (uint8, uint16 or float32): the photo
    dlut: np.ndarray         # float32: its decoding table (see _decode)
    gain: np.ndarray         # float32 H x W highlight gain, or 0 x 0 for none (see _colour)
    coc: np.ndarray          # float32 H x W: signed CoC radius (px)
    focus: int               # the in-focus layer; lower layers lie behind it
    layer_count: np.ndarray  # int64 by layer: its pixels
    layer_ymin: np.ndarray   # int64 by layer: its first and last row
    layer_ymax: np.ndarray
    levels: np.ndarray       # int64 by layer: grid level (cells of 2^level px)
    r_his: np.ndarray        # float32 by layer: its largest radius
    offsets: np.ndarray      # int64 nlayers x (H + 1): start of bucket (layer, row) in xs
    xs: np.ndarray           # uint16 or int32 (_column_dtype): column of every pixel, grouped by (layer, row)
    grid_start: np.ndarray   # int64 nlayers x (grid rows + 1): a coarse layer's splats by grid row
    splats: np.ndarray       # float32 (n, 9): x, y, radius, weight, rgb, light centroid x, y (_build_coarse)
    cover_last: np.ndarray   # int64 by layer: last layer its coverage counts (itself or the next nearer)
    cover_start: np.ndarray  # int64 nlayers x (grid rows + 1): a coarse layer's coverage records by grid row
    covers: np.ndarray       # float32 (n, 5): coverage records (_cover_cells)
    fine_start: np.ndarray   # int64 nlayers x (H + 1): a coarse layer's fine highlights by row
    fine_x: np.ndarray       # int32: their columns
    fine_total: np.ndarray   # float32: their splat totals (_fill_fine)
    blades: int
    luts: np.ndarray         # float32 (2, LUT_SIZE + 1, 2): aperture edges behind (0) and in front of (1) focus
    extents: np.ndarray      # float32 (2, 2): vertical extent of the unit aperture, same sides
    encode_lut: np.ndarray   # float32: sRGB encoding of sqrt(linear)
    xtap_a: np.ndarray       # int64 (levels, W): bilinear upsampling of each grid level along x: left and right
    xtap_b: np.ndarray       #   grid column of image column x (the same for every row) ...
    xtap_f: np.ndarray       # float32 (levels, W): ... and the right one's weight (_x_taps)
    top: float               # float32: largest code value of an integer output, 0 for float32 output


class Radii(NamedTuple):
    """Every out-of-focus layer's splats at integer centres, one per radius on the COC_STEPS_PER_PX grid of its bin
    (in grid units, one step beyond each end): a level-0 pixel's or a whole coarse cell's splat is then a copy of
    precomputed row markers (``_stamp``) instead of its geometry row by row (``StampTable`` in render_cpu.cpp).
    Layer ``l`` has ``count[l]`` splats from index ``base[l]``, of radii ``(key0[l] + k) / COC_STEPS_PER_PX``."""

    key0: np.ndarray   # int64 by layer
    base: np.ndarray   # int64 by layer
    count: np.ndarray  # int64 by layer (0: no table)
    r: np.ndarray      # float32 by splat: radius (grid units)
    total: np.ndarray  # float32: its total (splat_total at an integer centre)
    r0: np.ndarray     # int64: first row, relative to the centre
    nrows: np.ndarray  # int64
    lo: np.ndarray     # int64: first and last marker column, relative to the centre
    hi: np.ndarray
    idx: np.ndarray    # int64 (n, STAMP_ROWS, 4): four markers per row: their columns, relative to the centre
    w: np.ndarray      # float32 (n, STAMP_ROWS, 4): their weights, energy-normalised (1 / total)


class Stamps(NamedTuple):
    """The coverage stamp of every layer (see ``_build_stamp``), indexed by layer."""

    r: np.ndarray    # float32: coverage radius in grid units
    r0: np.ndarray   # int64: first row, relative to the centre
    x0: np.ndarray   # int64: first and last column whose splat stays inside the image
    x1: np.ndarray
    m: np.ndarray    # int64 (nlayers, STAMP_ROWS): markers per row
    idx: np.ndarray  # int64 (nlayers, STAMP_ROWS, 4): their columns, relative to the centre
    w: np.ndarray    # float32 (nlayers, STAMP_ROWS, 4): their weights


class FarPyramid(NamedTuple):
    """The farthest-content pyramid, flattened (see ``FarPyramid`` in bokeh_math.h): level k holds
    ``heights[k] x widths[k]`` cells from ``offsets[k]``; level 0 halves the image.  Level 0, three quarters
    of the cells, is not stored: a cell is computed from its four pixels where it is read (``_far_cell0``),
    and kept for the band that reads it (``BandScratch.far0_*``)."""

    count: np.ndarray    # float32: pixels of the cell's farthest layer
    rgb: np.ndarray      # float32 (cells, 3): their mean colour, the highlight boost undone
    depth: np.ndarray    # float32: their mean depth position
    heights: np.ndarray  # int64 by level
    widths: np.ndarray
    offsets: np.ndarray


class BandScratch(NamedTuple):
    """Buffers of one band, allocated once per band; the layer buffers stay all zero between layers."""

    acc: np.ndarray       # float32 rows x W x 4: accumulator (premultiplied rgb, alpha)
    behind: np.ndarray    # float32 rows x W x 4: what lies behind the visible layers
    buf: np.ndarray       # float32, (BAND_ROWS + 2) x (W + 2) x 4 values: a layer's grid rows, RGBA cells
    pbuf: np.ndarray      # float32, (BAND_ROWS + 2) x (W + 2): their coverage of one radius
    dbuf: np.ndarray      # float64, as pbuf: run markers of that coverage (see _stamp_run)
    # (flat: each layer views them as contiguous rows of its own width, see _begin_layer)
    touched: np.ndarray   # int64 (BAND_ROWS + 2) x 2: per grid row, first and last cell written
    fbuf: np.ndarray      # float32 BAND_ROWS x (W + 1) x 4: a coarse layer's fine highlights
    fpbuf: np.ndarray     # float32 1 x 1: their (unused) coverage buffer
    ftouched: np.ndarray  # int64 BAND_ROWS x 2
    far0_count: np.ndarray  # float32 FAR0_ROWS x ceil(W / 2): the band's level-0 far cells (see FarPyramid) ...
    far0_rgb: np.ndarray    # float32 FAR0_ROWS x ceil(W / 2) x 3
    far0_depth: np.ndarray  # float32
    far0_ok: np.ndarray     # bool: ... which of them are computed


class LayerBand(NamedTuple):
    """Where one layer meets one band of output rows (``LayerBand`` in render_cpu.cpp)."""

    layer: int
    y0: int          # band rows [y0, y1)
    y1: int
    side: int        # 1 in front of the focus (point-reflected aperture), else 0
    reach: float     # how far its splats reach (image px)
    level: int
    s: int           # cell size (px)
    gw: int          # grid size
    gh: int
    row0: int        # grid rows the band needs
    row1: int
    nrows: int
    src0: int        # grid rows whose splats reach them
    src1: int


class SplatWriter(NamedTuple):
    """Where a layer's splats go (``SplatWriter`` in render_cpu.cpp): an aperture shape and grid rows
    ``row0..row1`` of buffers ``gw + 1`` cells wide, mirrored across the edges ``edge_x``, ``edge_y``.

    Stages unpack it into locals before their loops: reading an array out of a
    tuple costs a reference count increment and decrement, which per splat made
    the render 10-15 % slower.
    """

    blades: int
    lut: np.ndarray
    ext_lo: float
    ext_hi: float
    buf: np.ndarray
    pbuf: np.ndarray
    dbuf: np.ndarray
    touched: np.ndarray
    row0: int
    row1: int
    gw: int
    edge_x: float
    edge_y: float


@_jit(inline=True)
def _far_content(far, sc, f0, layer_of, image, lut, gain, coc, x, y, depth, abs_coc, fill):
    """The farthest content near pixel (x, y), premultiplied by its weight, into ``fill``; returns the weight
    (see ``far_content`` in bokeh_math.h).  ``far``: a :class:`FarPyramid`; its level 0 comes from the band's
    cache in ``sc`` (:class:`BandScratch`, rows from level-0 row ``f0``), filled on the way."""
    height, width = coc.shape
    pyr_count, pyr_rgb, pyr_depth = far.count, far.rgb, far.depth
    pyr_h, pyr_w, pyr_off = far.heights, far.widths, far.offsets
    cnt0, rgb0, dep0, ok0 = sc.far0_count, sc.far0_rgb, sc.far0_depth, sc.far0_ok
    max_cell = np.float32(4.0) * max(abs_coc, np.float32(2.0))
    left = 1.0
    fill[0] = 0.0
    fill[1] = 0.0
    fill[2] = 0.0
    for k in range(pyr_h.shape[0]):
        si = 2 << k
        s = float(si)
        g = far_level_weight(max_cell, s)
        if not g > 0.0:
            break
        u = (x + 0.5) / s - 0.5
        v = (y + 0.5) / s - 0.5
        ix = int(math.floor(u))
        iy = int(math.floor(v))
        fx = u - ix
        fy = v - iy
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        wsum = 0.0
        for dy in range(2):
            for dx in range(2):
                cx = min(max(ix + dx, 0), pyr_w[k] - 1)
                cy = min(max(iy + dy, 0), pyr_h[k] - 1)
                if k == 0:
                    q = cy - f0
                    if not ok0[q, cx]:
                        _, n, c0, c1, c2, d = _far_cell0(layer_of, image, lut, gain, coc, cy, cx)
                        cnt0[q, cx] = n
                        rgb0[q, cx, 0] = c0
                        rgb0[q, cx, 1] = c1
                        rgb0[q, cx, 2] = c2
                        dep0[q, cx] = d
                        ok0[q, cx] = True
                    n, c0, c1, c2, d = cnt0[q, cx], rgb0[q, cx, 0], rgb0[q, cx, 1], rgb0[q, cx, 2], dep0[q, cx]
                else:
                    o = pyr_off[k] + cy * pyr_w[k] + cx
                    n, c0, c1, c2, d = pyr_count[o], pyr_rgb[o, 0], pyr_rgb[o, 1], pyr_rgb[o, 2], pyr_depth[o]
                farther = far_depth_weight(depth, d)
                if not farther > 0.0:
                    continue
                area = min(si, width - cx * si) * min(si, height - cy * si)
                wgt = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy) * (n / area) * farther
                a0 += wgt * c0
                a1 += wgt * c1
                a2 += wgt * c2
                wsum += wgt
        if wsum > 0:
            trust = g * min(1.0, wsum / km.FAR_CONFIDENT)
            kf = left * trust / wsum
            fill[0] += kf * a0
            fill[1] += kf * a1
            fill[2] += kf * a2
            left *= 1.0 - trust
            if not left > 0.0:
                break
    return 1.0 - left


@_jit(inline=True)
def _resolve_pixel(acc, behind, k, x, far_w, far, own0, own1, own2):
    """Final linear colour (float32 r, g, b) of pixel ``x`` of band row ``k`` (see ``resolve_pixel`` in
    bokeh_math.h); ``own``: its own colour."""
    a3 = acc[k, x, 3]
    if a3 > 1e-12:
        n0, n1, n2 = acc[k, x, 0] / a3, acc[k, x, 1] / a3, acc[k, x, 2] / a3
    else:
        n0, n1, n2 = own0, own1, own2
    hole = 1.0 - a3
    if not hole > 1e-4:
        return n0, n1, n2
    kb = np.float32(1.0) / a3 if a3 > 1e-12 else np.float32(0.0)
    rest = 1.0 - min(max(behind[k, x, 3] * kb, 0.0), 1.0)
    keep = 1.0 - far_w
    return (np.float32(acc[k, x, 0] + hole * (behind[k, x, 0] * kb + rest * (far[0] + keep * n0))),
            np.float32(acc[k, x, 1] + hole * (behind[k, x, 1] * kb + rest * (far[1] + keep * n1))),
            np.float32(acc[k, x, 2] + hole * (behind[k, x, 2] * kb + rest * (far[2] + keep * n2))))


@_jit(inline=True)
def _far_empty():
    """A pyramid cell's sums before its first child (for :func:`_far_accumulate`): no layer yet (an index
    above any), nothing summed."""
    return 1 << 30, 0.0, 0.0, 0.0, 0.0, 0.0


@_jit(inline=True)
def _far_accumulate(best, s0, s1, s2, s3, n, lay, m, c0, c1, c2, d):
    """``far_accumulate`` of bokeh_math.h: one child (layer ``lay``, ``m`` pixels, mean colour, mean depth
    position) added to a pyramid cell's sums, which keep only the farthest layer seen (smallest index)."""
    if lay < best:
        best = lay
        s0 = s1 = s2 = s3 = n = 0.0
    if lay == best:
        s0 += m * c0
        s1 += m * c1
        s2 += m * c2
        s3 += m * d
        n += m
    return best, s0, s1, s2, s3, n


@_jit(inline=True)
def _far_block(layer_of, image, lut, gain, coc, cy, cx, size):
    """Cell (cy, cx) of the farthest-content pyramid level whose cells are ``size`` × ``size`` pixels (2: level 0,
    4: level 1), straight from its pixels, as stored: (layer, pixels of it, their mean colour as ``far_colour`` in
    bokeh_math.h (the highlight boost undone), their mean depth position).  What averaging the level below makes of
    them (a parent keeps the farthest of its children's layers), without the means between
    (``Renderer::far_block`` in render_cpu.cpp)."""
    height, width = coc.shape
    best, s0, s1, s2, s3, n = _far_empty()
    for yy in range(cy * size, min(height, cy * size + size)):
        for xx in range(cx * size, min(width, cx * size + size)):
            lay = np.int64(layer_of[yy, xx])
            c0, c1, c2 = _colour(image, lut, gain, coc, yy, xx)
            d = depth_position(coc[yy, xx])
            top = max(c0, c1, c2)
            if top > 1.0:
                inv = np.float32(1.0) / top
                c0, c1, c2 = c0 * inv, c1 * inv, c2 * inv
            best, s0, s1, s2, s3, n = _far_accumulate(best, s0, s1, s2, s3, n, lay, 1.0, c0, c1, c2, d)
    return (best, np.float32(n), np.float32(s0 / n), np.float32(s1 / n), np.float32(s2 / n),
            np.float32(s3 / n))


@_jit(inline=True)
def _far_cell0(layer_of, image, lut, gain, coc, cy, cx):
    """Cell (cy, cx) of the farthest-content pyramid's level 0 from its 2 × 2 pixels (``_far_block``)."""
    return _far_block(layer_of, image, lut, gain, coc, cy, cx, 2)


@_jit(parallel=True)
def _far_level(k, layer_of, image, lut, gain, coc, heights, widths, offsets, layers, counts, rgb, depths):
    """Level ``k >= 1`` of the farthest-content pyramid: level 1 from its pixels (``_far_block``), the others from
    the level below."""
    for cy in prange(heights[k]):
        _far_level_item(cy, k, layer_of, image, lut, gain, coc, heights, widths, offsets, layers, counts, rgb, depths)


@_jit
def _far_level_item(cy, k, layer_of, image, lut, gain, coc, heights, widths, offsets, layers, counts, rgb, depths):
    """One row of ``_far_level``."""
    ph = heights[k - 1]
    pw = widths[k - 1]
    w = widths[k]
    for cx in range(w):
        if k == 1:  # level 1 from its pixels, the levels above from the level below
            lay, m, c0, c1, c2, d = _far_block(layer_of, image, lut, gain, coc, cy, cx, 4)
        else:
            best, s0, s1, s2, s3, n = _far_empty()
            for dy in range(2):
                for dx in range(2):
                    yy = 2 * cy + dy
                    xx = 2 * cx + dx
                    if yy >= ph or xx >= pw:
                        continue
                    q = offsets[k - 1] + yy * pw + xx
                    best, s0, s1, s2, s3, n = _far_accumulate(best, s0, s1, s2, s3, n, np.int64(layers[q]),
                                                              float(counts[q]), rgb[q, 0], rgb[q, 1], rgb[q, 2],
                                                              depths[q])
            lay, m, c0, c1, c2, d = best, n, s0 / n, s1 / n, s2 / n, s3 / n
        o = offsets[k] + cy * w + cx
        layers[o] = lay
        counts[o] = m
        depths[o] = d
        rgb[o, 0] = c0
        rgb[o, 1] = c1
        rgb[o, 2] = c2


def _far_pyramid(layer_of: np.ndarray, image: np.ndarray, lut: np.ndarray, gain: np.ndarray,
                 coc: np.ndarray) -> FarPyramid:
    """Farthest-content pyramid (see :class:`FarPyramid`), levels 1 and up."""
    heights, widths = [], []
    h, w = layer_of.shape
    while h > 1 or w > 1:
        h, w = (h + 1) // 2, (w + 1) // 2
        heights.append(h)
        widths.append(w)
    heights = np.array(heights, np.int64)
    widths = np.array(widths, np.int64)
    sizes = heights * widths
    if sizes.size:
        sizes[0] = 0  # level 0 is not stored
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    cells = max(1, int(offsets[-1]))
    layers = np.zeros(cells, np.uint8)
    counts = np.zeros(cells, np.float32)
    rgb = np.zeros((cells, 3), np.float32)
    depths = np.zeros(cells, np.float32)
    for k in range(1, len(heights)):
        _far_level(k, layer_of, image, lut, gain, coc, heights, widths, offsets, layers, counts, rgb, depths)
    return FarPyramid(counts, rgb, depths, heights, widths, offsets[:-1])


@_jit(inline=True)
def _composite(c0, c1, c2, a, p, acc, behind, k, x):
    """Back-to-front "over" of a layer sample (float32) onto cell (k, x) of the band's accumulator, with the coverage
    ``p`` of one radius; ``behind`` accumulates what lies behind the visible layers (``composite_over`` in
    bokeh_math.h, in float32 as there)."""
    if not a > np.float32(1e-7):
        return
    zero, one = np.float32(0.0), np.float32(1.0)
    trust = min(a * np.float32(1.0 / km.COVER_TRUST), one)
    alpha = one if a >= one else max(a, trust * min(max(p, zero), one))
    kk = alpha / a
    t = one - alpha
    for q in range(4):
        behind[k, x, q] = alpha * acc[k, x, q] + t * behind[k, x, q]
    acc[k, x, 0] = kk * c0 + t * acc[k, x, 0]
    acc[k, x, 1] = kk * c1 + t * acc[k, x, 1]
    acc[k, x, 2] = kk * c2 + t * acc[k, x, 2]
    acc[k, x, 3] = alpha + t * acc[k, x, 3]


# The band renderer, in the stages of Renderer::render_band in render_cpu.cpp
# (same names, a leading underscore): for each band of BAND_ROWS output rows,
# every layer from the farthest to the nearest is splatted into grid-row
# buffers, integrated along its rows and composited over the band; then what
# stays uncovered is filled and the band encoded.

@_jit(parallel=True)
def _render_bands(t, stamps, radii, far, layer_of, out):
    """Render every band into ``out`` (H x W x 3 of the image's dtype), bands in parallel.

    ``t``: :class:`Tables`; ``stamps``: :class:`Stamps`; ``radii``: :class:`Radii`; ``far``:
    :class:`FarPyramid`; ``layer_of``: uint8 H x W, the layer of each pixel (for the far pyramid's level 0).
    """
    height = t.coc.shape[0]
    nbands = (height + BAND_ROWS - 1) // BAND_ROWS
    for band in prange(nbands):
        _render_band(t, stamps, radii, far, layer_of, band, out)


@_jit
def _render_band(t, stamps, radii, far, layer_of, band, out):
    """One band of BAND_ROWS output rows: its layers from the farthest to the nearest, then the finish."""
    height, width = t.coc.shape
    y0 = band * BAND_ROWS
    y1 = min(height, y0 + BAND_ROWS)
    sc = _band_scratch(y1 - y0, width)
    for layer in range(t.layer_count.shape[0]):
        reaches, lb = _layer_band(t, layer, y0, y1)
        if not reaches:
            continue
        if layer == t.focus:
            _copy_in_focus(t, lb, sc)
            continue
        write = _begin_layer(t, lb, sc)
        _splat_layer(t, radii, lb, write)
        _cover_layer(t, stamps, lb, write)
        has_fine = _splat_fine(t, lb, sc)
        _scan_rows(lb, write)
        _composite_layer(t, lb, sc, write, has_fine)
        _clear_layer(lb, write)
    _finish_band(t, far, layer_of, y0, y1, sc, out)


FAR0_ROWS = BAND_ROWS // 2 + 3   # level-0 far-pyramid rows a band's pixels read


@_jit
def _band_scratch(rows, width):
    """The :class:`BandScratch` of a band of ``rows`` rows of ``width`` pixels."""
    w0 = (width + 1) // 2
    return BandScratch(np.zeros((rows, width, 4), np.float32), np.zeros((rows, width, 4), np.float32),
                       np.zeros((BAND_ROWS + 2) * (width + 2) * 4, np.float32),
                       np.zeros((BAND_ROWS + 2) * (width + 2), np.float32),
                       np.zeros((BAND_ROWS + 2) * (width + 2), np.float64),
                       np.empty((BAND_ROWS + 2, 2), np.int64),
                       np.zeros((BAND_ROWS, width + 1, 4), np.float32), np.zeros((1, 1), np.float32),
                       np.empty((BAND_ROWS, 2), np.int64),
                       np.empty((FAR0_ROWS, w0), np.float32), np.empty((FAR0_ROWS, w0, 3), np.float32),
                       np.empty((FAR0_ROWS, w0), np.float32), np.zeros((FAR0_ROWS, w0), np.bool_))


@_jit
def _layer_band(t, layer, y0, y1):
    """Where ``layer`` meets the band ``[y0, y1)``: whether any of its splats reaches it, and the :class:`LayerBand`."""
    height, width = t.coc.shape
    side = 1 if layer > t.focus else 0              # near side: point-reflected aperture
    reach = t.r_his[layer] * max(-t.extents[side, 0], t.extents[side, 1]) + 2.0
    reaches = t.layer_count[layer] > 0 and not (t.layer_ymin[layer] - reach > y1 or t.layer_ymax[layer] + reach < y0)
    level = t.levels[layer]
    s = 1 << level
    gw = (width + s - 1) // s
    gh = (height + s - 1) // s
    if level == 0:
        row0, row1 = y0, y1 - 1
    else:
        row0 = max(0, int(math.floor((y0 + 0.5) / s - 0.5)))
        row1 = min(gh - 1, int(math.floor((y1 - 0.5) / s - 0.5)) + 1)
    grid_reach = reach / s + 2.0 if level else reach
    src0 = max(0, int(math.floor(row0 - grid_reach)))
    src1 = min(gh - 1, int(math.ceil(row1 + grid_reach)))
    return reaches, LayerBand(layer, y0, y1, side, reach, level, s, gw, gh, row0, row1, row1 - row0 + 1, src0, src1)


@_jit
def _copy_in_focus(t, lb, sc):
    """The in-focus layer: copied through with full coverage (nothing behind it bleeds in)."""
    image, dlut, gain, coc, offsets, xs = t.image, t.dlut, t.gain, t.coc, t.offsets, t.xs
    acc, behind = sc.acc, sc.behind
    y0 = lb.y0
    for y in range(y0, lb.y1):
        for k in range(offsets[lb.layer, y], offsets[lb.layer, y + 1]):
            x = np.int64(xs[k])
            for c in range(4):
                behind[y - y0, x, c] = acc[y - y0, x, c]
            c0, c1, c2 = _colour(image, dlut, gain, coc, y, x)
            acc[y - y0, x, 0] = c0
            acc[y - y0, x, 1] = c1
            acc[y - y0, x, 2] = c2
            acc[y - y0, x, 3] = 1.0


@_jit
def _begin_layer(t, lb, sc):
    """The layer's grid-row buffers (all zero here) with their touched ranges reset, as a :class:`SplatWriter`."""
    height, width = t.coc.shape
    nrows, cells = lb.nrows, lb.gw + 1
    touched = sc.touched[:nrows]
    touched[:, 0] = 1 << 30
    touched[:, 1] = -1
    return SplatWriter(t.blades, t.luts[lb.side], t.extents[lb.side, 0], t.extents[lb.side, 1],
                       sc.buf[:nrows * cells * 4].reshape((nrows, cells, 4)),
                       sc.pbuf[:nrows * cells].reshape((nrows, cells)), sc.dbuf[:nrows * cells].reshape((nrows, cells)),
                       touched,
                       lb.row0, lb.row1, lb.gw, np.float32(width / lb.s - 0.5), np.float32(height / lb.s - 0.5))


@_jit
def _splat_layer(t, radii, lb, write):
    """Light and coverage: every level-0 pixel with its own radius, energy-normalised at its integer centre; a
    coarse layer's cell records, light at the light centroid when it moved.  Splats on the radius grid at a grid
    point (level-0 pixels, whole cells) that stay inside the image are copied from the layer's :class:`Radii`
    table, a run of neighbours on one splat at once (``_stamp_span``); the rest (off-grid radii, splats mirrored at
    the edges, moved light centroids) take their geometry row by row."""
    blades, lut, ext_lo, ext_hi, buf, pbuf, dbuf, touched, row0, row1, gw, edge_x, edge_y = write
    image, dlut, gain, coc, offsets, xs, splats = t.image, t.dlut, t.gain, t.coc, t.offsets, t.xs, t.splats
    r_total, r_r0, r_nrows, r_lo, r_hi, r_idx, r_w = (radii.total, radii.r0, radii.nrows, radii.lo, radii.hi,
                                                      radii.idx, radii.w)
    layer = lb.layer
    key0, base, n = radii.key0[layer], radii.base[layer], radii.count[layer]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    # Runs of neighbours on one stamp go through _stamp_span; span[0] stays zero.
    span = np.zeros((SPAN_MAX + 2, 4), np.float32)
    if lb.level == 0:
        for y in range(lb.src0, lb.src1 + 1):
            k = offsets[layer, y]
            end = offsets[layer, y + 1]
            while k < end:
                x = np.int64(xs[k])
                r = abs(coc[y, x])
                c0, c1, c2 = _colour(image, dlut, gain, coc, y, x)
                si = _find_radius(key0, n, r)
                if si >= 0:
                    si += base
                    lo, hi = r_lo[si], r_hi[si]
                    if _inside(x, y, r, lo, hi, ext_lo, ext_hi, edge_x, edge_y, gw):
                        m = 1
                        while (m < SPAN_MAX and k + m < end and np.int64(xs[k + m]) == x + m
                               and abs(coc[y, x + m]) == r
                               and _inside(x + m, y, r, lo, hi, ext_lo, ext_hi, edge_x, edge_y, gw)):
                            d0, d1, d2 = _colour(image, dlut, gain, coc, y, x + m)
                            m += 1
                            span[m, 0], span[m, 1], span[m, 2], span[m, 3] = d0, d1, d2, one
                        if m == 1:
                            _stamp(si, x, y, c0, c1, c2, one, r_r0, r_nrows, r_idx, r_w, buf, row0, row1, touched)
                        else:
                            span[1, 0], span[1, 1], span[1, 2], span[1, 3] = c0, c1, c2, one
                            span[m + 1, 0], span[m + 1, 1], span[m + 1, 2], span[m + 1, 3] = zero, zero, zero, zero
                            _stamp_span(si, x, m, y, span, r_r0, r_nrows, r_idx, r_w, buf, row0, row1, touched)
                        k += m
                        continue
                    total = r_total[si]
                else:
                    total = np.float32(_splat_total(0.0, 0.0, r, blades, lut, ext_lo, ext_hi))
                _splat_mirrored(np.float32(x), np.float32(y), r, one, c0, c1, c2, 3, blades, lut, ext_lo, ext_hi, buf,
                                pbuf, row0, row1, gw, touched, edge_x, edge_y, total)
                k += 1
        return
    k = t.grid_start[layer, lb.src0]
    end = t.grid_start[layer, lb.src1 + 1]
    while k < end:
        x_, y_, r_, w_ = splats[k, 0], splats[k, 1], splats[k, 2], splats[k, 3]
        c0, c1, c2 = splats[k, 4], splats[k, 5], splats[k, 6]
        lx, ly = splats[k, 7], splats[k, 8]
        # Whole cells have their centroid on a grid point: their splats come from the table.
        ix, iy = int(x_), int(y_)
        si = _find_radius(key0, n, r_) if np.float32(ix) == x_ and np.float32(iy) == y_ else -1
        if si >= 0:
            si += base
            if not _inside(ix, iy, r_, r_lo[si], r_hi[si], ext_lo, ext_hi, edge_x, edge_y, gw):
                si = -1
        if lx == x_ and ly == y_ and si >= 0:
            # A run of whole cells on one stamp: the next records at the next grid points of the row.
            m = 1
            while (m < SPAN_MAX and k + m < end and splats[k + m, 1] == y_ and splats[k + m, 0] == x_ + m
                   and splats[k + m, 2] == r_ and splats[k + m, 7] == x_ + m and splats[k + m, 8] == y_
                   and _inside(ix + m, iy, r_, r_lo[si], r_hi[si], ext_lo, ext_hi, edge_x, edge_y, gw)):
                q = k + m
                m += 1
                wq = splats[q, 3]
                span[m, 0], span[m, 1], span[m, 2], span[m, 3] = (wq * splats[q, 4], wq * splats[q, 5],
                                                                  wq * splats[q, 6], wq)
            if m == 1:
                _stamp(si, ix, iy, w_ * c0, w_ * c1, w_ * c2, w_, r_r0, r_nrows, r_idx, r_w, buf, row0, row1,
                       touched)
            else:
                span[1, 0], span[1, 1], span[1, 2], span[1, 3] = w_ * c0, w_ * c1, w_ * c2, w_
                span[m + 1, 0], span[m + 1, 1], span[m + 1, 2], span[m + 1, 3] = zero, zero, zero, zero
                _stamp_span(si, ix, m, iy, span, r_r0, r_nrows, r_idx, r_w, buf, row0, row1, touched)
            k += m
            continue
        k += 1
        if lx == x_ and ly == y_:
            _splat_mirrored(x_, y_, r_, w_, c0, c1, c2, 3, blades, lut, ext_lo, ext_hi, buf, pbuf, row0, row1, gw,
                            touched, edge_x, edge_y, 0.0)
        else:
            _splat_mirrored(lx, ly, r_, w_, c0, c1, c2, 1, blades, lut, ext_lo, ext_hi, buf, pbuf, row0, row1, gw,
                            touched, edge_x, edge_y, 0.0)
            if si >= 0:
                _stamp(si, ix, iy, zero, zero, zero, w_, r_r0, r_nrows, r_idx, r_w, buf, row0, row1, touched)
            else:
                _splat_mirrored(x_, y_, r_, w_, c0, c1, c2, 2, blades, lut, ext_lo, ext_hi, buf, pbuf, row0, row1, gw,
                                touched, edge_x, edge_y, 0.0)


@_jit
def _cover_layer(t, stamps, lb, write):
    """Coverage of one radius (see coverage_radius in bokeh_math.h) of the layer's pixels and the next nearer
    layer's: runs of pixels (or of fully covered cells) at once with the layer's stamp, the rest one by one."""
    blades, lut, ext_lo, ext_hi, buf, pbuf, dbuf, touched, row0, row1, gw, edge_x, edge_y = write
    offsets, xs, covers = t.offsets, t.xs, t.covers
    layer = lb.layer
    cr = stamps.r[layer]
    sr0, sx0, sx1 = stamps.r0[layer], stamps.x0[layer], stamps.x1[layer]
    sm, sidx, sw = stamps.m[layer], stamps.idx[layer], stamps.w[layer]
    if lb.level == 0:
        cr_total = _splat_total(0.0, 0.0, cr, blades, lut, ext_lo, ext_hi)  # integer centres
        for src in range(layer, t.cover_last[layer] + 1):
            for y in range(lb.src0, lb.src1 + 1):
                k = offsets[src, y]
                e = offsets[src, y + 1]
                while k < e:
                    x = np.int64(xs[k])
                    if x < sx0 or x > sx1:
                        _splat_mirrored(np.float32(x), np.float32(y), cr, np.float32(1.0), 0.0, 0.0, 0.0, 4, blades,
                                        lut, ext_lo, ext_hi, buf, pbuf, row0, row1, gw, touched, edge_x, edge_y,
                                        cr_total)
                        k += 1
                        continue
                    n = 1
                    while k + n < e and xs[k + n] == x + n and x + n <= sx1:
                        n += 1
                    _cover_run(x, n, y, cr, sr0, sm, sidx, sw, ext_lo, ext_hi, edge_y, dbuf, row0, row1, gw, touched)
                    k += n
        return
    for k in range(t.cover_start[layer, lb.src0], t.cover_start[layer, lb.src1 + 1]):
        if covers[k, 3] > 0.0:
            _cover_run(int(covers[k, 0]), int(covers[k, 3]), int(covers[k, 1]), cr, sr0, sm, sidx, sw, ext_lo,
                       ext_hi, edge_y, dbuf, row0, row1, gw, touched)
        else:
            _splat_mirrored(covers[k, 0], covers[k, 1], cr, covers[k, 2], 0.0, 0.0, 0.0, 4, blades, lut, ext_lo,
                            ext_hi, buf, pbuf, row0, row1, gw, touched, edge_x, edge_y, covers[k, 4])


@_jit
def _splat_fine(t, lb, sc):
    """Fine highlights of a coarse layer: light-only splats on the image grid, into ``sc.fbuf``.  Returns whether
    the layer has any.  (Their markers are integrated in ``_composite_row``, fused with the composite.)"""
    image, dlut, gain, coc = t.image, t.dlut, t.gain, t.coc
    fine_start, fine_x, fine_total = t.fine_start, t.fine_x, t.fine_total
    height, width = coc.shape
    layer = lb.layer
    if lb.level == 0 or not fine_start[layer, height] > fine_start[layer, 0]:
        return False
    blades, lut, ext_lo, ext_hi = t.blades, t.luts[lb.side], t.extents[lb.side, 0], t.extents[lb.side, 1]
    fbuf, fpbuf, ftouched = sc.fbuf, sc.fpbuf, sc.ftouched
    ftouched[:, 0] = 1 << 30
    ftouched[:, 1] = -1
    edge_x, edge_y = np.float32(width - 0.5), np.float32(height - 0.5)
    f0 = max(0, int(math.floor(lb.y0 - lb.reach)))
    f1 = min(height - 1, int(math.ceil(lb.y1 - 1 + lb.reach)))
    for y in range(f0, f1 + 1):
        for k in range(fine_start[layer, y], fine_start[layer, y + 1]):
            x = np.int64(fine_x[k])
            c0, c1, c2 = _colour(image, dlut, gain, coc, y, x)
            _splat_mirrored(np.float32(x), np.float32(y), abs(coc[y, x]), np.float32(1.0), c0, c1, c2, 1, blades, lut,
                            ext_lo, ext_hi, fbuf, fpbuf, lb.y0, lb.y1 - 1, width, ftouched, edge_x, edge_y,
                            fine_total[k])
    return True


@_jit
def _scan_rows(lb, write):
    """Integrate the markers along each touched row (float64 running sums; the run markers in ``dbuf`` are
    differenced once more, and cleared on the way)."""
    buf, pbuf, dbuf, touched = write.buf, write.pbuf, write.dbuf, write.touched
    for k in range(lb.nrows):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        s4 = 0.0
        t = 0.0
        for x in range(touched[k, 0], touched[k, 1] + 1):
            t += dbuf[k, x]
            dbuf[k, x] = 0.0
            s0 += buf[k, x, 0]
            s1 += buf[k, x, 1]
            s2 += buf[k, x, 2]
            s3 += buf[k, x, 3]
            s4 += pbuf[k, x] + t
            buf[k, x, 0] = s0
            buf[k, x, 1] = s1
            buf[k, x, 2] = s2
            buf[k, x, 3] = s3
            pbuf[k, x] = s4


@_jit
def _composite_layer(t, lb, sc, write, has_fine):
    """Composite the layer over the band: level 0 cell by pixel, coarse layers upsampled bilinearly, row by row."""
    if lb.level > 0:
        for y in range(lb.y0, lb.y1):
            _composite_row(t, lb, sc, write, has_fine, y)
        return
    buf, pbuf, touched, acc, behind = write.buf, write.pbuf, write.touched, sc.acc, sc.behind
    width = acc.shape[1]
    for k in range(lb.nrows):
        for x in range(touched[k, 0], min(touched[k, 1], width - 1) + 1):
            _composite(buf[k, x, 0], buf[k, x, 1], buf[k, x, 2], buf[k, x, 3], pbuf[k, x], acc, behind, k, x)


@_jit
def _composite_row(t, lb, sc, write, has_fine, y):
    """Image row ``y`` of a coarse layer: its grid upsampled bilinearly, plus its fine highlights, whose markers are
    integrated here (running sums from the first touched column, as ``splat_fine`` in C++ does) and cleared on the
    way (``clear_layer`` in C++)."""
    buf, pbuf, touched, fbuf, acc, behind = write.buf, write.pbuf, write.touched, sc.fbuf, sc.acc, sc.behind
    txa, txb, tfx = t.xtap_a[lb.level], t.xtap_b[lb.level], t.xtap_f[lb.level]
    s, gw, gh, row0, y0 = lb.s, lb.gw, lb.gh, lb.row0, lb.y0
    width = acc.shape[1]
    one = np.float32(1.0)
    v = (np.float32(y) + np.float32(0.5)) * np.float32(1.0 / s) - np.float32(0.5)
    iy = int(math.floor(v))
    fy = v - np.float32(iy)
    ka = min(max(iy, 0), gh - 1) - row0
    kb = min(max(iy + 1, 0), gh - 1) - row0
    c0 = min(touched[ka, 0], touched[kb, 0])
    c1 = max(touched[ka, 1], touched[kb, 1])
    # Image columns whose bilinear footprint reaches a touched cell.
    x0 = max(0, (c0 - 1) * s)
    x1 = min(width - 1, (c1 + 2) * s) if c1 >= c0 else -1
    fa, fb = 1, 0
    f0 = 0.0
    f1 = 0.0
    f2 = 0.0
    if has_fine:
        fa, fb = sc.ftouched[y - y0, 0], sc.ftouched[y - y0, 1]
        for x in range(fa, min(fb, x0 - 1) + 1):
            f0 += fbuf[y - y0, x, 0]
            f1 += fbuf[y - y0, x, 1]
            f2 += fbuf[y - y0, x, 2]
            fbuf[y - y0, x, 0] = 0.0
            fbuf[y - y0, x, 1] = 0.0
            fbuf[y - y0, x, 2] = 0.0
    for x in range(x0, x1 + 1):
        fx, xa_, xb_ = tfx[x], txa[x], txb[x]
        w00 = (one - fx) * (one - fy)
        w01 = fx * (one - fy)
        w10 = (one - fx) * fy
        w11 = fx * fy
        r0 = w00 * buf[ka, xa_, 0] + w01 * buf[ka, xb_, 0] + w10 * buf[kb, xa_, 0] + w11 * buf[kb, xb_, 0]
        r1 = w00 * buf[ka, xa_, 1] + w01 * buf[ka, xb_, 1] + w10 * buf[kb, xa_, 1] + w11 * buf[kb, xb_, 1]
        r2 = w00 * buf[ka, xa_, 2] + w01 * buf[ka, xb_, 2] + w10 * buf[kb, xa_, 2] + w11 * buf[kb, xb_, 2]
        r3 = w00 * buf[ka, xa_, 3] + w01 * buf[ka, xb_, 3] + w10 * buf[kb, xa_, 3] + w11 * buf[kb, xb_, 3]
        ph = w00 * pbuf[ka, xa_] + w01 * pbuf[ka, xb_] + w10 * pbuf[kb, xa_] + w11 * pbuf[kb, xb_]
        if fa <= x <= fb:
            f0 += fbuf[y - y0, x, 0]
            f1 += fbuf[y - y0, x, 1]
            f2 += fbuf[y - y0, x, 2]
            fbuf[y - y0, x, 0] = 0.0
            fbuf[y - y0, x, 1] = 0.0
            fbuf[y - y0, x, 2] = 0.0
            r0 += np.float32(f0)
            r1 += np.float32(f1)
            r2 += np.float32(f2)
        _composite(r0, r1, r2, r3, ph, acc, behind, y - y0, x)
    for x in range(max(fa, x1 + 1), fb + 1):
        fbuf[y - y0, x, 0] = 0.0
        fbuf[y - y0, x, 1] = 0.0
        fbuf[y - y0, x, 2] = 0.0


@_jit
def _clear_layer(lb, write):
    """Restore the all-zero invariant of ``buf`` and ``pbuf`` (``dbuf`` is cleared by ``_scan_rows``, ``fbuf`` by
    ``_composite_row``)."""
    buf, pbuf, touched = write.buf, write.pbuf, write.touched
    for k in range(lb.nrows):
        for x in range(touched[k, 0], touched[k, 1] + 1):
            buf[k, x, :] = 0.0
            pbuf[k, x] = 0.0


@_jit
def _finish_band(t, far, layer_of, y0, y1, sc, out):
    """What no layer covers is what the photo never showed: light from behind the blurred objects in front (see
    resolve_pixel in bokeh_math.h).  Then encode to sRGB and write the band's output rows: code values rounded
    half up in float32 as the C++ ``from_unit`` (``t.top`` > 0), or [0, 1] floats."""
    image, dlut, gain, coc, encode_lut, acc, behind, top = (t.image, t.dlut, t.gain, t.coc, t.encode_lut, sc.acc,
                                                            sc.behind, t.top)
    height, width = coc.shape
    far_rgb = np.zeros(3, np.float32)
    f0 = max(0, int(math.floor((y0 + 0.5) / 2.0 - 0.5)))   # the band's first level-0 far row
    sc.far0_ok[:] = False
    for y in range(y0, y1):
        k = y - y0
        for x in range(width):
            far_w = 0.0
            far_rgb[:] = 0.0
            a3 = acc[k, x, 3]
            kb = np.float32(1.0) / a3 if a3 > 1e-12 else np.float32(0.0)
            if 1.0 - a3 > 1e-4 and 1.0 - behind[k, x, 3] * kb > 1e-4:
                far_w = _far_content(far, sc, f0, layer_of, image, dlut, gain, coc, x, y, depth_position(coc[y, x]),
                                     abs(coc[y, x]), far_rgb)
            own0 = own1 = own2 = np.float32(0.0)
            if not a3 > 1e-12:   # only read then
                own0, own1, own2 = _colour(image, dlut, gain, coc, y, x)
            r0, r1, r2 = _resolve_pixel(acc, behind, k, x, far_w, far_rgb, own0, own1, own2)
            _encode(r0, encode_lut, top, out, y, x, 0)
            _encode(r1, encode_lut, top, out, y, x, 1)
            _encode(r2, encode_lut, top, out, y, x, 2)


@_jit(inline=True)
def _encode(v, encode_lut, top, out, y, x, c):
    """Linear ``v`` (float32) to sRGB into ``out[y, x, c]``, in float32 as the C++ ``finish_band``: a code value
    rounded half up as ``from_unit`` (``top`` > 0: the largest), or a [0, 1] float."""
    zero, one = np.float32(0.0), np.float32(1.0)
    e = _lut_lerp(encode_lut, ENCODE_LUT_SIZE, math.sqrt(min(max(v, zero), one)))
    u = min(max(e, zero), one)
    if top > 0:
        out[y, x, c] = int(u * top + np.float32(0.5))
    else:
        out[y, x, c] = u


def _decode_table(dtype: np.dtype) -> np.ndarray:
    """The sRGB decoding table of an image dtype (see :func:`_decode`): exact per code value for integers,
    DECODE_LUT_SIZE + 1 samples on [0, 1] for float32."""
    from ..color import srgb_to_linear

    n = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(np.dtype(dtype), DECODE_LUT_SIZE)
    return srgb_to_linear(np.arange(n + 1, dtype=np.float32) / np.float32(n))


STAMP_ROWS = 24   # rows of a stamp (Stamps, Radii): 2 * 8 (kMaxGridRadius) + 2, with room
MAX_RADII = 4096  # most splats in a layer's Radii table (StampTable::kMaxStamps)


def _radii(nlayers, nbins, layer_count, levels, sides, blades, luts, extents) -> Radii:
    """The :class:`Radii` tables of every out-of-focus layer with pixels: radii over its bin in grid units, and
    one grid step beyond each end (a coarse cell's rounded mean may land there)."""
    edges = km.LAYER_EDGES
    key0 = np.zeros(nlayers, np.int64)
    count = np.zeros(nlayers, np.int64)
    for layer in range(nlayers):
        if layer == nbins or not layer_count[layer]:
            continue
        j = km.layer_bin(layer, nbins)
        inv_s = np.float32(1.0 / (1 << int(levels[layer])))
        k0 = max(1, int(math.floor(edges[j] * inv_s * np.float32(km.COC_STEPS_PER_PX))) - 1)
        k1 = int(math.ceil(edges[j + 1] * inv_s * np.float32(km.COC_STEPS_PER_PX))) + 2
        if k1 - k0 <= MAX_RADII:   # (only radii beyond any the renderer accepts exceed it)
            key0[layer], count[layer] = k0, k1 - k0
    base = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    n = int(count.sum())
    tables = Radii(key0, base, count, np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.int64),
                   np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
                   np.zeros((n, STAMP_ROWS, 4), np.int64), np.zeros((n, STAMP_ROWS, 4), np.float32))
    for layer in range(nlayers):
        if count[layer]:
            side = sides[layer]
            sl = slice(base[layer], base[layer] + count[layer])
            _build_radii(key0[layer], blades, luts[side], extents[side, 0], extents[side, 1], tables.r[sl],
                         tables.total[sl], tables.r0[sl], tables.nrows[sl], tables.lo[sl], tables.hi[sl],
                         tables.idx[sl], tables.w[sl])
    return tables


def _stamps(nlayers, nbins, layer_count, levels, cover_rs, sides, height, width, blades, luts, extents) -> Stamps:
    """The coverage stamp of every out-of-focus layer (see :class:`Stamps`)."""
    stamp_r = np.zeros(nlayers, np.float32)
    stamp_r0 = np.zeros(nlayers, np.int64)
    stamp_x0 = np.zeros(nlayers, np.int64)
    stamp_x1 = np.full(nlayers, -1, np.int64)
    stamp_m = np.zeros((nlayers, STAMP_ROWS), np.int64)
    stamp_idx = np.zeros((nlayers, STAMP_ROWS, 4), np.int64)
    stamp_w = np.zeros((nlayers, STAMP_ROWS, 4), np.float32)
    for layer in range(nlayers):
        if layer == nbins or not layer_count[layer]:
            continue
        s = 1 << int(levels[layer])
        side = sides[layer]
        r = np.float32(cover_rs[layer] / np.float32(s))
        total = _splat_total(0.0, 0.0, r, blades, luts[side], extents[side, 0], extents[side, 1])
        scale = 1.0 / total if total > 0 else 0.0
        gw = (width + s - 1) // s
        stamp_r[layer] = r
        stamp_r0[layer], stamp_x0[layer], stamp_x1[layer] = _build_stamp(
            r, scale, gw, np.float32(width / s - 0.5), blades, luts[side], extents[side, 0], extents[side, 1],
            stamp_m[layer], stamp_idx[layer], stamp_w[layer])
    return Stamps(stamp_r, stamp_r0, stamp_x0, stamp_x1, stamp_m, stamp_idx, stamp_w)


def _x_taps(max_level: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear upsampling taps of grid levels 0..max_level along x (``XTaps`` in render_cpu.cpp): left and right
    grid column of each image column and the right one's weight, in float32 as there."""
    x = np.arange(width, dtype=np.float32)
    xa = np.zeros((max_level + 1, width), np.int64)
    xb = np.zeros((max_level + 1, width), np.int64)
    fx = np.zeros((max_level + 1, width), np.float32)
    for level in range(1, max_level + 1):
        s = 1 << level
        gw = (width + s - 1) // s
        u = (x + np.float32(0.5)) * np.float32(1.0 / s) - np.float32(0.5)
        ix = np.floor(u)
        fx[level] = u - ix
        xa[level] = np.clip(ix, 0, gw - 1)
        xb[level] = np.clip(ix + 1, 0, gw - 1)
    return xa, xb, fx


def _column_dtype(width: int) -> np.dtype:
    """The narrowest integer type of the pixel buckets' columns: uint16 up to 65536 columns (half the memory of
    the int32 the C++ uses; a 12 MP bucket table is 24 MB instead of 48 MB), int32 beyond."""
    return np.dtype(np.uint16) if width <= 1 << 16 else np.dtype(np.int32)


def _row_starts(counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Start index of each (layer, grid row) in a flat table, given the counts (one more column: the end)."""
    nlayers, rows = counts.shape
    flat = np.concatenate([[0], np.cumsum(counts.ravel())])
    start = np.empty((nlayers, rows + 1), np.int64)
    start[:, :rows] = flat[:-1].reshape(nlayers, rows)
    start[:, rows] = start[:, rows - 1] + counts[:, -1]
    return start, int(flat[-1])


# Numba's "workqueue" threading layer (the one left where neither TBB nor
# OpenMP loads) aborts the process when two Python threads enter parallel code
# at once; renders are serialised under it.  Which layer runs is known only
# after the first parallel call, so that call is serialised too.
_WORKQUEUE_LOCK = threading.Lock()
_serialise: bool | None = None


def _parallel_section():
    """A context in which this thread may run the parallel kernels."""
    return contextlib.nullcontext() if _serialise is False else _WORKQUEUE_LOCK


def _note_threading_layer() -> None:
    global _serialise
    try:
        _serialise = numba.threading_layer() == "workqueue"
    except ValueError:  # no parallel region has run yet
        pass


def render_numba(image: np.ndarray, coc: np.ndarray, aperture: Aperture, gain: np.ndarray | None,
                 threads: int) -> np.ndarray:
    """Render with the Numba kernels; same contract as the ``cpp`` backend.

    Safe to call from several Python threads at once: under Numba's
    ``workqueue`` threading layer, which is not, calls run one at a time.
    """
    with _parallel_section():
        out = _render_numba(image, coc, aperture, gain, threads)
    if _serialise is None:
        _note_threading_layer()
    return out


def _render_numba(image: np.ndarray, coc: np.ndarray, aperture: Aperture, gain: np.ndarray | None,
                  threads: int) -> np.ndarray:
    from ..color import linear_to_srgb

    height, width = coc.shape
    edges = km.LAYER_EDGES
    max_r = max(abs(float(coc.max())), abs(float(coc.min())))   # (no |coc| temporary)
    nbins = km.radius_bin(max_r, km.MAX_BINS_PER_SIDE, edges) + 1 if max_r >= 0.5 else 0
    nlayers = 2 * nbins + 1
    layer_of = np.empty((height, width), np.uint8)   # nlayers <= 2 * MAX_BINS_PER_SIDE + 1 < 256
    counts = np.zeros((nlayers, height), np.int64)
    units = np.zeros((nlayers, height), np.int64)
    dlut = _decode_table(image.dtype)
    gain_map = np.zeros((0, 0), np.float32) if gain is None else np.asarray(gain, np.float32)
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        # (the table up to the largest radius, at most 1024 px: beyond, or NaN, radius_bin itself)
        bins = _radius_bins(nbins, edges, int((max_r if max_r < 1024.0 else 1024.0) * km.COC_STEPS_PER_PX) + 2)
        _prepare(coc, nbins, edges, bins, layer_of, counts, units)
        starts = np.concatenate([[0], np.cumsum(counts.ravel())[:-1]]).reshape(nlayers, height)
        offsets = np.empty((nlayers, height + 1), np.int64)
        offsets[:, :height] = starts
        offsets[:, height] = starts[:, -1] + counts[:, -1]
        xs = np.empty(height * width, _column_dtype(width))
        _fill_buckets(layer_of, offsets, xs)

        layer_count = counts.sum(axis=1)
        rows_present = counts > 0
        layer_ymin = np.where(rows_present.any(axis=1), rows_present.argmax(axis=1), 1 << 30)
        layer_ymax = np.where(rows_present.any(axis=1), height - 1 - rows_present[:, ::-1].argmax(axis=1), -1)
        levels = np.array([km.layer_level(l, nbins, edges) for l in range(nlayers)], np.int64)
        r_his = np.array([0.0 if l == nbins else edges[km.layer_bin(l, nbins) + 1] for l in range(nlayers)],
                         np.float32)
        luts, extents = aperture.kernel_tables()
        sides = np.array([1 if l > nbins else 0 for l in range(nlayers)], np.int64)
        coarse = np.array([l for l in range(nlayers) if layer_count[l] and levels[l] > 0], np.int64)
        # Highlights of coarse layers with a full-resolution light splat (only boosted pixels qualify).
        fine_bin = np.full(nlayers, km.FINE_LIGHT_BINS, np.int64)
        fine_counts = np.zeros((nlayers, height), np.int64)
        if coarse.size and gain is not None:
            _fine_lights(coarse, r_his, image, dlut, gain_map, coc, offsets, xs, fine_bin, fine_counts)
        fine_start, total = _row_starts(fine_counts)
        fine_x = np.zeros(total, np.int32)
        fine_total = np.zeros(total, np.float32)
        if total:
            _fill_fine(coarse, sides, image, dlut, gain_map, coc, offsets, xs, fine_bin, aperture.blades, luts,
                       extents, fine_start, fine_x, fine_total)
        max_gh = height + 1
        grid_counts = np.zeros((nlayers, max_gh), np.int64)
        if coarse.size:
            _count_coarse(coarse, levels, offsets, xs, height, width, grid_counts)
        grid_start, total = _row_starts(grid_counts)
        splats = np.empty((total, 9), np.float32)
        if coarse.size:
            _build_coarse(coarse, levels, image, dlut, gain_map, coc, fine_bin, offsets, xs, grid_start, splats)
        encode_lut = linear_to_srgb(np.square(np.arange(ENCODE_LUT_SIZE + 1, dtype=np.float32)
                                              / np.float32(ENCODE_LUT_SIZE)))
        # Coverage of one radius of each out-of-focus layer's pixels and the next
        # nearer layer's (see coverage_radius in bokeh_math.h): the last source layer of each.
        layer_units = units.sum(axis=1)
        cover_last = np.array([l + 1 if l + 1 < nlayers and layer_count[l + 1] > 0 else l for l in range(nlayers)],
                              np.int64)
        cover_rs = np.array([km.coverage_radius(layer_units[l], layer_count[l]) if l != nbins and layer_count[l]
                             else 0.0 for l in range(nlayers)], np.float32)
        stamps = _stamps(
            nlayers, nbins, layer_count, levels, cover_rs, sides, height, width, aperture.blades, luts, extents)
        radii = _radii(nlayers, nbins, layer_count, levels, sides, aperture.blades, luts, extents)
        coarse_cv = np.array([l for l in range(nlayers) if l != nbins and layer_count[l] and levels[l] > 0], np.int64)
        cv_counts = np.zeros((nlayers, max_gh), np.int64)
        if coarse_cv.size:
            _count_covers(coarse_cv, cover_last, levels, offsets, xs, height, width, stamps.r, stamps.x0, stamps.x1,
                          extents, sides, cv_counts)
        cover_start, total = _row_starts(cv_counts)
        covers = np.empty((total, 5), np.float32)
        if coarse_cv.size:
            _build_covers(coarse_cv, cover_last, levels, offsets, xs, height, width, stamps.r, stamps.x0, stamps.x1,
                          sides, aperture.blades, luts, extents, cover_start, covers)

        far = _far_pyramid(layer_of, image, dlut, gain_map, coc)
        top = np.float32(np.iinfo(image.dtype).max if image.dtype != np.float32 else 0.0)
        tables = Tables(image, dlut, gain_map, coc, nbins, layer_count, layer_ymin, layer_ymax, levels, r_his, offsets,
                        xs, grid_start, splats, cover_last, cover_start, covers, fine_start, fine_x, fine_total,
                        aperture.blades, luts, extents, encode_lut, *_x_taps(int(levels.max()), width), top)
        out = np.empty(image.shape, image.dtype)
        _render_bands(tables, stamps, radii, far, layer_of, out)
    finally:
        numba.set_num_threads(previous)
    return out
