"""One RGB-D frame of a data set, loaded lazily: colour as uint8, depth in metres."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["Frame", "SPLITS"]

SPLITS = ("train", "eval")


@dataclass(frozen=True)
class Frame:
    """A colour image and its aligned depth map.

    Attributes
    ----------
    source : str
        Scene or sensor group; used to balance sampling (rare sources weighted up).
    name : str
        Unique within ``source``.
    split : {"train", "eval"}
    rgb_path, depth_path : str
        Image files (PNG/JPEG colour; 16-bit PNG depth) for file-based layouts.
    depth_scale : float
        Metres per depth-file unit (0.001 for millimetre PNGs).
    mat_path, mat_index, mat_depth_key : str, int, str
        For NYU Depth v2's labeled ``.mat`` (HDF5): frame ``mat_index`` of it.
    """

    source: str
    name: str
    split: str
    rgb_path: str | None = None
    depth_path: str | None = None
    depth_scale: float = 0.001
    mat_path: str | None = None
    mat_index: int | None = None
    mat_depth_key: str = "depths"

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if (self.rgb_path is None) == (self.mat_path is None):
            raise ValueError("a Frame needs either rgb_path/depth_path or mat_path/mat_index")

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """Decode the frame.

        Returns
        -------
        rgb : numpy.ndarray
            ``(H, W, 3)`` uint8.
        depth : numpy.ndarray
            ``(H, W)`` float32 metres; 0 where invalid (no return, cut, non-finite).
        """
        if self.mat_path is not None:
            from .nyu_labeled import load_labeled_frame

            rgb, depth = load_labeled_frame(self.mat_path, self.mat_index, self.mat_depth_key)
        else:
            with Image.open(self.rgb_path) as im:
                rgb = np.asarray(im.convert("RGB"))
            with Image.open(self.depth_path) as im:
                raw = np.asarray(im)
            if raw.ndim != 2:
                raise ValueError(f"{self.depth_path}: depth must be a single-channel image, got shape {raw.shape}")
            depth = raw.astype(np.float32) * np.float32(self.depth_scale)
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
        if depth.shape != rgb.shape[:2]:
            raise ValueError(f"{self.source}/{self.name}: colour {rgb.shape[:2]} and depth {depth.shape} differ in size")
        return rgb, depth
