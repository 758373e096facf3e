"""Aperture shapes: a disk or a regular polygon of 3–16 blades.

The renderer splats each out-of-focus pixel as the aperture's shape scaled to
its circle of confusion.  It needs, for every row of a splat, the horizontal
extent of the shape at that height: :class:`Aperture` tabulates it for
polygons (the disk is computed exactly).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .validate import finite

#: Samples of the span table; must match ``kApertureLutSize`` in csrc/bokeh_math.h.
LUT_SIZE = 1024


@dataclass(frozen=True)
class Aperture:
    """Shape of the lens aperture, as seen in the image.

    Parameters
    ----------
    blades : int
        0 for a circular aperture, or the number of diaphragm blades, 3 to 16:
        a regular polygon inscribed in the circle of confusion (its
        circumradius is the CoC radius).
    rotation_deg : float
        Counter-clockwise rotation of the polygon in degrees, as seen in the
        image for points behind the focus plane. At 0 one vertex points
        straight up.  In front of the focus plane the shape appears
        point-reflected (:attr:`reflected`), as with a real lens.  Stored
        reduced modulo 360 (exactly, with ``math.fmod``), so that a huge angle
        keeps the blades' spacing.

    Attributes
    ----------
    lut : numpy.ndarray
        ``(LUT_SIZE + 1, 2)`` float32: left and right edge ``(xl, xr)`` of the
        unit polygon at heights ``v = -1 + 2 i / LUT_SIZE`` (``v`` grows
        downwards, in units of the radius).  Empty ``(1, 2)`` for the disk.
    ext_lo, ext_hi : float
        Vertical extent of the unit shape (``-1, 1`` for the disk).
    """

    blades: int = 0
    rotation_deg: float = 0.0
    lut: np.ndarray = field(init=False, repr=False, compare=False)
    ext_lo: float = field(init=False)
    ext_hi: float = field(init=False)

    def __post_init__(self) -> None:
        blades = validate_blades(self.blades)
        rotation = finite(self.rotation_deg, "rotation_deg")
        # Reduced exactly: at 1e30 degrees, 90 + rotation + 360 k / blades would round every
        # vertex to the same angle (a zero-area aperture).
        rotation = math.fmod(rotation, 360.0)
        object.__setattr__(self, "blades", blades)
        object.__setattr__(self, "rotation_deg", rotation)
        if blades == 0:
            lut, lo, hi = np.zeros((1, 2), np.float32), -1.0, 1.0
        else:
            lut, lo, hi = polygon_span_table(blades, rotation)
        object.__setattr__(self, "lut", lut)
        object.__setattr__(self, "ext_lo", lo)
        object.__setattr__(self, "ext_hi", hi)

    @property
    def reflected(self) -> "Aperture":
        """The point reflection of this aperture (a polygon turned by 180°).

        A real lens images the aperture upright for points behind the focus
        plane and point-reflected for points in front of it; the renderer
        uses this shape for the near side.
        """
        return Aperture(self.blades, self.rotation_deg + 180.0) if self.blades % 2 else self

    def kernel_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Tables the kernels take: ``luts`` (2, LUT_SIZE + 1, 2) and ``extents`` (2, 2), float32.

        Index 0 is the shape behind the focus plane (this aperture), 1 the shape
        in front of it (:attr:`reflected`).
        """
        near = self.reflected
        if self.blades == 0:
            luts = np.zeros((2, LUT_SIZE + 1, 2), np.float32)
        else:
            luts = np.stack([self.lut, near.lut])
        extents = np.array([[self.ext_lo, self.ext_hi], [near.ext_lo, near.ext_hi]], np.float32)
        return luts, extents

    def vertices(self) -> np.ndarray:
        """Polygon vertices ``(blades, 2)`` as ``(x, y)`` with y down, unit circumradius."""
        if self.blades == 0:
            raise ValueError("a circular aperture has no vertices")
        return polygon_vertices(self.blades, self.rotation_deg)


def validate_blades(blades: object) -> int:
    """Check ``blades`` (0 or 3..16) and return it as an int."""
    if isinstance(blades, bool) or not isinstance(blades, (int, np.integer)):
        raise TypeError(f"blades must be an int (0 for a disk, or 3..16), got {type(blades).__name__}")
    blades = int(blades)
    if blades != 0 and not 3 <= blades <= 16:
        raise ValueError(f"blades must be 0 (disk) or 3..16, got {blades}")
    return blades


def polygon_vertices(blades: int, rotation_deg: float) -> np.ndarray:
    """Vertices of the regular polygon, ``(blades, 2)`` float64, (x, y) with y down."""
    phi = np.deg2rad(90.0 + rotation_deg + 360.0 * np.arange(blades) / blades)
    return np.stack([np.cos(phi), -np.sin(phi)], axis=1)


def polygon_span_table(blades: int, rotation_deg: float) -> tuple[np.ndarray, float, float]:
    """Tabulate the left/right edges of the unit polygon per height.

    Returns ``(lut, ext_lo, ext_hi)``; heights outside the polygon's vertical
    extent are clamped to it so that linear interpolation stays exact up to the
    top and bottom edges.
    """
    verts = polygon_vertices(blades, rotation_deg)
    lo, hi = float(verts[:, 1].min()), float(verts[:, 1].max())
    v = np.clip(np.linspace(-1.0, 1.0, LUT_SIZE + 1), lo, hi)
    p, q = verts, np.roll(verts, -1, axis=0)
    dy = q[:, 1] - p[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (v[:, None] - p[None, :, 1]) / dy[None, :]
    x = p[None, :, 0] + t * (q[None, :, 0] - p[None, :, 0])
    hit = (t >= -1e-9) & (t <= 1 + 1e-9) & (dy[None, :] != 0)
    xl = np.where(hit, x, np.inf).min(axis=1)
    xr = np.where(hit, x, -np.inf).max(axis=1)
    # At an exact vertex height only that vertex may hit: a zero-width span.
    xl = np.where(np.isfinite(xl), xl, 0.0)
    xr = np.where(np.isfinite(xr), xr, 0.0)
    return np.stack([xl, xr], axis=1).astype(np.float32), lo, hi
