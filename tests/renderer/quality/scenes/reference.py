"""The exact reference: thin-lens image averaged over the aperture; pinhole photo; depth.

Exact reference
---------------
Seen from aperture point ``d`` (unit circumradius), a point whose pinhole image is at
pixel ``u`` and whose CoC radius is ``r`` appears at ``u + d * r``.  A fronto-parallel
layer therefore appears shifted by ``d * r(z)``; a planar layer (``r`` affine in
``u``, see :mod:`scenes.model`) appears under the affine map ``u -> u + d r(u)``,
which is inverted in closed form (Sherman-Morrison) for every pixel.  The surfaces
seen from ``d`` are composited front to back with "over" in linear light (HDR
values kept): in list order when the layers' depth ranges do not interleave,
otherwise sorted per pixel by the depth each one shows there.  The images are
averaged over the aperture, then clipped to [0, 1], sRGB-encoded and quantised to
8 bits like the photo.

Orientation.  With signed ``r`` this shift already flips the bokeh shape between
the two sides of the focus plane: the footprint of a point is ``r * A`` for the
sampled aperture set ``A``, so points in front (``r > 0``) and behind (``r < 0``)
show point-reflected shapes, as in a real lens.  Physically, points *behind* the
focus plane show the aperture as the photographer sees it through the camera, so
we take the contract's polygon ``P`` (circumradius 1, a vertex straight up at
``rotation_deg = 0``, rotated counter-clockwise as seen in the image) as the
footprint shape of background points and sample ``A = -P``.  Foreground points
then show ``-P`` (for odd blade counts a vertex points down).  Disks and even
blade counts are point-symmetric, so the convention does not matter for them.

Quadrature.  The aperture integral is done on a square grid of cells of side ``h``
(aperture units; ``h * max|r| = cell_px`` pixels, 1 by default), each weighted by
its area inside the aperture (weights sum to 1, so energy is exactly conserved).
Cells straddling the rim are split 2 x 2 and the remaining rim cells use the
centroid of their inside part.  Point-sampling the layers at the grid shifts would
alias (a point light would become a lattice of dots), so each cell is integrated:
a layer is read as the mean of its bilinear interpolant over a box of ``h * |r|``
pixels around the displaced position (exact per-shift weights; on a planar layer
``r`` is the one of the point seen, per pixel, and the box is the first-order
footprint of the cell).  For an unoccluded fronto-parallel layer that is the exact
aperture convolution except at the rim; where layers occlude each other, the cell
mean of a product is replaced by the product of cell means, a second-order error at
occlusion edges, largest when a light sits behind a thin occluder moving almost with
it.  Rendering with a second, finer and offset grid measures it
(``tests/renderer/quality/test_reference_scenes.py``, ``bench/quality_scenes.py --mc``).
"""
from __future__ import annotations

import math

import numpy as np

from .color import linear_to_srgb8
from .model import Layer, Scene, check_blades, inside_aperture

#: Cell size of the aperture quadrature grid, in pixels at the largest |CoC|.
DEFAULT_CELL_PX = 1.0


