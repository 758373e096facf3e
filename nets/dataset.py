"""In-memory frame cache and the PyTorch training dataset.

Frames are decoded once, reduced so that their shorter side is at most
``cache_short_side`` (colour: Lanczos; depth: nearest neighbour, or nearest return for
sparse LiDAR depth (:mod:`~pybokeh.nets.resample`), stored as uint16 millimetres,
0 = invalid), and kept in memory: the ~660 frames of ``shared/data/rgbd`` take ~250 MB
at a 256 px short side.  DataLoader workers (forked) share the cache.

:class:`ConcatCache` joins caches with the same interface (``rgb``, ``depth``,
``sparse``, ``sources``), e.g. real frames and a synthetic pool
(:mod:`pybokeh.nets.synth`), for :class:`PairDataset`.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import AugmentConfig, augment_pair
from .data.frame import Frame
from .depth_target import depth_to_target
from .resample import resize_depth_nearest, resize_rgb

__all__ = ["FrameCache", "ConcatCache", "PairDataset", "to_network_input", "SPARSE_FRACTION", "is_sparse"]

MAX_MM = np.iinfo(np.uint16).max
#: A depth map with fewer valid pixels than this fraction is sparse (projected LiDAR:
#: 0.2-0.5 %); dense sensors with holes have 30-100 %.
SPARSE_FRACTION = 0.05


def is_sparse(depth: np.ndarray) -> bool:
    """True when under :data:`SPARSE_FRACTION` of the pixels of ``depth`` are valid (> 0)."""
    return bool(np.count_nonzero(depth > 0) < SPARSE_FRACTION * depth.size)


def _decode(frame: Frame, short_side: int | None) -> tuple[np.ndarray, np.ndarray, bool]:
    rgb, depth_m = frame.load()
    sparse = is_sparse(depth_m)
    h, w = depth_m.shape
    if short_side is not None and min(h, w) > short_side:
        s = short_side / min(h, w)
        out = (max(1, round(h * s)), max(1, round(w * s)))
        rgb = resize_rgb(rgb, out)
        depth_m = resize_depth_nearest(depth_m, out, sparse=sparse)
    mm = np.clip(np.rint(depth_m * 1000.0), 0, MAX_MM).astype(np.uint16)
    return np.ascontiguousarray(rgb), mm, sparse


class FrameCache:
    """Decoded frames: ``rgb[i]`` ``(H, W, 3)`` uint8 and ``depth_mm[i]`` ``(H, W)`` uint16
    (also as ``depth[i]``); ``sparse[i]`` says whether the full-resolution depth was sparse.

    Parameters
    ----------
    frames : sequence of Frame
    short_side : int or None
        Reduce larger frames to this shorter side; ``None`` keeps full resolution.
    threads : int
        Decoding threads (PIL releases the GIL).
    """

    def __init__(self, frames: Sequence[Frame], short_side: int | None = None, threads: int = 2) -> None:
        if short_side is not None and short_side < 1:
            raise ValueError(f"short_side must be positive or None, got {short_side!r}")
        self.frames = list(frames)
        with ThreadPoolExecutor(max(1, threads)) as pool:
            decoded = list(pool.map(lambda f: _decode(f, short_side), self.frames))
        self.rgb = [d[0] for d in decoded]
        self.depth_mm = [d[1] for d in decoded]
        self.sparse = [d[2] for d in decoded]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def depth(self) -> list[np.ndarray]:
        return self.depth_mm

    @property
    def sources(self) -> list[str]:
        return [f.source for f in self.frames]

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.rgb) + sum(a.nbytes for a in self.depth_mm)


class ConcatCache:
    """Several caches as one: frames of ``caches[0]`` first, then ``caches[1]``, ...

    Each cache provides lists ``rgb`` (``(H, W, 3)`` uint8), ``depth`` (``(H, W)``, any
    positive unit, 0 = invalid, ``inf`` = infinitely far), ``sparse`` (bool) and
    ``sources`` (str), all of one length.
    """

    def __init__(self, caches) -> None:
        self.caches = list(caches)
        self.rgb = [a for c in self.caches for a in c.rgb]
        self.depth = [a for c in self.caches for a in c.depth]
        self.sparse = [bool(a) for c in self.caches for a in c.sparse]
        self.sources = [a for c in self.caches for a in c.sources]
        if not len(self.rgb) == len(self.depth) == len(self.sparse) == len(self.sources):
            raise ValueError("caches must give rgb, depth, sparse and sources of one length")

    def __len__(self) -> int:
        return len(self.rgb)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.rgb) + sum(a.nbytes for a in self.depth)


def to_network_input(rgb01: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` float in [0, 1] → ``(3, H, W)`` float32 tensor in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb01.transpose(2, 0, 1), dtype=np.float32)).mul_(2.0).sub_(1.0)


class PairDataset(Dataset):
    """Augmented training pairs, indexed by ``(frame_index, seed)``.

    ``dataset[(i, seed)]`` returns a dict with ``photo`` ``(3, S, S)`` float32 in [-1, 1],
    ``target`` ``(1, S, S)`` float32 in [-1, 1] (:mod:`~pybokeh.nets.depth_target`) and
    ``valid`` ``(1, S, S)`` bool.  The result depends only on the key.
    """

    def __init__(self, cache: FrameCache | ConcatCache, size: int, augment: AugmentConfig = AugmentConfig()) -> None:
        self.cache, self.size, self.augment = cache, size, augment

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key
        rng = np.random.default_rng(seed)
        rgb, depth = augment_pair(self.cache.rgb[index], self.cache.depth[index], self.size, rng, self.augment,
                                  sparse=self.cache.sparse[index])
        target, valid = depth_to_target(depth)
        return {"photo": to_network_input(rgb),
                "target": torch.from_numpy(target)[None],
                "valid": torch.from_numpy(valid)[None]}
