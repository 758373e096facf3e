"""Physically exact layered scenes, two baseline renderers and quality metrics.

This module is the proof harness for ``pybokeh.render``.  It holds no tests; it is
imported by ``tests/test_reference_scenes.py`` and ``bench/quality_scenes.py``.

Scene model
-----------
A scene is a stack of fronto-parallel RGBA layers at known metric depths seen by a
thin lens.  Each layer is a raster of *premultiplied linear-light* RGBA on a canvas
padded by ``pad`` pixels on every side of the ``height x width`` frame, so that a
shifted layer brings real content (not a border rule) into the frame.  A layer's
continuous texture is the bilinear interpolant of its raster.  The back layer is
opaque and full-frame; it carries bright point lights (linear values 4-60).  Layers
in front carry antialiased shapes; the content of a back layer hidden behind them
in the pinhole photo is real content, different from what is visible.

Lens model: the signed circle-of-confusion *radius* in pixels of a point at depth
``z`` (thin lens, same formula as the renderer's contract)::

    r(z) = f**2 / (2 N (z_f - f)) * (z_f / z - 1) / (sensor_width / W)

with ``f``, ``z_f``, ``z`` in mm; ``r > 0`` in front of the focus plane.

Exact reference
---------------
Seen from aperture point ``d`` (unit circumradius), a layer at depth ``z`` appears
shifted by ``d * r(z)`` pixels; the pinhole images composited front to back with
"over" in linear light (HDR values kept) are averaged over the aperture, then
clipped to [0, 1], sRGB-encoded and quantised to 8 bits like the photo.

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
layer ``i`` is read as the mean of its bilinear interpolant over a box of
``h * |r_i|`` pixels around the shifted position (exact per-shift weights).  For an
unoccluded layer that is the exact aperture convolution except at the rim; where
layers occlude each other, the cell mean of a product is replaced by the product of
cell means, a second-order error at occlusion edges, largest when a light sits
behind a thin occluder moving almost with it.  Rendering with a second, finer and
offset grid measures it (``tests/test_reference_scenes.py``,
``bench/quality_scenes.py --mc``): the two agree to 60-80 dB PSNR.

Baselines (both in linear light from the 8-bit photo and the per-pixel signed CoC)
---------------------------------------------------------------------------------
* ``gaussian_stack``: the whole image blurred with Gaussians of sigma = rho / 2 at
  the radius ladder rho = 0, 1, 2, ... px; each pixel interpolates linearly between
  the two levels bracketing its ``|r|``.
* ``disk_scatter``: every pixel spreads its colour uniformly over an antialiased
  disk of its own radius (weights sum to 1), with no occlusion ordering; output =
  accumulated colour / accumulated weight.

Metrics
-------
``psnr`` on uint8 sRGB images (peak 255, mean over pixels and the 3 channels).
``edge_band``: a pixel is a *depth-edge pixel* when one of its 4-neighbours has a
different depth; its *reach* is ``max(|r(z_p)|, |r(z_q)|) + 1`` px over those
neighbours ``q``.  The band is every pixel whose centre lies within the reach of
some depth-edge pixel's centre (Euclidean), i.e. within blur reach of the depth
discontinuity (which lies half a pixel from the edge pixel).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "Layer",
    "Scene",
    "coc_radius_px",
    "aperture_polygon",
    "aperture_samples",
    "random_scene",
    "single_layer_scene",
    "render_reference_linear",
    "render_reference",
    "pinhole_linear",
    "pinhole_photo",
    "depth_map",
    "coc_map",
    "srgb8_to_linear",
    "linear_to_srgb8",
    "gaussian_stack",
    "disk_scatter",
    "psnr",
    "edge_band",
    "evaluate",
    "Case",
    "make_case",
]

#: Cell size of the aperture quadrature grid, in pixels at the largest |CoC|.
DEFAULT_CELL_PX = 1.0


# --------------------------------------------------------------------------- lens


def coc_radius_px(
    depth_m,
    focus_m: float,
    f_number: float,
    focal_length_mm: float,
    sensor_width_mm: float,
    width_px: int,
):
    """Signed thin-lens circle-of-confusion radius in pixels.

    Parameters
    ----------
    depth_m : float or ndarray
        Metric depth along the optical axis, metres, > 0.
    focus_m : float
        Focus distance, metres, > focal length.
    f_number, focal_length_mm, sensor_width_mm : float
        Lens f-number, focal length (mm) and sensor width (mm).
    width_px : int
        Image width in pixels (the sensor width maps onto it).

    Returns
    -------
    float or ndarray (float64)
        ``r > 0`` in front of the focus plane, ``r < 0`` behind it.
    """
    f = float(focal_length_mm)
    zf = float(focus_m) * 1000.0
    z = np.asarray(depth_m, dtype=np.float64) * 1000.0
    pixel_mm = float(sensor_width_mm) / float(width_px)
    return f * f / (2.0 * float(f_number) * (zf - f)) * (zf / z - 1.0) / pixel_mm


# ------------------------------------------------------------------------ scenes


@dataclass
class Layer:
    """One fronto-parallel layer.

    Attributes
    ----------
    depth_m : float
        Metric depth, metres.
    rgba : ndarray, float32, (height + 2 pad, width + 2 pad, 4)
        Premultiplied linear-light RGBA; colour may exceed 1 (lights).
    role : str
        What the generator put there ("background", "mid", "subject", "foreground").
    """

    depth_m: float
    rgba: np.ndarray
    role: str = "layer"


@dataclass
class Scene:
    """Layers (back to front, strictly decreasing depth) plus the lens.

    ``pad`` is the canvas margin in pixels; it must be at least
    ``max|r| + cell_px / 2 + 2`` so every shifted, cell-averaged layer stays inside
    its canvas (``random_scene`` uses ``ceil(max|r|) + 4``).
    """

    layers: list[Layer]
    height: int
    width: int
    pad: int
    focus_m: float
    f_number: float
    focal_length_mm: float = 50.0
    sensor_width_mm: float = 36.0
    blades: int = 0
    rotation_deg: float = 0.0
    seed: int | None = None
    focus_role: str = ""
    info: dict = field(default_factory=dict)

    def coc(self, depth_m):
        """Signed CoC radius (px) of depth(s) ``depth_m`` for this scene's lens."""
        return coc_radius_px(
            depth_m, self.focus_m, self.f_number, self.focal_length_mm,
            self.sensor_width_mm, self.width,
        )

    @property
    def layer_coc(self) -> np.ndarray:
        """Signed CoC radius of every layer, back to front (float64, px)."""
        return np.array([self.coc(layer.depth_m) for layer in self.layers], dtype=np.float64)

    @property
    def max_coc(self) -> float:
        return float(np.abs(self.layer_coc).max())

    def render_kwargs(self) -> dict:
        """Keyword arguments of ``pybokeh.render`` describing this scene's lens."""
        return dict(
            focus=self.focus_m,
            depth_kind="depth",
            f_number=self.f_number,
            focal_length_mm=self.focal_length_mm,
            sensor_width_mm=self.sensor_width_mm,
            blades=self.blades,
            rotation_deg=self.rotation_deg,
        )

    def with_depths(self, depths) -> "Scene":
        """Copy with the layer depths replaced (textures shared)."""
        layers = [replace(layer, depth_m=float(z)) for layer, z in zip(self.layers, depths)]
        return replace(self, layers=layers)