def aperture_samples(
    blades: int,
    rotation_deg: float,
    cell: float,
    offset=(0.5, 0.5),
    rim_levels: int = 1,
    supersample: int = 8,
):
    """Quadrature cells over the sampled aperture ``A = -P``.

    A square grid of ``cell``-sized cells covers the aperture.  Cells fully inside
    keep their centre; cells straddling the rim are split 2 x 2, ``rim_levels``
    times; rim cells left at the finest level take the centroid of their part
    inside, so the rim lands where it should on average.

    Parameters
    ----------
    cell : float
        Grid spacing in aperture units (circumradius 1).
    offset : (float, float)
        Lattice offset in cell units, in [0, 1): cell centres sit at
        ``(i + offset - 0.5) * cell``; (0.5, 0.5) puts one at the aperture centre.
    rim_levels : int
        How many times rim cells are subdivided.
    supersample : int
        Sub-samples per axis and cell used to measure the part of a cell inside.

    Returns
    -------
    d : ndarray float64 (S, 2)
        Aperture points (x, y) in image axes; a layer of CoC ``r`` shifts by ``d * r``.
    w : ndarray float64 (S,)
        Cell areas inside the aperture, normalised to sum to 1.
    size : ndarray float64 (S,)
        Side of each cell in aperture units (``cell / 2**level``).
    """
    check_blades(blades)
    ox, oy = offset
    n = int(math.ceil(1.0 / cell)) + 2
    idx = np.arange(-n, n + 1)
    gx, gy = np.meshgrid((idx + ox - 0.5) * cell, (idx + oy - 0.5) * cell)
    centres = np.stack([gx.ravel(), gy.ravel()], axis=1)
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    sx, sy = (a.ravel() for a in np.meshgrid(sub, sub))
    out_d, out_w, out_s = [], [], []
    size = cell
    for level in range(rim_levels + 1):
        px = centres[:, :1] + size * sx[None, :]
        py = centres[:, 1:] + size * sy[None, :]
        # A = -P: a point is in A when its reflection is in P.
        inside = inside_aperture(-px, -py, blades, rotation_deg)
        frac = inside.mean(axis=1)
        full = frac == 1.0
        rim = (frac > 0.0) & ~full
        out_d.append(centres[full])
        out_w.append(np.full(full.sum(), size * size))
        out_s.append(np.full(full.sum(), size))
        if level == rim_levels:
            cnt = inside[rim].sum(axis=1)
            cen = np.stack([(px[rim] * inside[rim]).sum(1) / cnt, (py[rim] * inside[rim]).sum(1) / cnt], 1)
            out_d.append(cen)
            out_w.append(frac[rim] * size * size)
            out_s.append(np.full(rim.sum(), size))
        else:
            q = size / 4.0
            kids = np.array([[-q, -q], [q, -q], [-q, q], [q, q]])
            centres = (centres[rim][:, None, :] + kids[None]).reshape(-1, 2)
            size /= 2.0
    d = np.concatenate(out_d)
    w = np.concatenate(out_w)
    return d, w / w.sum(), np.concatenate(out_s)


# ------------------------------------------------------------- reading a layer


def _tent_integral(u):
    """Antiderivative of the unit tent max(0, 1 - |u|), from -inf."""
    u = np.clip(u, -1.0, 1.0)
    return np.where(u <= 0.0, 0.5 * (u + 1.0) ** 2, 1.0 - 0.5 * (1.0 - u) ** 2)


def _cell_taps(pos: float, width: float):
    """1-D weights reading the bilinear interpolant of a raster, box-averaged.

    Returns ``(first, taps)``: the mean over ``[pos - width/2, pos + width/2]`` of the
    linear interpolant of samples ``v[j]`` equals ``sum(taps[m] * v[first + m])``.
    ``width == 0`` gives plain linear interpolation at ``pos``.
    """
    lo = int(math.floor(pos - width / 2.0)) - 1
    hi = int(math.ceil(pos + width / 2.0)) + 1
    j = np.arange(lo, hi + 1, dtype=np.float64)
    if width < 1e-6:
        taps = np.clip(1.0 - np.abs(pos - j), 0.0, None)
    else:
        taps = (_tent_integral(pos + width / 2 - j) - _tent_integral(pos - width / 2 - j)) / width
    nz = np.nonzero(taps > 1e-12)[0]
    taps = taps[nz[0] : nz[-1] + 1]
    return lo + int(nz[0]), (taps / taps.sum()).astype(np.float32)


def _cell_view(planes, pad, height, width, sx, sy, cell_px):
    """Frame of channel-first ``planes`` (C, Hc, Wc) displaced by (sx, sy) px and
    averaged over a ``cell_px`` box: out(p) = mean over the box around p - s of the
    bilinear interpolant.  For an unoccluded layer this is the exact integral of
    one aperture cell.  Returns float32 (C, height, width)."""
    x0, tx = _cell_taps(pad - sx, cell_px)
    y0, ty = _cell_taps(pad - sy, cell_px)
    ny, nx = len(ty), len(tx)
    if x0 < 0 or y0 < 0 or x0 + width + nx - 1 > planes.shape[2] or y0 + height + ny - 1 > planes.shape[1]:
        raise ValueError("layer shift exceeds the canvas padding; increase Scene.pad")
    rows = planes[:, y0 : y0 + height + ny - 1]
    tmp = tx[0] * rows[:, :, x0 : x0 + width]
    for m in range(1, nx):
        tmp += tx[m] * rows[:, :, x0 + m : x0 + m + width]
    out = ty[0] * tmp[:, 0:height]
    for n in range(1, ny):
        out += ty[n] * tmp[:, n : n + height]
    return out


