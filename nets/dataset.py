"""In-memory frame cache and the PyTorch training dataset.

Frames are decoded once, reduced so that their shorter side is at most
``cache_short_side`` (colour: Lanczos; depth: nearest neighbour, stored as uint16
millimetres, 0 = invalid), and kept in memory: the ~620 frames of ``shared/data/rgbd``
take ~250 MB at a 256 px short side.  DataLoader workers (forked) share the cache.
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

__all__ = ["FrameCache", "PairDataset", "to_network_input"]

MAX_MM = np.iinfo(np.uint16).max


def _decode(frame: Frame, short_side: int | None) -> tuple[np.ndarray, np.ndarray]:
    rgb, depth_m = frame.load()
    h, w = depth_m.shape
    if short_side is not None and min(h, w) > short_side:
        s = short_side / min(h, w)
        out = (max(1, round(h * s)), max(1, round(w * s)))
        rgb = resize_rgb(rgb, out)
        depth_m = resize_depth_nearest(depth_m, out)
    mm = np.clip(np.rint(depth_m * 1000.0), 0, MAX_MM).astype(np.uint16)
    return np.ascontiguousarray(rgb), mm


class FrameCache:
    """Decoded frames: ``rgb[i]`` ``(H, W, 3)`` uint8 and ``depth_mm[i]`` ``(H, W)`` uint16.

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

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def sources(self) -> list[str]:
        return [f.source for f in self.frames]

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.rgb) + sum(a.nbytes for a in self.depth_mm)


def to_network_input(rgb01: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` float in [0, 1] → ``(3, H, W)`` float32 tensor in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb01.transpose(2, 0, 1), dtype=np.float32)).mul_(2.0).sub_(1.0)


class PairDataset(Dataset):
    """Augmented training pairs, indexed by ``(frame_index, seed)``.

    ``dataset[(i, seed)]`` returns a dict with ``photo`` ``(3, S, S)`` float32 in [-1, 1],
    ``target`` ``(1, S, S)`` float32 in [-1, 1] (:mod:`~pybokeh.nets.depth_target`) and
    ``valid`` ``(1, S, S)`` bool.  The result depends only on the key.
    """

    def __init__(self, cache: FrameCache, size: int, augment: AugmentConfig = AugmentConfig()) -> None:
        self.cache, self.size, self.augment = cache, size, augment

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key
        rng = np.random.default_rng(seed)
        rgb, depth = augment_pair(self.cache.rgb[index], self.cache.depth_mm[index], self.size, rng, self.augment)
        target, valid = depth_to_target(depth)
        return {"photo": to_network_input(rgb),
                "target": torch.from_numpy(target)[None],
                "valid": torch.from_numpy(valid)[None]}