# ---------------------------------------------------------------- aperture shape


def aperture_polygon(blades: int, rotation_deg: float) -> np.ndarray:
    """Vertices (n, 2) as (x right, y down) of the unit-circumradius n-gon.

    Rotation 0 puts a vertex straight up; positive rotation turns the polygon
    counter-clockwise as seen in the image.  This is the footprint shape of a
    point *behind* the focus plane (see the module docstring).
    """
    k = np.arange(blades)
    theta = math.pi / 2 + math.radians(rotation_deg) + 2.0 * math.pi * k / blades
    return np.stack([np.cos(theta), -np.sin(theta)], axis=1)


def _inside_aperture(x, y, blades: int, rotation_deg: float) -> np.ndarray:
    """Boolean: is (x, y) (image axes, footprint of a background point) in the shape."""
    if blades == 0:
        return x * x + y * y <= 1.0
    v = aperture_polygon(blades, rotation_deg)
    inside = np.ones(np.broadcast(x, y).shape, dtype=bool)
    for i in range(blades):
        (x0, y0), (x1, y1) = v[i], v[(i + 1) % blades]
        # The vertices run clockwise on screen (y down); interior is on one side.
        cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        inside &= cross <= 0.0
    return inside


def _check_blades(blades: int) -> None:
    if blades != 0 and not 3 <= blades <= 16:
        raise ValueError(f"blades must be 0 or 3..16, got {blades}")


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
    _check_blades(blades)
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
        inside = _inside_aperture(-px, -py, blades, rotation_deg)
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


# ------------------------------------------------------------------ rendering


def _tent_integral(u: np.ndarray) -> np.ndarray:
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
    coc = scene.layer_coc
    r_max = float(np.abs(coc).max())
    if r_max + cell_px / 2 + 2 > scene.pad:
        raise ValueError(f"scene pad {scene.pad} too small for max |CoC| {r_max:.2f}")
    cell = 0.5 if r_max <= 2.0 * cell_px else cell_px / r_max
    d, w, size = aperture_samples(scene.blades, scene.rotation_deg, cell, offset, rim_levels)
    h, wd, pad = scene.height, scene.width, scene.pad
    # Channel-first copies: every plane slice below is then contiguous.
    front_to_back = [
        (np.ascontiguousarray(layer.rgba.transpose(2, 0, 1), dtype=np.float32), r)
        for layer, r in zip(scene.layers, coc)
    ][::-1]
    acc = np.zeros((3, h, wd), dtype=np.float64)
    color = np.empty((3, h, wd), dtype=np.float32)
    trans = np.empty((h, wd), dtype=np.float32)
    last = len(front_to_back) - 1
    for (dx, dy), weight, c in zip(d, w, size):
        color.fill(0.0)
        trans.fill(1.0)
        for i, (planes, r) in enumerate(front_to_back):
            rgba = _cell_view(planes, pad, h, wd, dx * r, dy * r, c * abs(r))
            rgba[:3] *= trans
            color += rgba[:3]
            if i < last:
                trans *= 1.0 - rgba[3]
        acc += weight * color
    return np.ascontiguousarray(acc.transpose(1, 2, 0), dtype=np.float32)


