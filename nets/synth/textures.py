"""Textures for the synthetic scenes: square crops of real training photos, mip-mapped.

Crops come only from the photos passed in (the training split's frames: the trainer
passes its training cache, never the eval frames).  Each crop is resized to
``size`` × ``size``, randomly flipped/turned, and stored with its mip pyramid (2×2 box
averages), so that a surface far away samples a blurred level instead of aliasing
noise — the texture gradient of a real photo: detail shrinks and fades with distance.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

__all__ = ["TextureBank"]


class TextureBank:
    """``n`` textures, each a mip pyramid of float32 RGB in [0, 1] (linear light).

    Parameters
    ----------
    photos : sequence of numpy.ndarray
        ``(H, W, 3)`` uint8 training photos to crop from (at least 16 px on each side).
    n : int
        Number of textures.
    rng : numpy.random.Generator
    size : int
        Side of a texture in texels (a power of two).
    """

    def __init__(self, photos: Sequence[np.ndarray], n: int, rng: np.random.Generator, size: int = 128) -> None:
        photos = [p for p in photos if p.ndim == 3 and p.shape[2] == 3 and min(p.shape[:2]) >= 16]
        if not photos:
            raise ValueError("TextureBank needs at least one (H, W, 3) photo of 16 px or more")
        if n < 1 or size < 8 or size & (size - 1):
            raise ValueError(f"n must be >= 1 and size a power of two >= 8, got n={n!r}, size={size!r}")
        base = np.empty((n, size, size, 3), np.float32)
        for k in range(n):
            photo = photos[int(rng.integers(len(photos)))]
            h, w = photo.shape[:2]
            side = int(rng.uniform(0.12, 0.6) * min(h, w))
            side = max(8, min(side, h, w))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size), Image.BILINEAR)
            arr = np.asarray(crop, np.float32) / 255.0
            arr = np.rot90(arr, int(rng.integers(4)))
            if rng.random() < 0.5:
                arr = arr[:, ::-1]
            base[k] = arr ** 2.2  # sRGB-ish to linear: shading is done in linear light
        self.levels = [base]
        while self.levels[-1].shape[1] > 1:
            a = self.levels[-1]
            self.levels.append(0.25 * (a[:, 0::2, 0::2] + a[:, 1::2, 0::2] + a[:, 0::2, 1::2] + a[:, 1::2, 1::2]))
        self.size = size
        self.mean = base.mean(axis=(1, 2))  # (n, 3): a texture's average colour

    def __len__(self) -> int:
        return self.levels[0].shape[0]

    def sample(self, tex: np.ndarray, u: np.ndarray, v: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        """Bilinear sample of texture ``tex`` at ``(u, v)`` in tiles (mirrored repeat).

        Parameters
        ----------
        tex : numpy.ndarray
            ``(N,)`` int texture indices.
        u, v : numpy.ndarray
            ``(N,)`` coordinates in texture tiles (1 = one texture width).
        footprint : numpy.ndarray
            ``(N,)`` pixel footprint in tiles: selects the mip level (nearest).

        Returns
        -------
        numpy.ndarray
            ``(N, 3)`` float32 linear RGB.
        """
        out = np.empty((tex.size, 3), np.float32)
        level = np.clip(np.rint(np.log2(np.maximum(footprint * self.size, 1e-6))), 0, len(self.levels) - 1).astype(np.int64)
        # Mirrored repeat: continuous across tile borders, no seams.
        u = np.abs(np.mod(u, 2.0) - 1.0)
        v = np.abs(np.mod(v, 2.0) - 1.0)
        for k in np.unique(level):
            sel = np.nonzero(level == k)[0]
            arr = self.levels[k]
            s = arr.shape[1]
            x = u[sel] * (s - 1)
            y = v[sel] * (s - 1)
            x0 = np.minimum(x.astype(np.int64), s - 1)
            y0 = np.minimum(y.astype(np.int64), s - 1)
            x1, y1 = np.minimum(x0 + 1, s - 1), np.minimum(y0 + 1, s - 1)
            fx, fy = (x - x0)[:, None].astype(np.float32), (y - y0)[:, None].astype(np.float32)
            t = tex[sel]
            top = arr[t, y0, x0] * (1 - fx) + arr[t, y0, x1] * fx
            bot = arr[t, y1, x0] * (1 - fx) + arr[t, y1, x1] * fx
            out[sel] = top * (1 - fy) + bot * fy
        return out