def _pixel_taps(pos: np.ndarray, width: np.ndarray, ntaps: int):
    """Per-pixel version of ``_cell_taps``: ``(first, weights)`` with ``first`` int
    (H, W) and ``weights`` float32 (ntaps, H, W); ``width`` may vary per pixel."""
    first = np.floor(pos - 1.0 - width / 2.0).astype(np.int64) + 1
    wsafe = np.maximum(width, 1e-6)
    taps = []
    for m in range(ntaps):
        u = pos - (first + m)
        boxed = (_tent_integral(u + wsafe / 2) - _tent_integral(u - wsafe / 2)) / wsafe
        taps.append(np.where(width < 1e-6, np.clip(1.0 - np.abs(u), 0.0, None), boxed))
    taps = np.stack(taps)
    return first, (taps / taps.sum(axis=0, keepdims=True)).astype(np.float32)


def _planar_view(flat, canvas_shape, layer: Layer, scene: Scene, dx: float, dy: float, size: float):
    """A slanted planar layer seen from aperture point (dx, dy), cell-averaged.

    ``flat``: the layer's channel-first raster flattened to (4, Hc * Wc).  Pixel p
    sees the texture point u solving ``p = u + d r(u)`` with ``r(u) = r0 + G . (u -
    anchor)``: ``u - anchor = w - d (G . w) / (1 + G . d)``, ``w = p - anchor - d r0``.
    Returns (rgba float32 (4, H, W), inverse depth float64 (H, W) of the point seen).
    """
    h, wd, pad = scene.height, scene.width, scene.pad
    a_coef, _ = scene.coc_affine
    gx, gy = a_coef * layer.slope[0], a_coef * layer.slope[1]
    denom = 1.0 + gx * dx + gy * dy
    if denom <= 0.05:
        raise ValueError("planar layer too oblique: it would be seen edge-on from the aperture")
    r0 = float(scene.coc(layer.depth_m))
    ax, ay = layer.anchor
    yy, xx = np.mgrid[0:h, 0:wd].astype(np.float64)
    wx = xx - ax - dx * r0
    wy = yy - ay - dy * r0
    gw = (gx * wx + gy * wy) / denom
    vx, vy = wx - dx * gw, wy - dy * gw
    r_seen = r0 + gw
    q_seen = 1.0 / layer.depth_m + layer.slope[0] * vx + layer.slope[1] * vy
    px, py = vx + ax + pad, vy + ay + pad  # canvas coordinates of the point seen
    box = size * np.abs(r_seen)
    ntaps = int(math.ceil(2.0 + float(box.max()))) if box.size else 3
    fx, tx = _pixel_taps(px, box, ntaps)
    fy, ty = _pixel_taps(py, box, ntaps)
    hc, wc = canvas_shape
    # The plane ends with its canvas: a point seen outside it is transparent.  (Only
    # points where the layer's alpha is 0 can map there: covered points have |r| at
    # most max|CoC| < pad.)
    outside = ((fx < 0) | (fy < 0) | (fx + ntaps > wc) | (fy + ntaps > hc)).ravel()
    fx, fy = np.clip(fx, 0, wc - ntaps), np.clip(fy, 0, hc - ntaps)
    out = np.zeros((flat.shape[0], h * wd), np.float32)
    base = (fy * wc + fx).ravel()
    for m in range(ntaps):
        for n in range(ntaps):
            wgt = (ty[m] * tx[n]).ravel()
            out += wgt * flat[:, base + (m * wc + n)]
    out[:, outside] = 0.0
    return out.reshape(flat.shape[0], h, wd), q_seen