def render_reference(
    scene: Scene, cell_px: float = DEFAULT_CELL_PX, offset=(0.5, 0.5), rim_levels: int = 1
) -> np.ndarray:
    """The reference photo: ``render_reference_linear`` clipped, sRGB, uint8 (H, W, 3)."""
    return linear_to_srgb8(render_reference_linear(scene, cell_px, offset, rim_levels))


def _frame(scene: Scene, layer: Layer) -> np.ndarray:
    p = scene.pad
    return layer.rgba[p : p + scene.height, p : p + scene.width]


def pinhole_linear(scene: Scene) -> np.ndarray:
    """Pinhole (d = 0) composite in linear light, float32 (H, W, 3), unclipped."""
    color = np.zeros((scene.height, scene.width, 3), dtype=np.float32)
    trans = np.ones((scene.height, scene.width, 1), dtype=np.float32)
    for layer in scene.layers[::-1]:
        rgba = _frame(scene, layer)
        color += trans * rgba[..., :3]
        trans *= 1.0 - rgba[..., 3:4]
    return color


def pinhole_photo(scene: Scene) -> np.ndarray:
    """What the renderer sees: pinhole composite clipped, sRGB-encoded, uint8 (H, W, 3)."""
    return linear_to_srgb8(pinhole_linear(scene))


def depth_map(scene: Scene) -> np.ndarray:
    """Metric depth (float32 metres, (H, W)) of the layer dominating each pinhole pixel.

    A layer's share of a pixel is its alpha times the transmittance of the layers in
    front of it; antialiased edge pixels take the layer with the largest share.
    """
    trans = np.ones((scene.height, scene.width), dtype=np.float32)
    shares = []
    for layer in scene.layers[::-1]:
        alpha = _frame(scene, layer)[..., 3]
        shares.append(trans * alpha)
        trans = trans * (1.0 - alpha)
    front_first = np.array([layer.depth_m for layer in scene.layers[::-1]], dtype=np.float32)
    # argmax takes the first maximum: ties go to the front layer.
    return front_first[np.argmax(np.stack(shares), axis=0)]


def coc_map(scene: Scene, depth: np.ndarray | None = None) -> np.ndarray:
    """Signed CoC radius per pixel (float32 px) from the depth map, by ``coc_radius_px``."""
    if depth is None:
        depth = depth_map(scene)
    return scene.coc(depth).astype(np.float32)


# ----------------------------------------------------------------------- sRGB


