"""Pinhole camera for the synthetic scenes: pose from height, yaw, pitch, roll; rays per pixel.

World frame: ``y`` up, the ground is ``y = 0``.  Camera frame: ``x`` right, ``y`` up,
``z`` forward (the optical axis).  Ray directions are scaled so that their camera-frame
``z`` component is 1: the ray parameter ``t`` of a hit *is* its depth along the optical
axis, the quantity every depth map in pybokeh holds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["Camera", "rotation"]


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """World-from-camera rotation (3×3 float64): roll about the optical axis, then pitch
    (positive = looking up), then yaw about the world vertical (radians)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    r_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return r_yaw @ r_pitch @ r_roll


@dataclass(frozen=True)
class Camera:
    """A pinhole camera.

    Attributes
    ----------
    position : tuple of float
        Centre of projection in world metres.
    yaw, pitch, roll : float
        Orientation in radians (see :func:`rotation`).
    hfov : float
        Horizontal field of view in radians (square pixels).
    height, width : int
        Image size in pixels.
    """

    position: tuple[float, float, float]
    yaw: float
    pitch: float
    roll: float
    hfov: float
    height: int
    width: int

    def __post_init__(self) -> None:
        if not 0.05 < self.hfov < math.pi - 0.05:
            raise ValueError(f"hfov must be in (0.05, pi - 0.05) radians, got {self.hfov!r}")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"image size must be positive, got {self.height}x{self.width}")

    @property
    def focal(self) -> float:
        """Focal length in pixels."""
        return 0.5 * self.width / math.tan(0.5 * self.hfov)

    @cached_property
    def rot(self) -> np.ndarray:
        return rotation(self.yaw, self.pitch, self.roll)

    def rays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World directions ``(dx, dy, dz)``, each ``(H, W)`` float32, camera-frame z = 1."""
        f = self.focal
        xs = (np.arange(self.width, dtype=np.float64) + 0.5 - 0.5 * self.width) / f
        ys = -(np.arange(self.height, dtype=np.float64) + 0.5 - 0.5 * self.height) / f
        r = self.rot
        out = []
        for k in range(3):  # d_world = R @ (x, y, 1)
            out.append((r[k, 0] * xs[None, :] + r[k, 1] * ys[:, None] + r[k, 2]).astype(np.float32))
        return out[0], out[1], out[2]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel column, row and depth of world points ``(N, 3)`` (depth <= 0: behind)."""
        cam = (np.asarray(points, np.float64) - np.asarray(self.position)) @ self.rot  # rows: R^T p
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            col = cam[:, 0] / z * self.focal + 0.5 * self.width
            row = -cam[:, 1] / z * self.focal + 0.5 * self.height
        return col, row, z

    def unproject(self, col: float, row: float, depth: float) -> np.ndarray:
        """World point at pixel ``(col, row)`` (continuous, 0 = left/top edge) and ``depth``."""
        f = self.focal
        cam = np.array([(col - 0.5 * self.width) / f, -(row - 0.5 * self.height) / f, 1.0]) * depth
        return np.asarray(self.position) + self.rot @ cam