def _tilted_rows_view(planes, frame_hw, pad: int, anchor, r0: float, g: float, q0: float, slope_q: float,
                      d_along: float, d_across: float, size: float):
    """Fast ``_planar_view`` for a plane whose depth varies along the rows only.

    ``planes`` (C, Hc, Wc); ``g`` = dr/dy (px per px), ``slope_q`` = dq/dy; ``d_along``
    / ``d_across`` the aperture coordinates along y / x.  With ``G = (0, g)`` the
    point seen by pixel (x, y) lies in a canvas row that depends on y only, and
    within it at x plus a per-row shift, with a per-row cell width: one vertical
    interpolation of whole rows, then one horizontal shift per row.  Returns
    (rgba (C, h, w) float32, q (h, 1) float64).
    """
    h, wd = frame_hw
    ax, ay = anchor
    denom = 1.0 + g * d_along
    if denom <= 0.05:
        raise ValueError("planar layer too oblique: it would be seen edge-on from the aperture")
    wy = np.arange(h, dtype=np.float64) - ay - d_along * r0
    gw = g * wy / denom
    vy = wy - d_along * gw
    box = size * np.abs(r0 + gw)
    ntaps = int(math.ceil(2.0 + float(box.max())))
    fy, ty = _pixel_taps(vy + ay + pad, box, ntaps)
    shift = pad - d_across * r0 - d_across * gw  # canvas x of frame column 0, per row
    fx, tx = _pixel_taps(shift, box, ntaps)
    c_, hc, wc = planes.shape
    rows_out = (fy < 0) | (fy + ntaps > hc)
    fy = np.clip(fy, 0, hc - ntaps)
    rows = ty[0][None, :, None] * planes[:, fy, :]
    for m in range(1, ntaps):
        rows += ty[m][None, :, None] * planes[:, fy + m, :]
    # Horizontal taps on whole rows (the fractional shift is the same along a row),
    # then one gather of the integer shift.
    span = wc - ntaps + 1
    filt = tx[0][None, :, None] * rows[:, :, 0:span]
    for n in range(1, ntaps):
        filt += tx[n][None, :, None] * rows[:, :, n : n + span]
    cols = fx[:, None] + np.arange(wd)[None, :]  # (h, w)
    cols_out = (cols < 0) | (cols >= span)
    cols = np.clip(cols, 0, span - 1) + (np.arange(h) * span)[:, None]
    out = filt.reshape(c_, -1)[:, cols.ravel()].reshape(c_, h, wd)
    out[:, rows_out] = 0.0
    out[:, cols_out] = 0.0
    return out, (q0 + slope_q * vy)[:, None]


def _channel_first(layer: Layer) -> np.ndarray:
    return np.ascontiguousarray(layer.rgba.transpose(2, 0, 1), dtype=np.float32)


def _q_ranges(scene: Scene) -> list[tuple[float, float]]:
    a_coef, b_coef = scene.coc_affine
    out = []
    for i in range(len(scene.layers)):
        lo, hi = scene.layer_coc_range(i)
        out.append(tuple(sorted(((lo - b_coef) / a_coef, (hi - b_coef) / a_coef))))
    return out


def layers_in_fixed_order(scene: Scene) -> bool:
    """True when every layer is nearer than all layers listed before it, everywhere
    (the list order is then the occlusion order for every ray)."""
    if not scene.has_slanted_layers:
        return True
    ranges = _q_ranges(scene)
    return all(ranges[i][1] < ranges[j][0] for i in range(len(ranges)) for j in range(i + 1, len(ranges)))