def srgb8_to_linear(img: np.ndarray) -> np.ndarray:
    """uint8 sRGB -> float32 linear light in [0, 1] (exact IEC 61966-2-1 curve)."""
    x = img.astype(np.float64) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb8(lin: np.ndarray) -> np.ndarray:
    """Linear light (any float) -> clipped to [0, 1] -> sRGB -> rounded uint8."""
    x = np.clip(np.asarray(lin, dtype=np.float64), 0.0, 1.0)
    s = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)
    return np.clip(np.round(s * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------- baselines


def _fft_filter(planes: np.ndarray, transfer_fn, pad: int) -> np.ndarray:
    """Linear (zero-padded) convolution of (H, W, C) planes with a kernel given by its
    transfer function ``transfer_fn(shape) -> rfft2 array``."""
    h, w = planes.shape[:2]
    shape = (h + 2 * pad, w + 2 * pad)
    spec = np.fft.rfft2(planes, s=shape, axes=(0, 1))
    out = np.fft.irfft2(spec * transfer_fn(shape)[..., None], s=shape, axes=(0, 1))
    # The kernel is centred on index 0 (wrapped), so the frame sits at the origin.
    return out[:h, :w]


def _gaussian_transfer(sigma: float):
    def fn(shape):
        fy = np.fft.fftfreq(shape[0])[:, None]
        fx = np.fft.rfftfreq(shape[1])[None, :]
        return np.exp(-2.0 * (math.pi * sigma) ** 2 * (fx * fx + fy * fy))

    return fn


def _kernel_transfer(kernel: np.ndarray):
    """Transfer function of a small centred (2n+1)^2 kernel, wrapped to index 0."""
    n = kernel.shape[0] // 2

    def fn(shape):
        full = np.zeros(shape, dtype=np.float64)
        full[: 2 * n + 1, : 2 * n + 1] = kernel
        full = np.roll(full, (-n, -n), axis=(0, 1))
        return np.fft.rfft2(full)

    return fn


def _check_photo_coc(photo: np.ndarray, coc: np.ndarray) -> None:
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError("photo must be uint8 (H, W, 3)")
    if coc.shape != photo.shape[:2]:
        raise ValueError("coc must be (H, W) like the photo")


def gaussian_stack(photo: np.ndarray, coc: np.ndarray, radius_step: float = 1.0) -> np.ndarray:
    """Baseline (a): per-pixel Gaussian blur stack, no occlusion handling.

    Parameters
    ----------
    photo : uint8 (H, W, 3) sRGB
    coc : float (H, W), signed CoC radius in px (only |coc| is used)
    radius_step : float
        Spacing of the radius ladder; level k blurs with sigma = k * radius_step / 2.

    Returns
    -------
    uint8 (H, W, 3) sRGB
    """
    _check_photo_coc(photo, coc)
    lin = srgb8_to_linear(photo).astype(np.float64)
    planes = np.concatenate([lin, np.ones(lin.shape[:2] + (1,))], axis=2)
    a = np.abs(coc).astype(np.float64) / radius_step
    out = np.zeros_like(lin)
    for k in range(int(math.ceil(a.max())) + 1):
        weight = np.clip(1.0 - np.abs(a - k), 0.0, None)  # hat: linear between levels
        if not weight.any():
            continue
        sigma = 0.5 * k * radius_step
        if sigma == 0.0:
            level = lin
        else:
            blurred = _fft_filter(planes, _gaussian_transfer(sigma), int(math.ceil(4 * sigma)) + 1)
            level = blurred[..., :3] / blurred[..., 3:4]  # normalised at the frame border
        out += weight[..., None] * level
    return linear_to_srgb8(out)


def _disk_kernel(radius: float) -> np.ndarray:
    """Antialiased disk: weight clip(radius + 0.5 - |o|, 0, 1) at integer offsets, sum 1."""
    n = int(math.ceil(radius + 0.5))
    y, x = np.mgrid[-n : n + 1, -n : n + 1]
    k = np.clip(radius + 0.5 - np.hypot(x, y), 0.0, 1.0)
    return k / k.sum()


def disk_scatter(photo: np.ndarray, coc: np.ndarray, max_levels: int = 48) -> np.ndarray:
    """Baseline (b): energy-conserving disk scatter without occlusion ordering.

    Every pixel spreads its linear colour over an antialiased disk of radius |coc|
    (weights summing to 1); output = accumulated colour / accumulated weight.  Pixels
    sharing a radius are scattered together by one FFT convolution; when the map has
    more than ``max_levels`` distinct radii, each pixel's weight is split linearly
    between the two nearest levels of a 0.5 px ladder.

    Parameters
    ----------
    photo : uint8 (H, W, 3) sRGB
    coc : float (H, W), signed CoC radius in px (only |coc| is used)

    Returns
    -------
    uint8 (H, W, 3) sRGB
    """
    _check_photo_coc(photo, coc)
    lin = srgb8_to_linear(photo).astype(np.float64)
    a = np.round(np.abs(coc).astype(np.float64) * 64.0) / 64.0
    levels = np.unique(a)
    if len(levels) <= max_levels:
        masks = [(rho, (a == rho).astype(np.float64)) for rho in levels]
    else:
        ladder = np.arange(0.0, a.max() + 0.5, 0.5)
        masks = [(rho, np.clip(1.0 - np.abs(a - rho) / 0.5, 0.0, None)) for rho in ladder]
    num = np.zeros(lin.shape[:2] + (4,))
    pad = int(math.ceil(a.max())) + 2
    for rho, m in masks:
        if not m.any():
            continue
        planes = np.concatenate([lin * m[..., None], m[..., None]], axis=2)
        kernel = _disk_kernel(rho)
        if kernel.shape[0] == 1:
            num += planes
        else:
            num += _fft_filter(planes, _kernel_transfer(kernel), pad)
    return linear_to_srgb8(num[..., :3] / np.maximum(num[..., 3:4], 1e-12))


# ------------------------------------------------------------------------ metrics


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of two uint8 images (peak 255), optionally over a boolean (H, W) mask."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    diff = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        diff = diff[mask]
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def _dilate_disk(mask: np.ndarray, radius: float) -> np.ndarray:
    """Pixels whose centre is within Euclidean ``radius`` of a True pixel's centre."""
    h, w = mask.shape
    n = int(math.floor(radius))
    # Horizontal dilation by every half-width via a running count (cumsum).
    cs = np.concatenate([np.zeros((h, 1), np.int64), np.cumsum(mask, axis=1)], axis=1)
    cols = np.arange(w)
    out = np.zeros_like(mask)
    for dy in range(-n, n + 1):
        half = int(math.floor(math.sqrt(max(radius * radius - dy * dy, 0.0)) + 1e-9))
        lo = np.clip(cols - half, 0, w)
        hi = np.clip(cols + half + 1, 0, w)
        row_hit = (cs[:, hi] - cs[:, lo]) > 0
        if dy >= 0:
            out[dy:] |= row_hit[: h - dy]
        else:
            out[:dy] |= row_hit[-dy:]
    return out


def edge_band(depth: np.ndarray, coc: np.ndarray) -> np.ndarray:
    """Boolean (H, W): pixels within blur reach of a depth discontinuity.

    A depth-edge pixel p has a 4-neighbour q with a different depth; its reach is
    ``max(|coc[p]|, |coc[q]|) + 1`` (max over such q).  The band holds every pixel whose
    centre is within the reach of some edge pixel's centre.
    """
    h, w = depth.shape
    a = np.abs(coc).astype(np.float64)
    reach = np.zeros((h, w))
    for axis in (0, 1):
        lo = [slice(None), slice(None)]
        hi = [slice(None), slice(None)]
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        edge = depth[lo] != depth[hi]
        pair = np.where(edge, np.maximum(a[lo], a[hi]) + 1.0, 0.0)
        reach[lo] = np.maximum(reach[lo], pair)
        reach[hi] = np.maximum(reach[hi], pair)
    reach = np.round(reach, 3)  # few distinct values: one per pair of layers
    band = np.zeros((h, w), dtype=bool)
    for rad in np.unique(reach[reach > 0]):
        band |= _dilate_disk(reach == rad, float(rad))
    return band


def evaluate(reference: np.ndarray, outputs: dict, band: np.ndarray) -> dict:
    """``{name: (psnr whole, psnr edge band)}`` of each uint8 output against the reference."""
    return {k: (psnr(v, reference), psnr(v, reference, band)) for k, v in outputs.items()}


@dataclass
class Case:
    """Everything one comparison needs, computed from a scene."""

    scene: Scene
    photo: np.ndarray  # uint8 (H, W, 3): what the renderer sees
    depth: np.ndarray  # float32 (H, W) metres: what the renderer sees
    coc: np.ndarray  # float32 (H, W) signed px, from ``depth`` by the thin-lens formula
    band: np.ndarray  # bool (H, W) edge band
    reference: np.ndarray  # uint8 (H, W, 3)
    baselines: dict  # name -> uint8 (H, W, 3)


def make_case(scene: Scene, cell_px: float = DEFAULT_CELL_PX) -> Case:
    """Photo, depth, CoC, edge band, reference and both baselines of ``scene``."""
    photo = pinhole_photo(scene)
    depth = depth_map(scene)
    coc = coc_map(scene, depth)
    return Case(
        scene=scene, photo=photo, depth=depth, coc=coc, band=edge_band(depth, coc),
        reference=render_reference(scene, cell_px),
        baselines={"gaussian": gaussian_stack(photo, coc), "scatter": disk_scatter(photo, coc)},
    )


# ------------------------------------------------------------------- generator


def _smooth_noise(rng, h: int, w: int, scale: float, octaves: int = 3) -> np.ndarray:
    """Value noise in ~[0, 1]: bilinear-upsampled random lattices, 1/2 amplitude per octave."""
    total = np.zeros((h, w))
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        s = max(scale / 2**o, 1.5)
        gh, gw = int(h / s) + 3, int(w / s) + 3
        grid = rng.random((gh, gw))
        y = np.arange(h) / s + rng.random()
        x = np.arange(w) / s + rng.random()
        y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
        fy, fx = (y - y0)[:, None], (x - x0)[None, :]
        # Smoothstep weights: no visible lattice creases.
        fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
        g00 = grid[np.ix_(y0, x0)]
        g01 = grid[np.ix_(y0, x0 + 1)]
        g10 = grid[np.ix_(y0 + 1, x0)]
        g11 = grid[np.ix_(y0 + 1, x0 + 1)]
        total += amp * ((g00 * (1 - fx) + g01 * fx) * (1 - fy) + (g10 * (1 - fx) + g11 * fx) * fy)
        norm += amp
        amp *= 0.5
    return total / norm


def _random_color(rng, lo=0.02, hi=0.85) -> np.ndarray:
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size=3))


