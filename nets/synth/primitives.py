"""Ray-primitive intersection for the synthetic scenes (vectorised NumPy, float32).

Every primitive answers three questions, all on arrays:

* ``bounds()`` — world axis-aligned bounding box ``(lo, hi)``, used to cull pixels
  (the primitive's screen rectangle) and shadow rays (its bounding sphere);
* ``intersect(o, d)`` — ray parameter ``t`` of the first hit in front of the origin
  (``inf`` where the ray misses); ``o`` and ``d`` are ``(x, y, z)`` triples of scalars
  or broadcastable arrays, ``d`` need not be unit length;
* ``surface(px, py, pz)`` — unit normal ``(nx, ny, nz)`` and texture coordinates
  ``(u, v)`` in metres along the surface at hit points (so a texture keeps its
  physical size: the texture gradient with distance is real).

Vertical structure only (boxes turn about the vertical axis, cylinders stand upright):
that is what grounds, rooms, furniture, buildings, trees and people are made of.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["EPS", "AxisPlane", "Sphere", "Cylinder", "Box"]

EPS = np.float32(1e-3)  # hits closer than this along the ray are ignored (self-shadowing)
_INF = np.float32(np.inf)


def _f(x):
    return np.float32(x)


@dataclass
class _Prim:
    mat: int  # material index into the scene's material table
    casts_shadow: bool = field(default=True, kw_only=True)


@dataclass
class AxisPlane(_Prim):
    """Infinite plane ``p[axis] = pos`` facing ``sign`` (ground, floor, walls, ceiling).

    A ray hits it if it moves towards the plane; a room is six of them around the camera
    (the nearest hit is the wall the ray leaves through).
    """

    axis: int = 1
    pos: float = 0.0
    sign: float = 1.0

    def bounds(self):
        return None  # unbounded: never culled

    def intersect(self, o, d):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (_f(self.pos) - o[self.axis]) / d[self.axis]
        return np.where(t > EPS, t, _INF).astype(np.float32)

    def surface(self, px, py, pz):
        p = (px, py, pz)
        n = [np.zeros_like(px), np.zeros_like(px), np.zeros_like(px)]
        n[self.axis] = np.full_like(px, self.sign)
        a, b = [p[k] for k in range(3) if k != self.axis]
        return n[0], n[1], n[2], a, b


@dataclass
class Sphere(_Prim):
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 1.0

    def bounds(self):
        c = np.asarray(self.center, np.float64)
        return c - self.radius, c + self.radius

    def intersect(self, o, d):
        cx, cy, cz = (_f(v) for v in self.center)
        ox, oy, oz = o[0] - cx, o[1] - cy, o[2] - cz
        a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        b = ox * d[0] + oy * d[1] + oz * d[2]
        c = ox * ox + oy * oy + oz * oz - _f(self.radius) ** 2
        disc = b * b - a * c
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (-b - np.sqrt(disc)) / a
        return np.where((disc >= 0) & (t > EPS), t, _INF).astype(np.float32)

    def surface(self, px, py, pz):
        r = _f(self.radius)
        nx, ny, nz = (px - _f(self.center[0])) / r, (py - _f(self.center[1])) / r, (pz - _f(self.center[2])) / r
        u = np.arctan2(nz, nx) * r
        v = np.arcsin(np.clip(ny, -1, 1)) * r
        return nx, ny, nz, u, v


@dataclass
class Cylinder(_Prim):
    """Upright capped cylinder: axis through ``(cx, cz)``, from ``y0`` to ``y1``."""

    cx: float = 0.0
    cz: float = 0.0
    radius: float = 0.5
    y0: float = 0.0
    y1: float = 1.0

    def bounds(self):
        r = self.radius
        return np.array([self.cx - r, self.y0, self.cz - r]), np.array([self.cx + r, self.y1, self.cz + r])

    def intersect(self, o, d):
        ox, oz = o[0] - _f(self.cx), o[2] - _f(self.cz)
        r2 = _f(self.radius) ** 2
        a = d[0] * d[0] + d[2] * d[2]
        b = ox * d[0] + oz * d[2]
        c = ox * ox + oz * oz - r2
        disc = b * b - a * c
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (-b - np.sqrt(disc)) / a
            y = o[1] + t * d[1]
            side = (disc >= 0) & (t > EPS) & (y >= _f(self.y0)) & (y <= _f(self.y1))
            best = np.where(side, t, _INF)
            for cap in (self.y0, self.y1):  # a cap is hit where its plane is crossed inside the circle
                tc = (_f(cap) - o[1]) / d[1]
                xc, zc = ox + tc * d[0], oz + tc * d[2]
                ok = (tc > EPS) & (xc * xc + zc * zc <= r2)
                best = np.where(ok & (tc < best), tc, best)
        return best.astype(np.float32)

    def surface(self, px, py, pz):
        dx, dz = px - _f(self.cx), pz - _f(self.cz)
        r = _f(self.radius)
        on_cap = (np.abs(py - _f(self.y1)) < 1e-3 * max(1.0, self.y1)) | (np.abs(py - _f(self.y0)) < 1e-3 * max(1.0, abs(self.y0)))
        on_cap &= dx * dx + dz * dz < (r * 0.999) ** 2
        up = np.where(py > _f(0.5 * (self.y0 + self.y1)), _f(1), _f(-1))
        nx = np.where(on_cap, 0, dx / r)
        nz = np.where(on_cap, 0, dz / r)
        ny = np.where(on_cap, up, 0).astype(np.float32)
        u = np.where(on_cap, dx, np.arctan2(dz, dx) * r)
        v = np.where(on_cap, dz, py)
        return nx.astype(np.float32), ny, nz.astype(np.float32), u, v


@dataclass
class Box(_Prim):
    """Box with half sizes ``half`` around ``center``, turned by ``yaw`` about the vertical."""

    center: tuple[float, float, float] = (0.0, 0.5, 0.0)
    half: tuple[float, float, float] = (0.5, 0.5, 0.5)
    yaw: float = 0.0

    def __post_init__(self) -> None:
        self._c, self._s = _f(math.cos(self.yaw)), _f(math.sin(self.yaw))

    def bounds(self):
        hx, hy, hz = self.half
        ex = abs(math.cos(self.yaw)) * hx + abs(math.sin(self.yaw)) * hz
        ez = abs(math.sin(self.yaw)) * hx + abs(math.cos(self.yaw)) * hz
        c = np.asarray(self.center, np.float64)
        return c - (ex, hy, ez), c + (ex, hy, ez)

    def _to_local(self, x, z):
        # Inverse rotation about y: local = R(-yaw) (world - centre).
        return self._c * x - self._s * z, self._s * x + self._c * z

    def intersect(self, o, d):
        lx, lz = self._to_local(o[0] - _f(self.center[0]), o[2] - _f(self.center[2]))
        ly = o[1] - _f(self.center[1])
        dx, dz = self._to_local(d[0], d[2])
        t_near, t_far = None, None
        with np.errstate(divide="ignore", invalid="ignore"):
            for oc, dc, h in ((lx, dx, self.half[0]), (ly, d[1], self.half[1]), (lz, dz, self.half[2])):
                inv = _f(1) / np.where(dc == 0, _f(1e-30), dc)
                t1, t2 = (-_f(h) - oc) * inv, (_f(h) - oc) * inv
                lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
                t_near = lo if t_near is None else np.maximum(t_near, lo)
                t_far = hi if t_far is None else np.minimum(t_far, hi)
        hit = (t_near <= t_far) & (t_near > EPS)
        return np.where(hit, t_near, _INF).astype(np.float32)

    def surface(self, px, py, pz):
        lx, lz = self._to_local(px - _f(self.center[0]), pz - _f(self.center[2]))
        ly = py - _f(self.center[1])
        qx, qy, qz = lx / _f(self.half[0]), ly / _f(self.half[1]), lz / _f(self.half[2])
        ax, ay, az = np.abs(qx), np.abs(qy), np.abs(qz)
        on_x = (ax >= ay) & (ax >= az)
        on_y = ~on_x & (ay >= az)
        on_z = ~on_x & ~on_y
        nlx = np.where(on_x, np.sign(qx), 0).astype(np.float32)
        nly = np.where(on_y, np.sign(qy), 0).astype(np.float32)
        nlz = np.where(on_z, np.sign(qz), 0).astype(np.float32)
        # Back to world: R(yaw) n_local.
        nx = self._c * nlx + self._s * nlz
        nz = -self._s * nlx + self._c * nlz
        u = np.where(on_x, lz, lx)
        v = np.where(on_y, lz, ly)
        return nx, nly, nz, u, v