class _Views:
    """Reads every layer of a scene from an aperture point (see ``render_reference_linear``)."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.planes = [_channel_first(layer) for layer in scene.layers]
        self.flat = [p.reshape(p.shape[0], -1) if layer.is_planar_slanted else None
                     for p, layer in zip(self.planes, scene.layers)]
        # Planes tilted about one image axis take the row-wise fast path (a plane whose
        # depth varies along x is read through its transpose).
        self.transposed = [np.ascontiguousarray(p.transpose(0, 2, 1))
                           if layer.slope[1] == 0.0 and layer.slope[0] != 0.0 else None
                           for p, layer in zip(self.planes, scene.layers)]
        self.a_coef = scene.coc_affine[0]
        self.q_ranges = _q_ranges(scene)
        self.coc = scene.layer_coc
        self.fixed_order = layers_in_fixed_order(scene)

    def view(self, i: int, dx: float, dy: float, size: float):
        """(rgba (4, H, W) float32, q (H, W) or scalar) of layer i from aperture point (dx, dy)."""
        s, layer = self.scene, self.scene.layers[i]
        if layer.is_planar_slanted:
            q0, r0 = 1.0 / layer.depth_m, self.coc[i]
            if layer.slope[0] == 0.0:
                return _tilted_rows_view(self.planes[i], (s.height, s.width), s.pad, layer.anchor, r0,
                                         self.a_coef * layer.slope[1], q0, layer.slope[1], dy, dx, size)
            if layer.slope[1] == 0.0:
                rgba, q = _tilted_rows_view(self.transposed[i], (s.width, s.height), s.pad, layer.anchor[::-1], r0,
                                            self.a_coef * layer.slope[0], q0, layer.slope[0], dx, dy, size)
                return rgba.transpose(0, 2, 1), q.T
            return _planar_view(self.flat[i], self.planes[i].shape[1:], layer, s, dx, dy, size)
        r = self.coc[i]
        rgba = _cell_view(self.planes[i], s.pad, s.height, s.width, dx * r, dy * r, size * abs(r))
        return rgba, 1.0 / layer.depth_m

    def composite(self, dx: float, dy: float, size: float, shares: bool = False):
        """Linear colour (3, H, W) float32 seen from (dx, dy); with ``shares`` also each
        layer's visible share (L, H, W) (alpha times the transmittance in front)."""
        s = self.scene
        n = len(s.layers)
        color = np.zeros((3, s.height, s.width), np.float32)
        trans = np.ones((s.height, s.width), np.float32)
        share = np.zeros((n, s.height, s.width), np.float32) if shares else None
        if self.fixed_order:
            for i in range(n - 1, -1, -1):  # front to back
                rgba, _ = self.view(i, dx, dy, size)
                if shares:
                    share[i] = trans * rgba[3]
                rgba[:3] *= trans
                color += rgba[:3]
                if i > 0 or shares:
                    trans *= 1.0 - rgba[3]
            return (color, share) if shares else color
        # Per-pixel order: layer i is attenuated by every layer j nearer than it at that
        # pixel (on a tie the one listed later, in front).  Pairs whose depth ranges do
        # not overlap need no comparison.
        views = [self.view(i, dx, dy, size) for i in range(n)]
        ranges = self.q_ranges
        for i in range(n):
            rgba_i, q_i = views[i]
            t = trans.copy()
            for j in range(n):
                if j == i or ranges[j][1] < ranges[i][0]:
                    continue  # j is never in front of i
                a_j = views[j][0][3]
                if ranges[j][0] > ranges[i][1]:
                    t *= 1.0 - a_j
                else:
                    q_j = views[j][1]
                    nearer = (q_j > q_i) | ((q_j == q_i) & (j > i))
                    t *= np.where(nearer, 1.0 - a_j, 1.0).astype(np.float32)
            if shares:
                share[i] = t * rgba_i[3]
            color += rgba_i[:3] * t
        return (color, share) if shares else color


def render_reference_linear(
    scene: Scene, cell_px: float = DEFAULT_CELL_PX, offset=(0.5, 0.5), rim_levels: int = 1
) -> np.ndarray:
    """Aperture-averaged composite in linear light (HDR, unclipped).

    Parameters
    ----------
    scene : Scene
    cell_px : float
        Quadrature cell size in pixels at the largest |CoC| (smaller = more samples;
        the sample count grows like ``pi * (max|r| / cell_px)**2``).
    offset : (float, float)
        Lattice offset (another value gives an independent set of samples).
    rim_levels : int
        Subdivisions of the cells on the aperture rim.

    Returns
    -------
    ndarray float32 (height, width, 3)
    """
    r_max = scene.max_coc
    if r_max + cell_px / 2 + 2 > scene.pad:
        raise ValueError(f"scene pad {scene.pad} too small for max |CoC| {r_max:.2f}")
    cell = 0.5 if r_max <= 2.0 * cell_px else cell_px / r_max
    d, w, size = aperture_samples(scene.blades, scene.rotation_deg, cell, offset, rim_levels)
    views = _Views(scene)
    acc = np.zeros((3, scene.height, scene.width), dtype=np.float64)
    for (dx, dy), weight, c in zip(d, w, size):
        acc += weight * views.composite(dx, dy, c)
    return np.ascontiguousarray(acc.transpose(1, 2, 0), dtype=np.float32)


