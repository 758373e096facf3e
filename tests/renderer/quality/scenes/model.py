"""Scene model: thin lens, layers (fronto-parallel or planar), aperture shape.

A scene is a list of RGBA layers seen by a thin lens.  Each layer is a raster of
*premultiplied linear-light* RGBA on a canvas padded by ``pad`` pixels on every side
of the ``height x width`` frame; its continuous texture is the bilinear interpolant
of the raster, painted in pinhole-image coordinates.  A layer is a plane: its
inverse depth ``q = 1/z`` (1/m) is an affine function of the pinhole pixel,

    q(x, y) = 1 / depth_m + slope[0] * (x - anchor[0]) + slope[1] * (y - anchor[1])

(frame pixel coordinates, x right, y down).  That is exact for any plane in 3-D (a
plane ``n . X = h`` seen through a pinhole has ``1/z`` affine in the image
coordinates); ``slope = (0, 0)`` is a fronto-parallel layer.  The texture is what the
pinhole camera sees of the plane, so any raster is a physically valid plane texture.

Lens: the signed circle-of-confusion *radius* in pixels of a point at depth ``z``::

    r(z) = f**2 / (2 N (z_f - f)) * (z_f / z - 1) / (sensor_width / W)

with ``f``, ``z_f``, ``z`` in mm; ``r > 0`` in front of the focus plane.  ``r`` is
affine in ``q``, so on a planar layer it is affine in the pinhole pixel too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np


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
        Metric depth along the optical axis, metres, > 0 (``inf`` allowed).
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


@dataclass
class Layer:
    """One planar layer.

    Attributes
    ----------
    depth_m : float
        Metric depth at ``anchor`` (the whole layer when ``slope`` is zero), metres.
    rgba : ndarray, float32, (height + 2 pad, width + 2 pad, 4)
        Premultiplied linear-light RGBA; colour may exceed 1 (lights, over-exposed
        surfaces).  Where alpha is 0 the plane is absent (its ``q`` there may be <= 0).
    role : str
        What the generator put there ("background", "subject", "ground", ...).
    slope : (float, float)
        d(1/z)/dx and d(1/z)/dy, 1/m per frame pixel (0 for a fronto-parallel layer).
    anchor : (float, float)
        Frame pixel (x, y) where the depth is ``depth_m``.
    """

    depth_m: float
    rgba: np.ndarray
    role: str = "layer"
    slope: tuple = (0.0, 0.0)
    anchor: tuple = (0.0, 0.0)

    @property
    def is_planar_slanted(self) -> bool:
        return self.slope[0] != 0.0 or self.slope[1] != 0.0

    def inverse_depth(self, x, y, pad: int = 0):
        """``q = 1/z`` (1/m, float64) at canvas pixel (x, y) (frame pixel when pad = 0)."""
        q0 = 1.0 / self.depth_m  # 0 for depth inf
        return (q0 + self.slope[0] * (np.asarray(x, np.float64) - pad - self.anchor[0])
                + self.slope[1] * (np.asarray(y, np.float64) - pad - self.anchor[1]))


@dataclass
class Scene:
    """Layers (listed back to front) plus the lens.

    Fronto-parallel layers must come in strictly decreasing depth.  Planar layers
    may interleave in depth with others: the reference then sorts the surfaces per
    pixel and per aperture sample.  ``pad`` is the canvas margin in pixels; it must
    be at least ``max|r| + cell_px / 2 + 2`` so every shifted, cell-averaged layer
    stays inside its canvas.

    ``delivery`` says how the depth reaches the renderer: ``{}`` (the exact metric
    depth map, float32 metres) or ``{"kind": "disparity8", "jpeg_quality": q}`` (the
    disparity normalised over the frame, quantised to 8 bits, JPEG-compressed at
    quality ``q`` unless it is None); see :func:`scenes.cases.make_case`.
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
    family: str = "layered"
    delivery: dict = field(default_factory=dict)

    def coc(self, depth_m):
        """Signed CoC radius (px) of depth(s) ``depth_m`` for this scene's lens."""
        return coc_radius_px(
            depth_m, self.focus_m, self.f_number, self.focal_length_mm,
            self.sensor_width_mm, self.width,
        )

    def coc_of_inverse_depth(self, q):
        """Signed CoC radius (px) of inverse depth(s) ``q`` (1/m), affine in ``q``."""
        a, b = self.coc_affine
        return a * np.asarray(q, np.float64) + b

    @property
    def coc_affine(self) -> tuple[float, float]:
        """``(A, B)`` with ``r = A q + B`` (q = 1/z in 1/m): the thin-lens CoC is affine in q."""
        b = float(self.coc(math.inf))
        return float(self.coc(1.0)) - b, b

    @property
    def layer_coc(self) -> np.ndarray:
        """Signed CoC radius of every layer at its anchor, back to front (float64, px)."""
        return np.array([self.coc(layer.depth_m) for layer in self.layers], dtype=np.float64)

    def layer_coc_range(self, i: int) -> tuple[float, float]:
        """(min, max) signed CoC of layer ``i`` over the canvas pixels it covers."""
        layer = self.layers[i]
        if not layer.is_planar_slanted:
            r = float(self.coc(layer.depth_m))
            return r, r
        ys, xs = np.nonzero(layer.rgba[..., 3] > 0)
        if ys.size == 0:
            return 0.0, 0.0
        r = self.coc_of_inverse_depth(layer.inverse_depth(xs, ys, self.pad))
        return float(r.min()), float(r.max())

    @property
    def max_coc(self) -> float:
        return max(max(abs(v) for v in self.layer_coc_range(i)) for i in range(len(self.layers)))

    @property
    def has_slanted_layers(self) -> bool:
        return any(layer.is_planar_slanted for layer in self.layers)

    def render_kwargs(self) -> dict:
        """Keyword arguments of ``pybokeh.render`` describing this scene's lens (metric depth)."""
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
    point *behind* the focus plane (see :mod:`scenes.reference`).
    """
    k = np.arange(blades)
    theta = math.pi / 2 + math.radians(rotation_deg) + 2.0 * math.pi * k / blades
    return np.stack([np.cos(theta), -np.sin(theta)], axis=1)


def inside_aperture(x, y, blades: int, rotation_deg: float) -> np.ndarray:
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


def check_blades(blades: int) -> None:
    if blades != 0 and not 3 <= blades <= 16:
        raise ValueError(f"blades must be 0 or 3..16, got {blades}")