def _texture(rng, h: int, w: int) -> np.ndarray:
    """Random linear-light texture (h, w, 3): noise, stripes, gradient or checker."""
    c0, c1 = _random_color(rng), _random_color(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    kind = rng.choice(["noise", "stripes", "gradient", "checker"])
    if kind == "noise":
        t = _smooth_noise(rng, h, w, rng.uniform(3, 20))
        t = np.clip((t - t.mean()) * rng.uniform(2, 4) + 0.5, 0, 1)
    elif kind == "stripes":
        ang = rng.uniform(0, math.pi)
        period = rng.uniform(5, 24)
        u = (xx * math.cos(ang) + yy * math.sin(ang)) / period
        # Antialiased square wave: ramp of ~1 px around each transition.
        t = np.clip(0.5 + period * (np.abs((u % 1.0) - 0.5) - 0.25), 0, 1)
    elif kind == "gradient":
        ang = rng.uniform(0, 2 * math.pi)
        u = xx * math.cos(ang) + yy * math.sin(ang)
        t = (u - u.min()) / max(u.max() - u.min(), 1e-9)
    else:
        cell = rng.uniform(6, 20)
        t = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2).astype(np.float64)
    t = t[..., None]
    tex = c0 * (1 - t) + c1 * t
    # Fine grain so hidden and visible content differ at every scale.
    tex *= 1.0 + 0.15 * (_smooth_noise(rng, h, w, 2.0, octaves=1)[..., None] - 0.5)
    return tex


