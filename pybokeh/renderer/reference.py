"""Plain NumPy reference of the layered scatter renderer.

A direct, unoptimised transcription of the algorithm in
``csrc/render_cpu.cpp`` (whole-image layer buffers in float64, no bands, no
threads, no lookup tables): the compiled and Numba backends are tested
against it.  It is slow (Python loop over splats); use it on small images.
"""
from __future__ import annotations

import math

import numpy as np

from ..aperture import Aperture
from ..color import linear_to_srgb, srgb_to_linear
from . import kernel_math as km


def unit_range(image: np.ndarray) -> np.ndarray:
    """Image values as float32 sRGB in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535.0)
    return image.astype(np.float32)


def quantize(unit: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Inverse of :func:`unit_range` (round half up, like the kernels)."""
    unit = np.clip(unit, 0.0, 1.0)
    if dtype == np.uint8:
        return np.floor(unit * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
    if dtype == np.uint16:
        return np.floor(unit * np.float32(65535.0) + np.float32(0.5)).astype(np.uint16)
    return unit.astype(np.float32)


def linear_colors(image: np.ndarray, coc: np.ndarray, highlight_gain: np.ndarray | None) -> np.ndarray:
    """Decoded, highlight-boosted linear colour of every pixel, H×W×3 float64.

    Out-of-focus pixels are multiplied by ``1 + highlight_gain * clamp(|CoC| -
    0.5, 0, 1)`` (gain per pixel, H×W, nonzero only at clipped pixels, see
    :mod:`pybokeh.highlights`; None for no boost).
    """
    lin = srgb_to_linear(unit_range(image)).astype(np.float64)
    if highlight_gain is None:
        return lin
    d = np.clip(np.abs(coc) - 0.5, 0.0, 1.0)
    g = np.maximum(np.asarray(highlight_gain, np.float64), 0.0)
    return lin * (1.0 + g * d)[..., None]


def layer_map(coc: np.ndarray) -> tuple[np.ndarray, int]:
    """Layer index of every pixel and the number of bins per side."""
    edges = km.LAYER_EDGES
    max_r = float(np.abs(coc).max())
    nbins = km.radius_bin(max_r, km.MAX_BINS_PER_SIDE, edges) + 1 if max_r >= 0.5 else 0
    layers = np.array([km.layer_index(float(c), nbins, edges) for c in coc.ravel()],
                      dtype=np.int32).reshape(coc.shape)
    return layers, nbins


def grid_cells(mask, level):
    """The pixels of ``mask`` grouped by cell of a grid 2^level coarser, row by row.

    Yields ``(py, px, u, v, cover)``: pixel rows and columns, their centres in
    grid coordinates, and the fraction of the cell (inside the image) they cover.
    """
    s = 1 << level
    h, w = mask.shape
    cells: dict[tuple[int, int], list] = {}
    for y, x in zip(*np.nonzero(mask)):
        cells.setdefault((y // s, x // s), []).append((y, x))
    for (gy, gx), pix in sorted(cells.items()):
        py = np.array([p[0] for p in pix])
        px = np.array([p[1] for p in pix])
        area = min(s, w - gx * s) * min(s, h - gy * s)
        yield py, px, (px + 0.5) / s - 0.5, (py + 0.5) / s - 0.5, len(pix) / area


def fine_lights(mask, lin, r_hi):
    """The pixels of a coarse layer whose light keeps a full-resolution splat (H×W bool).

    See the "crisp highlights" section of bokeh_math.h: highlights whose max
    linear channel (float32) reaches the smallest power of two >= 2 that keeps
    their count within the layer's capacity.
    """
    m = lin.astype(np.float32).max(axis=2)
    bins = np.zeros(mask.shape, np.int64)
    for y, x in zip(*np.nonzero(mask & (m >= km.FINE_LIGHT_MIN))):
        bins[y, x] = km.fine_light_bin(float(m[y, x]))
    counts = np.bincount(bins[mask], minlength=km.FINE_LIGHT_BINS)
    j = km.fine_light_threshold(counts, km.fine_light_capacity(*mask.shape, r_hi))
    return mask & (bins >= j)


def layer_splats(mask, lin, coc, level, fine=None):
    """Splats ``(x, y, r, w, rgb, channels)`` of one layer on its grid (pixels, or coarse-cell aggregates).

    ``channels`` says what a splat carries: "both" (a pixel), or for a coarse
    cell one "coverage" splat at the pixels' centroid and one "light" splat at
    their brightness-weighted centroid.  In a coarse layer the pixels in
    ``fine`` (see :func:`fine_lights`) count with no light: theirs is splatted
    on the image grid (:func:`fine_light_splats`).
    """
    if level == 0:
        ys, xs = np.nonzero(mask)
        return [(float(x), float(y), abs(float(coc[y, x])), 1.0, lin[y, x], "both") for y, x in zip(ys, xs)]
    if fine is not None and fine.any():
        lin = np.where(fine[..., None], 0.0, lin)
    s = 1 << level
    splats = []
    for py, px, u, v, cover in grid_cells(mask, level):
        weight = lin[py, px].sum(axis=1) + 1e-3  # km.centroid_weight
        radius = float(km.on_radius_grid(np.mean(np.abs(coc[py, px])) / s))
        rgb = lin[py, px].mean(axis=0)
        # Coverage at the centroid, light at the brightness-weighted centroid
        # when that is far enough away to matter.
        x, y = np.float32(u.mean()), np.float32(v.mean())
        lx, ly = np.float32(np.average(u, weights=weight)), np.float32(np.average(v, weights=weight))
        if km.light_centroid_moves(x, y, lx, ly):
            splats.append((float(x), float(y), radius, cover, rgb, "coverage"))
            splats.append((float(lx), float(ly), radius, cover, rgb, "light"))
        else:
            splats.append((float(x), float(y), radius, cover, rgb, "both"))
    return splats


def fine_light_splats(fine, lin, coc):
    """Light-only splats of a coarse layer's fine highlights on the image grid."""
    ys, xs = np.nonzero(fine)
    return [(float(x), float(y), abs(float(coc[y, x])), 1.0, lin[y, x], "light") for y, x in zip(ys, xs)]


def mirrored(cx, cy, r, lo, hi, edge_x, edge_y):
    """A splat's centre and its mirror images across the image edges it crosses.

    The scene is taken to continue mirrored beyond the frame (left/top edges
    at -0.5, right/bottom at ``edge_x``/``edge_y``, grid units).
    """
    left, right = cx - r < -0.5, cx + r > edge_x
    top, bottom = cy + r * lo < -0.5, cy + r * hi > edge_y
    centres = [(cx, cy)]
    mx = -1.0 - cx if left else 2.0 * edge_x - cx
    my = -1.0 - cy if top else 2.0 * edge_y - cy
    if left or right:
        centres.append((mx, cy))
    if top or bottom:
        centres.append((cx, my))
    if (left or right) and (top or bottom):
        centres.append((mx, my))
    return centres


def splat_layer(splats, grid_h, grid_w, aperture: Aperture, edge_x: float, edge_y: float) -> np.ndarray:
    """Accumulate splats (and their mirror images) on a ``grid_h × grid_w`` grid: premultiplied RGB + coverage."""
    diff = np.zeros((grid_h, grid_w + 1, 4))
    blades, lut, lo, hi = aperture.blades, aperture.lut, aperture.ext_lo, aperture.ext_hi
    for centre_x, centre_y, r, w, rgb, channels in splats:
        total = _rows(centre_x, centre_y, r, blades, lut, lo, hi)[1]   # one normalisation for all copies
        for cx, cy in mirrored(centre_x, centre_y, r, lo, hi, edge_x, edge_y):
            _splat(diff, cx, cy, r, w, rgb, channels, blades, lut, lo, hi, grid_h, grid_w, total)
    return np.cumsum(diff, axis=1)[:, :grid_w]


def _rows(cx, cy, r, blades, lut, lo, hi):
    """The rows ``(row, xa, xb, vy)`` of a splat and its total (sum of vy × span)."""
    r0, r1 = km.splat_rows(cy, r, lo, hi)
    rows = []
    total = 0.0
    for row in range(r0, r1 + 1):
        ok, xa, xb, vy = km.splat_row(blades, lut, lo, hi, cx, cy, r, row)
        if ok:
            rows.append((row, xa, xb, vy))
            total += vy * (xb - xa)
    return rows, total


def _splat(diff, cx, cy, r, w, rgb, channels, blades, lut, lo, hi, grid_h, grid_w, total):
    """Difference markers of one aperture splat, normalised by ``total``."""
    rows = _rows(cx, cy, r, blades, lut, lo, hi)[0]
    if not total > 0:
        return
    value = np.concatenate([np.asarray(rgb, dtype=np.float64), [1.0]])
    if channels == "light":
        value[3] = 0.0
    elif channels == "coverage":
        value[:3] = 0.0
    for row, xa, xb, vy in rows:
        if not 0 <= row < grid_h:
            continue
        m, *marks = km.span_markers(xa, xb, grid_w)
        for q in range(m):
            diff[row, marks[2 * q]] += marks[2 * q + 1] * (w * vy / total) * value


def upsample(grid: np.ndarray, level: int, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of a coarse layer grid to the image (edge cells clamped)."""
    s = 1 << level
    gh, gw = grid.shape[:2]
    v = (np.arange(height) + 0.5) / s - 0.5
    u = (np.arange(width) + 0.5) / s - 0.5
    iy, ix = np.floor(v).astype(int), np.floor(u).astype(int)
    fy, fx = (v - iy)[:, None, None], (u - ix)[None, :, None]
    ya, yb = np.clip(iy, 0, gh - 1), np.clip(iy + 1, 0, gh - 1)
    xa, xb = np.clip(ix, 0, gw - 1), np.clip(ix + 1, 0, gw - 1)
    return ((1 - fx) * (1 - fy) * grid[ya][:, xa] + fx * (1 - fy) * grid[ya][:, xb]
            + (1 - fx) * fy * grid[yb][:, xa] + fx * fy * grid[yb][:, xb])


def coverage_splats(mask: np.ndarray, level: int, radius: float):
    """Coverage-only splats of the pixels in ``mask`` on a layer's grid, all of one radius.

    ``mask``: the layer's own pixels and the next nearer layer's (see
    ``composite_over`` in bokeh_math.h); radius: the layer's mid radius in
    fine pixels.  Coarse grids take one splat per cell, at the pixels' centroid.
    """
    if level == 0:
        ys, xs = np.nonzero(mask)
        return [(float(x), float(y), radius, 1.0, (0.0, 0.0, 0.0), "coverage") for y, x in zip(ys, xs)]
    return [(float(u.mean()), float(v.mean()), radius / (1 << level), cover, (0.0, 0.0, 0.0), "coverage")
            for _, _, u, v, cover in grid_cells(mask, level)]


def composite_over(acc: np.ndarray, behind: np.ndarray, layer: np.ndarray, cover: np.ndarray) -> None:
    """Back-to-front "over" of a layer onto ``acc`` (in place).

    ``layer``: premultiplied RGB and own coverage ``a`` (splats of each pixel's
    own radius); ``cover``: coverage ``p`` of the layer's pixels and the next
    nearer layer's, splatted with one radius.  The layer's colour is its mean
    ``rgb / a``, its alpha ``max(a, min(p, 1) * min(a / 0.05, 1))`` (1 where
    ``a >= 1``), see ``composite_over`` in bokeh_math.h.  ``behind`` (in
    place) accumulates what lies behind the visible layers: each layer adds
    ``acc`` as it stood before it, with the layer's alpha.
    """
    a = layer[..., 3]
    live = a > 1e-7
    trust = np.clip(a / km.COVER_TRUST, 0.0, 1.0)
    alpha = np.where(a >= 1.0, 1.0, np.maximum(a, trust * np.clip(cover, 0.0, 1.0)))
    k = alpha / np.maximum(a, 1e-30)
    t = (1.0 - alpha)[..., None]
    new = np.concatenate([k[..., None] * layer[..., :3], alpha[..., None]], axis=-1) + t * acc
    nb = alpha[..., None] * acc + t * behind
    behind[live] = nb[live]
    acc[live] = new[live]


def render_reference(image: np.ndarray, coc: np.ndarray, aperture: Aperture,
                     highlight_gain: np.ndarray | None = None) -> np.ndarray:
    """Render lens blur with the reference algorithm.

    Parameters
    ----------
    image : numpy.ndarray
        H×W×3 sRGB, uint8, uint16 or float32 in [0, 1].
    coc : numpy.ndarray
        H×W float32 signed CoC radius in pixels.
    aperture : Aperture
    highlight_gain : numpy.ndarray or None
        H×W float32 highlight gain per pixel (see :func:`linear_colors`).

    Returns
    -------
    numpy.ndarray
        H×W×3, the image's dtype.
    """
    height, width = coc.shape
    lin = linear_colors(image, coc, highlight_gain)
    layers, nbins = layer_map(coc)
    coc_units = km.coc_units(np.abs(coc))   # for the layers' coverage radii
    acc = np.zeros((height, width, 4))
    behind = np.zeros((height, width, 4))   # what lies behind the visible layers (see composite_over)
    for layer in range(2 * nbins + 1):
        mask = layers == layer
        if not mask.any():
            continue
        if layer == nbins:
            behind[mask] = acc[mask]     # composite_over with alpha 1
            acc[mask, :3] = lin[mask]
            acc[mask, 3] = 1.0
            continue
        level = km.layer_level(layer, nbins, km.LAYER_EDGES)
        s = 1 << level
        gh, gw = math.ceil(height / s), math.ceil(width / s)
        shape = aperture.reflected if layer > nbins else aperture   # near side: point-reflected
        edges = (width / s - 0.5, height / s - 0.5)
        fine = fine_lights(mask, lin, km.LAYER_EDGES[km.layer_bin(layer, nbins) + 1]) if level else None
        grid = splat_layer(layer_splats(mask, lin, coc, level, fine), gh, gw, shape, *edges)
        covered = mask | (layers == layer + 1)   # the layer continues behind the next nearer one
        radius = km.coverage_radius(int(coc_units[mask].sum()), int(mask.sum()))
        cover = splat_layer(coverage_splats(covered, level, radius), gh, gw, shape, *edges)[..., 3]
        if level:
            grid = upsample(grid, level, height, width)
            cover = upsample(cover[..., None], level, height, width)[..., 0]
            if fine.any():
                splats = fine_light_splats(fine, lin, coc)
                grid[..., :3] += splat_layer(splats, height, width, shape, width - 0.5, height - 0.5)[..., :3]
        composite_over(acc, behind, grid, cover)
    return quantize(linear_to_srgb(resolve_holes(acc, behind, layers, lin, coc).astype(np.float32)), image.dtype)


def far_pyramid(layers: np.ndarray, lin: np.ndarray, coc: np.ndarray):
    """Farthest-content pyramid: per level (cells of 2, 4, 8, ... px) the
    farthest layer present in each cell, how many of the cell's pixels hold it,
    their mean colour, highlight boost undone (see ``far_colour`` in
    bokeh_math.h), and their mean depth position (``km.depth_position``).
    Returns ``[(layer, count, rgb, depth), ...]``."""
    levels = []
    lay = layers.astype(np.int64)
    m = lin.astype(np.float32).max(axis=2)
    rgb = lin / np.maximum(m, np.float32(1.0))[..., None].astype(np.float64)   # far_colour (bokeh_math.h)
    cnt = np.ones(lay.shape)
    dep = np.vectorize(km.depth_position)(coc).astype(np.float64)
    while lay.shape[0] > 1 or lay.shape[1] > 1:
        h, w = lay.shape
        hh, wh = (h + 1) // 2, (w + 1) // 2

        def kids(a, fill):
            pad = np.full((2 * hh, 2 * wh) + a.shape[2:], fill, dtype=a.dtype)
            pad[:h, :w] = a
            return pad.reshape(hh, 2, wh, 2, *a.shape[2:]).swapaxes(1, 2).reshape(hh, wh, 4, *a.shape[2:])

        kids_l = kids(lay, np.iinfo(np.int64).max)
        kids_n = kids(cnt, 0.0)
        best = kids_l.min(axis=2)
        pick = (kids_l == best[..., None]) * kids_n
        lay = best
        cnt = pick.sum(axis=2)
        rgb = (kids(rgb, 0.0) * pick[..., None]).sum(axis=2) / cnt[..., None]
        dep = (kids(dep, 0.0) * pick).sum(axis=2) / cnt
        levels.append((lay, cnt, rgb, dep))
    return levels


def far_content(x, y, depth, abs_coc, pyramid, shape):
    """The farthest content near a pixel of depth position ``depth``, premultiplied by its weight, and the
    weight in [0, 1] (see ``far_content`` in bokeh_math.h)."""
    max_cell = 4.0 * max(abs_coc, 2.0)
    height, width = shape
    fill, left = np.zeros(3), 1.0
    for k, (_, cnt, rgb, dep) in enumerate(pyramid):
        s = float(2 << k)
        g = km.far_level_weight(max_cell, s)
        if not g > 0.0:
            break
        u, v = (x + 0.5) / s - 0.5, (y + 0.5) / s - 0.5
        ix, iy = math.floor(u), math.floor(v)
        fx, fy = u - ix, v - iy
        total, wsum = np.zeros(3), 0.0
        for dy in (0, 1):
            for dx in (0, 1):
                cx = min(max(ix + dx, 0), cnt.shape[1] - 1)
                cy = min(max(iy + dy, 0), cnt.shape[0] - 1)
                farther = km.far_depth_weight(depth, dep[cy, cx])
                if not farther > 0.0:
                    continue
                area = min(s, width - cx * s) * min(s, height - cy * s)
                wgt = (fx if dx else 1 - fx) * (fy if dy else 1 - fy) * (cnt[cy, cx] / area) * farther
                total += wgt * rgb[cy, cx]
                wsum += wgt
        if wsum > 0:
            c = g * min(1.0, wsum / km.FAR_CONFIDENT)
            fill += left * c * total / wsum
            left *= 1.0 - c
            if not left > 0.0:
                break
    return fill, 1.0 - left


def resolve_holes(acc, behind, layers, lin, coc) -> np.ndarray:
    """Final linear colour per pixel (see ``resolve_pixel`` in bokeh_math.h).

    What the composite leaves uncovered is filled with what lies behind the
    visible layers (premultiplied, normalised by the coverage), what that
    leaves with the farthest content nearby, which in turn fades (as it thins
    out) into the normalised composite.
    """
    alpha = acc[..., 3:4]
    norm = np.where(alpha > 1e-12, acc[..., :3] / np.maximum(alpha, 1e-30), lin)
    hole = 1.0 - acc[..., 3]
    behind = np.where(alpha > 1e-12, behind / np.maximum(alpha, 1e-30), 0.0)
    wb = np.clip(behind[..., 3], 0.0, 1.0)
    far = np.zeros_like(norm)
    fw = np.zeros(hole.shape)
    pyramid = far_pyramid(layers, lin, coc)
    for y, x in zip(*np.nonzero((hole > 1e-4) & (1.0 - wb > 1e-4))):
        c = float(coc[y, x])
        far[y, x], fw[y, x] = far_content(x, y, km.depth_position(c), abs(c), pyramid, layers.shape)
    h, w_, f = hole[..., None], wb[..., None], fw[..., None]
    filled = acc[..., :3] + h * (behind[..., :3] + (1.0 - w_) * (far + (1.0 - f) * norm))
    return np.where(h > 1e-4, filled, norm)
