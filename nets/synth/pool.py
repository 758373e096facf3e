"""A deterministic pool of synthetic frames, built once per training run (or loaded).

Frame ``i`` of a pool with seed ``s`` is ``synth_frame(rng = default_rng([s, i]))``:
the pool is a pure function of its settings and of the texture photos, and so is its
cache file name (a digest of all of them), so a cached pool can never be stale.
Depth is stored as float16 metres (``inf`` = sky), colour as uint8.
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .render import render
from .scenes import KIND_WEIGHTS, random_scene
from .textures import TextureBank

__all__ = ["synth_frame", "SynthPool", "ASPECTS", "GENERATOR_VERSION"]

#: Width / height of the rendered frames (one drawn per frame), like real photos'.
ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9, 3 / 4, 2 / 3)
#: Bump when the generator changes what a seed renders (invalidates cached pools).
GENERATOR_VERSION = 1
N_TEXTURES = 384
_F16_MAX = 6.0e4  # finite depths above this are stored as this (float16 max is 65504)


def frame_shape(rng: np.random.Generator, short_side: int) -> tuple[int, int]:
    aspect = ASPECTS[int(rng.integers(len(ASPECTS)))]
    if aspect >= 1:
        return short_side, int(round(short_side * aspect))
    return int(round(short_side / aspect)), short_side


def synth_frame(rng: np.random.Generator, bank: TextureBank, short_side: int = 256, kind: str | None = None,
                shape: tuple[int, int] | None = None,
                kind_weights: tuple[float, ...] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """One synthetic RGB-D frame.

    Parameters
    ----------
    rng : numpy.random.Generator
        Everything random about the frame comes from it.
    bank : TextureBank
    short_side : int
        Shorter image side in pixels (the aspect ratio is drawn from :data:`ASPECTS`).
    kind : str, optional
        Scene kind (:data:`~pybokeh.nets.synth.scenes.KINDS`); drawn when omitted.
    shape : (int, int), optional
        ``(height, width)`` instead of ``short_side`` and a drawn aspect.
    kind_weights : tuple of float, optional
        Probability of each of :data:`~pybokeh.nets.synth.scenes.KINDS` when ``kind`` is drawn
        (default :data:`~pybokeh.nets.synth.scenes.KIND_WEIGHTS`).

    Returns
    -------
    rgb : numpy.ndarray
        ``(H, W, 3)`` uint8.
    depth : numpy.ndarray
        ``(H, W)`` float32 metres along the optical axis, ``inf`` for sky.
    kind : str
    """
    h, w = shape if shape is not None else frame_shape(rng, short_side)
    scene = random_scene(rng, bank, h, w, kind, kind_weights)
    rgb, depth = render(scene, bank, rng)
    return rgb, depth, scene.kind


def _digest(photos: Sequence[np.ndarray], *settings) -> str:
    h = hashlib.blake2b(digest_size=10)
    h.update(repr((GENERATOR_VERSION, N_TEXTURES) + settings).encode())
    for p in photos:
        h.update(np.ascontiguousarray(p).data)
    return h.hexdigest()


class SynthPool:
    """``n`` synthetic frames with the cache interface of :class:`~pybokeh.nets.dataset.FrameCache`:
    ``rgb``, ``depth`` (float16 metres, ``inf`` = sky), ``sparse`` (all False), ``sources``
    (``"synthetic/<kind>"``)."""

    def __init__(self, rgb: list[np.ndarray], depth: list[np.ndarray], kinds: list[str]) -> None:
        if not len(rgb) == len(depth) == len(kinds):
            raise ValueError("rgb, depth and kinds must have one length")
        self.rgb, self.depth, self.kinds = rgb, depth, kinds
        self.sparse = [False] * len(rgb)
        self.sources = [f"synthetic/{k}" for k in kinds]

    def __len__(self) -> int:
        return len(self.rgb)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.rgb) + sum(a.nbytes for a in self.depth)

    @classmethod
    def generate(cls, n: int, seed: int, short_side: int, texture_photos: Sequence[np.ndarray],
                 progress: Callable[[int], None] | None = None,
                 kind_weights: tuple[float, ...] | None = None) -> "SynthPool":
        """Render ``n`` frames (textures: :data:`N_TEXTURES` crops of ``texture_photos``; scene
        kinds drawn with ``kind_weights``, default :data:`~pybokeh.nets.synth.scenes.KIND_WEIGHTS`)."""
        if n < 1 or short_side < 16:
            raise ValueError(f"n must be >= 1 and short_side >= 16, got {n!r}, {short_side!r}")
        bank = TextureBank(texture_photos, N_TEXTURES, np.random.default_rng([seed, 0x7E47]))
        rgb, depth, kinds = [], [], []
        for i in range(n):
            c, d, k = synth_frame(np.random.default_rng([seed, i]), bank, short_side, kind_weights=kind_weights)
            rgb.append(c)
            depth.append(np.where(np.isfinite(d), np.minimum(d, _F16_MAX), np.inf).astype(np.float16))
            kinds.append(k)
            if progress is not None:
                progress(i + 1)
        return cls(rgb, depth, kinds)

    @classmethod
    def build(cls, n: int, *, seed: int, short_side: int, texture_photos: Sequence[np.ndarray],
              cache_dir: str | os.PathLike | None = None, log: Callable[[str], None] | None = None,
              kind_weights: tuple[float, ...] | None = None) -> "SynthPool":
        """:meth:`generate`, or load the identical pool from ``cache_dir`` (and save it there)."""
        path = None
        if cache_dir is not None:
            # The default kind mix keeps its old key, so pools cached before kind_weights existed stay valid.
            mix = () if kind_weights is None or tuple(kind_weights) == KIND_WEIGHTS else (tuple(kind_weights),)
            key = _digest(texture_photos, n, seed, short_side, *mix)
            path = Path(cache_dir) / f"synth_{n}_{seed}_{short_side}_{key}.npz"
            if path.is_file():
                return cls.load(path)
        t0 = time.perf_counter()

        def progress(i):
            if log is not None and (i % 250 == 0 or i == n):
                log(f"synthetic pool: {i}/{n} frames ({i / (time.perf_counter() - t0):.1f} frames/s)")

        pool = cls.generate(n, seed, short_side, texture_photos, progress, kind_weights)
        if path is not None:
            pool.save(path)
        return pool

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shapes = np.array([a.shape[:2] for a in self.rgb], np.int64)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, shapes=shapes, kinds=np.array(self.kinds),
                 rgb=np.concatenate([a.ravel() for a in self.rgb]),
                 depth=np.concatenate([a.ravel() for a in self.depth]))
        os.replace(tmp, path)  # atomic: a concurrent run never reads half a file

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SynthPool":
        with np.load(path) as z:
            shapes, kinds, rgb_flat, depth_flat = z["shapes"], z["kinds"], z["rgb"], z["depth"]
        rgb, depth, a, b = [], [], 0, 0
        for h, w in shapes:
            rgb.append(rgb_flat[a:a + h * w * 3].reshape(h, w, 3))
            depth.append(depth_flat[b:b + h * w].reshape(h, w))
            a, b = a + h * w * 3, b + h * w
        if a != rgb_flat.size or b != depth_flat.size:
            raise ValueError(f"{path}: sizes do not match the stored shapes")
        return cls(rgb, depth, [str(k) for k in kinds])