def _alpha_from_sdf(sdf: np.ndarray) -> np.ndarray:
    """Antialiased coverage from a signed distance in px (negative inside): 1 px ramp."""
    return np.clip(0.5 - sdf, 0.0, 1.0)


def _segment_sdf(xx, yy, p0, p1, half_width):
    d = np.asarray(p1, float) - np.asarray(p0, float)
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / max(d @ d, 1e-12), 0, 1)
    return np.hypot(xx - p0[0] - t * d[0], yy - p0[1] - t * d[1]) - half_width


def _ellipse_sdf(xx, yy, cx, cy, ax, ay, ang=0.0):
    c, s = math.cos(ang), math.sin(ang)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    return (np.hypot(u / ax, v / ay) - 1.0) * min(ax, ay)


def _rect_sdf(xx, yy, cx, cy, hw, hh, ang=0.0, round_px=0.0):
    c, s = math.cos(ang), math.sin(ang)
    u = np.abs((xx - cx) * c + (yy - cy) * s) - (hw - round_px)
    v = np.abs(-(xx - cx) * s + (yy - cy) * c) - (hh - round_px)
    outside = np.hypot(np.maximum(u, 0), np.maximum(v, 0))
    return outside + np.minimum(np.maximum(u, v), 0) - round_px


def _blob_sdf(rng, xx, yy, cx, cy, radius):
    """Irregular blob: a disk whose radius wobbles with angle."""
    ang = np.arctan2(yy - cy, xx - cx)
    wobble = np.zeros_like(ang)
    for k in range(2, 6):
        wobble += rng.uniform(-0.12, 0.12) * np.cos(k * ang + rng.uniform(0, 2 * math.pi))
    return np.hypot(xx - cx, yy - cy) - radius * (1.0 + wobble)


def _branch_sdf(rng, xx, yy, h, w, pad):
    """Thin branch: a random polyline from a frame edge with a side twig, 1-4 px wide."""
    side = rng.integers(4)
    lo, hi_x, hi_y = pad, pad + w, pad + h
    start = [
        (rng.uniform(lo, hi_x), lo - 2),
        (rng.uniform(lo, hi_x), hi_y + 2),
        (lo - 2, rng.uniform(lo, hi_y)),
        (hi_x + 2, rng.uniform(lo, hi_y)),
    ][side]
    target = (rng.uniform(lo + 0.2 * w, hi_x - 0.2 * w), rng.uniform(lo + 0.2 * h, hi_y - 0.2 * h))
    sdf = np.full(xx.shape, np.inf)
    p = np.array(start)
    direction = np.array(target) - p
    direction /= np.linalg.norm(direction)
    width = rng.uniform(2.0, 4.0)
    for _ in range(rng.integers(3, 6)):
        step = rng.uniform(0.12, 0.25) * max(h, w)
        turn = rng.uniform(-0.5, 0.5)
        c, s = math.cos(turn), math.sin(turn)
        direction = np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1]])
        q = p + step * direction
        sdf = np.minimum(sdf, _segment_sdf(xx, yy, p, q, width / 2))
        if rng.random() < 0.6:  # twig
            tw = rng.uniform(-1.2, 1.2)
            c2, s2 = math.cos(tw), math.sin(tw)
            dt = np.array([c2 * direction[0] - s2 * direction[1], s2 * direction[0] + c2 * direction[1]])
            sdf = np.minimum(sdf, _segment_sdf(xx, yy, q, q + rng.uniform(0.08, 0.2) * max(h, w) * dt, 0.6))
        p = q
        width = max(1.0, width * 0.75)
    return sdf


def _add_shape(rgba: np.ndarray, alpha: np.ndarray, tex: np.ndarray) -> None:
    """Composite an opaque textured shape over a premultiplied layer, in place."""
    a = alpha[..., None]
    rgba[..., :3] = tex * a + rgba[..., :3] * (1 - a)
    rgba[..., 3:] = a + rgba[..., 3:] * (1 - a)