def render_reference(
    scene: Scene, cell_px: float = DEFAULT_CELL_PX, offset=(0.5, 0.5), rim_levels: int = 1
) -> np.ndarray:
    """The reference photo: ``render_reference_linear`` clipped, sRGB, uint8 (H, W, 3)."""
    return linear_to_srgb8(render_reference_linear(scene, cell_px, offset, rim_levels))


# ----------------------------------------------------------- the pinhole camera


def _frame(scene: Scene, layer: Layer) -> np.ndarray:
    p = scene.pad
    return layer.rgba[p : p + scene.height, p : p + scene.width]


def pinhole_linear(scene: Scene) -> np.ndarray:
    """Pinhole (d = 0) composite in linear light, float32 (H, W, 3), unclipped."""
    if not layers_in_fixed_order(scene):
        color = _Views(scene).composite(0.0, 0.0, 0.0)
        return np.ascontiguousarray(color.transpose(1, 2, 0))
    color = np.zeros((scene.height, scene.width, 3), dtype=np.float32)
    trans = np.ones((scene.height, scene.width, 1), dtype=np.float32)
    for layer in scene.layers[::-1]:
        rgba = _frame(scene, layer)
        color += trans * rgba[..., :3]
        trans *= 1.0 - rgba[..., 3:4]
    return color


def pinhole_photo(scene: Scene) -> np.ndarray:
    """What the camera records: pinhole composite clipped, sRGB-encoded, uint8 (H, W, 3)."""
    return linear_to_srgb8(pinhole_linear(scene))


def _pinhole_shares(scene: Scene) -> np.ndarray:
    """(L, H, W): each layer's share of each pinhole pixel (list order)."""
    if layers_in_fixed_order(scene):
        trans = np.ones((scene.height, scene.width), dtype=np.float32)
        shares = []
        for layer in scene.layers[::-1]:
            alpha = _frame(scene, layer)[..., 3]
            shares.append(trans * alpha)
            trans = trans * (1.0 - alpha)
        return np.stack(shares[::-1])
    return _Views(scene).composite(0.0, 0.0, 0.0, shares=True)[1]


def surface_map(scene: Scene) -> np.ndarray:
    """int (H, W): index (in ``scene.layers``) of the layer dominating each pinhole pixel.

    A layer's share of a pixel is its alpha times the transmittance of the layers in
    front of it; antialiased edge pixels take the layer with the largest share, ties
    the front one.
    """
    shares = _pinhole_shares(scene)[::-1]  # front first: argmax takes the first maximum
    return len(scene.layers) - 1 - np.argmax(shares, axis=0)


def depth_map(scene: Scene) -> np.ndarray:
    """Metric depth (float32 metres, (H, W)) of the layer dominating each pinhole pixel
    (on a slanted layer, the depth of the point seen there; ``inf`` allowed)."""
    ids = surface_map(scene)
    out = np.empty(ids.shape, np.float32)
    yy, xx = np.mgrid[0 : scene.height, 0 : scene.width]
    for i, layer in enumerate(scene.layers):
        m = ids == i
        if not m.any():
            continue
        if layer.is_planar_slanted:
            q = layer.inverse_depth(xx[m], yy[m])
            out[m] = np.where(q > 0, 1.0 / np.maximum(q, 1e-300), np.inf)
        else:
            out[m] = layer.depth_m
    return out


def coc_map(scene: Scene, depth: np.ndarray | None = None) -> np.ndarray:
    """Signed CoC radius per pixel (float32 px) from the depth map, by ``coc_radius_px``."""
    if depth is None:
        depth = depth_map(scene)
    return scene.coc(depth).astype(np.float32)