def _background(rng, ch, cw, h, w, pad) -> np.ndarray:
    rgba = np.ones((ch, cw, 4))
    rgba[..., :3] = _texture(rng, ch, cw)
    if rng.random() < 0.5:  # a second texture patch for variety
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float64)
        sdf = _rect_sdf(xx, yy, rng.uniform(0, cw), rng.uniform(0, ch), rng.uniform(20, 60),
                        rng.uniform(20, 60), rng.uniform(0, math.pi))
        _add_shape(rgba, _alpha_from_sdf(sdf), _texture(rng, ch, cw))
    # Point lights: 1-3 px spots, linear values 4-60, anywhere (some end up hidden).
    n_lights = rng.integers(10, 31)
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float64)
    for _ in range(n_lights):
        cx = rng.uniform(pad * 0.5, cw - pad * 0.5)
        cy = rng.uniform(pad * 0.5, ch - pad * 0.5)
        radius = rng.uniform(0.3, 1.5)
        cov = _alpha_from_sdf(np.hypot(xx - cx, yy - cy) - radius)
        color = 0.4 + 0.6 * rng.random(3)
        rgba[..., :3] += rng.uniform(4.0, 60.0) * color * cov[..., None]
    return rgba


def _shape_layer(rng, role, ch, cw, h, w, pad) -> np.ndarray:
    rgba = np.zeros((ch, cw, 4))
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float64)
    fx0, fy0 = pad, pad  # frame origin on the canvas

    def in_frame():
        return fx0 + rng.uniform(0.05, 0.95) * w, fy0 + rng.uniform(0.05, 0.95) * h

    if role == "subject":
        cx = fx0 + rng.uniform(0.3, 0.7) * w
        head_r = rng.uniform(0.10, 0.16) * h
        head_y = fy0 + rng.uniform(0.25, 0.45) * h
        torso = _rect_sdf(xx, yy, cx, fy0 + h + 0.1 * h, rng.uniform(1.6, 2.4) * head_r,
                          (fy0 + 1.1 * h - head_y - head_r) / 2 + 2, 0.0, round_px=0.8 * head_r)
        head = _ellipse_sdf(xx, yy, cx, head_y, head_r * rng.uniform(0.8, 0.95), head_r)
        neck = _rect_sdf(xx, yy, cx, head_y + head_r, 0.4 * head_r, 0.6 * head_r)
        _add_shape(rgba, _alpha_from_sdf(torso), _texture(rng, ch, cw))
        _add_shape(rgba, _alpha_from_sdf(np.minimum(head, neck)), _texture(rng, ch, cw))
        if rng.random() < 0.5:  # a thin held object (stick / strap)
            p0 = (cx + rng.uniform(-2, 2) * head_r, fy0 + h)
            p1 = (cx + rng.uniform(-3, 3) * head_r, head_y + rng.uniform(-1, 1) * head_r)
            _add_shape(rgba, _alpha_from_sdf(_segment_sdf(xx, yy, p0, p1, rng.uniform(0.8, 2))),
                       _texture(rng, ch, cw))
        return rgba
    n_shapes = rng.integers(1, 4) if role == "foreground" else rng.integers(2, 5)
    kinds = ["branch", "blob", "bar"] if role == "foreground" else ["rect", "disk", "blob", "bar", "branch"]
    for _ in range(n_shapes):
        kind = rng.choice(kinds)
        cx, cy = in_frame()
        if kind == "rect":
            sdf = _rect_sdf(xx, yy, cx, cy, rng.uniform(0.05, 0.25) * w, rng.uniform(0.05, 0.3) * h,
                            rng.uniform(0, math.pi) if rng.random() < 0.5 else 0.0)
        elif kind == "disk":
            sdf = np.hypot(xx - cx, yy - cy) - rng.uniform(0.05, 0.2) * h
        elif kind == "blob":
            if role == "foreground":  # big out-of-focus mass entering from a corner
                cx = fx0 + rng.choice([0.0, 1.0]) * w
                cy = fy0 + rng.uniform(0, 1) * h
            sdf = _blob_sdf(rng, xx, yy, cx, cy, rng.uniform(0.08, 0.3) * h)
        elif kind == "bar":
            ang = rng.uniform(0, math.pi)
            half_len = max(h, w)
            p0 = (cx - half_len * math.cos(ang), cy - half_len * math.sin(ang))
            p1 = (cx + half_len * math.cos(ang), cy + half_len * math.sin(ang))
            sdf = _segment_sdf(xx, yy, p0, p1, rng.uniform(0.75, 4.0))
        else:
            sdf = _branch_sdf(rng, xx, yy, h, w, pad)
        _add_shape(rgba, _alpha_from_sdf(sdf), _texture(rng, ch, cw))
    return rgba


_FOCALS_MM = (35.0, 50.0, 85.0, 135.0, 200.0)
_SENSORS_MM = (36.0, 23.5)


def random_scene(
    seed: int,
    height: int = 144,
    width: int = 192,
    max_coc_range=(4.0, 25.0),
    n_layers_range=(3, 5),
    blade_choices=(0, 0, 6, 8),
) -> Scene:
    """Seeded random layered scene.

    Parameters
    ----------
    seed : int
        Everything (layers, textures, lights, lens) follows from it.
    height, width : int
        Frame size in pixels.
    max_coc_range : (float, float)
        The largest |CoC| over the layers is drawn uniformly from this range (px).
    n_layers_range : (int, int)
        Inclusive range of the layer count (background included); at least 3.
    blade_choices : sequence of int
        Aperture shapes to draw from (0 = disk).  The default holds only
        point-symmetric shapes so the scores do not depend on the bokeh-orientation
        convention for odd blade counts (see the module docstring).

    Returns
    -------
    Scene
        Depths: background 6-20 m, other layers log-uniform in 0.5 m .. background/1.4
        with at least 25 % between neighbours.  The focus plane is on the subject
        (p = 0.45), a mid or foreground layer (0.3) or the background (0.25).  Lens:
        focal length and sensor picked so that the f-number solving for the drawn
        max |CoC| is plausible (1.2-16 when possible).
    """
    rng = np.random.default_rng(seed)
    n_layers = int(rng.integers(n_layers_range[0], n_layers_range[1] + 1))
    if n_layers < 3:
        raise ValueError("n_layers_range must allow at least 3 layers")
    r_target = float(rng.uniform(*max_coc_range))
    z_bg = float(np.exp(rng.uniform(math.log(6.0), math.log(20.0))))
    while True:
        zs = np.sort(np.exp(rng.uniform(math.log(0.5), math.log(z_bg / 1.4), size=n_layers - 1)))[::-1]
        if np.all(zs[:-1] / zs[1:] >= 1.25):
            break
    depths = [z_bg, *zs.tolist()]  # back to front
    roles = ["background"] + ["mid"] * (n_layers - 3) + ["subject", "foreground"]

    u = rng.random()
    if u < 0.45:
        focus_idx = n_layers - 2
    elif u < 0.75:
        focus_idx = int(rng.integers(1, n_layers - 2)) if n_layers > 3 else n_layers - 1
    else:
        focus_idx = 0
    focus_m = depths[focus_idx]
    spread = max(abs(focus_m / z - 1.0) for z in depths)

    candidates = []
    for f in _FOCALS_MM:
        for sw in _SENSORS_MM:
            if focus_m * 1000.0 <= 2 * f:
                continue
            n = f * f / (2.0 * (focus_m * 1000.0 - f)) * spread / (sw / width) / r_target
            candidates.append((n, f, sw))
    plausible = [c for c in candidates if 1.2 <= c[0] <= 16.0]
    if plausible:
        f_number, focal, sensor = plausible[int(rng.integers(len(plausible)))]
    else:
        f_number, focal, sensor = min(candidates, key=lambda c: abs(math.log(c[0] / 4.0)))

    blades = int(rng.choice(blade_choices))
    rotation = float(rng.uniform(0, 360.0 / blades)) if blades else 0.0
    pad = int(math.ceil(r_target)) + 4
    ch, cw = height + 2 * pad, width + 2 * pad
    layers = []
    for z, role in zip(depths, roles):
        if role == "background":
            rgba = _background(rng, ch, cw, height, width, pad)
        else:
            rgba = _shape_layer(rng, role, ch, cw, height, width, pad)
        layers.append(Layer(float(z), rgba.astype(np.float32), role))
    scene = Scene(
        layers=layers, height=height, width=width, pad=pad, focus_m=float(focus_m),
        f_number=float(f_number), focal_length_mm=float(focal), sensor_width_mm=float(sensor),
        blades=blades, rotation_deg=rotation, seed=seed, focus_role=roles[focus_idx],
    )
    scene.info = {"n_layers": n_layers, "max_coc": scene.max_coc}
    return scene


def single_layer_scene(
    rgba: np.ndarray, coc_px: float, pad: int, blades: int = 0, rotation_deg: float = 0.0
) -> Scene:
    """One full-canvas layer placed at the depth whose CoC is ``coc_px`` (signed).

    Lens: f = 100 mm, sensor 8 mm, focus 0.5 m, and the f-number that makes the CoC
    scale ``k = r / (z_f / z - 1)`` equal to ``2 |coc_px|`` (so the layer sits at
    z_f / 1.5 or z_f / 0.5); ``rgba`` is the padded canvas (premultiplied linear).
    """
    height, width = rgba.shape[0] - 2 * pad, rgba.shape[1] - 2 * pad
    focus_m, f, sw = 0.5, 100.0, 8.0
    k = max(2.0 * abs(coc_px), 1.0)
    n = f * f / (2.0 * (focus_m * 1000.0 - f)) / (sw / width) / k
    depth_m = focus_m / (coc_px / k + 1.0)
    layer = Layer(float(depth_m), np.asarray(rgba, dtype=np.float32), "single")
    return Scene([layer], height, width, pad, focus_m, n, f, sw, blades, rotation_deg)
