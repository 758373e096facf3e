"""Training augmentation: random resized crop, horizontal flip, colour jitter.

Photo and depth get the same geometry (one crop box, one flip); the photo is
resampled with an antialiased bilinear filter, the depth with nearest neighbour (or
nearest return, for sparse depth; :mod:`pybokeh.nets.resample`), so no depth value is
ever interpolated.  Colour jitter touches the photo only.  All
randomness comes from the ``numpy.random.Generator`` passed in, so a sample is a
pure function of its seed (exact resumption, identical across DataLoader workers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .resample import crop_resize_depth, crop_resize_rgb

__all__ = ["AugmentConfig", "random_crop_box", "augment_pair", "center_box"]

_GRAY = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation ranges.

    ``scale``: crop area as a fraction of the image; ``ratio``: crop width/height
    (torchvision ``RandomResizedCrop`` semantics: the crop is then resized to a square,
    so 4:3 photos squeezed to the network's square input at inference are in range);
    ``hflip``: flip probability; ``brightness``/``contrast``/``saturation``: factors
    drawn from ``[1 - v, 1 + v]``.
    """

    scale: tuple[float, float] = (0.4, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    @classmethod
    def none(cls) -> "AugmentConfig":
        """Identity geometry and colour: the whole frame resized (for validation)."""
        return cls(scale=(1.0, 1.0), ratio=(0.0, math.inf), hflip=0.0, brightness=0.0, contrast=0.0, saturation=0.0)


def center_box(h: int, w: int) -> tuple[float, float, float, float]:
    return 0.0, 0.0, float(h), float(w)


def random_crop_box(rng: np.random.Generator, h: int, w: int, scale: tuple[float, float],
                    ratio: tuple[float, float]) -> tuple[float, float, float, float]:
    """``(top, left, height, width)`` of a random crop (RandomResizedCrop's rule)."""
    if scale == (1.0, 1.0) and ratio[0] <= w / h <= ratio[1]:
        return center_box(h, w)
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = round(math.sqrt(target * aspect))
        ch = round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            return float(top), float(left), float(ch), float(cw)
    # Fallback: the largest centred crop within the ratio range.
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif in_ratio > ratio[1]:
        ch, cw = h, round(h * ratio[1])
    else:
        cw, ch = w, h
    return float((h - ch) // 2), float((w - cw) // 2), float(ch), float(cw)


def _jitter(rgb: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    x = rgb.astype(np.float32) * np.float32(1 / 255)
    b = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
    s = rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)
    x = x * np.float32(b)
    gray = x @ _GRAY
    x = (x - gray.mean()) * np.float32(c) + gray.mean()
    gray = (x @ _GRAY)[..., None]
    x = (x - gray) * np.float32(s) + gray
    return np.clip(x, 0.0, 1.0)


def augment_pair(rgb: np.ndarray, depth: np.ndarray, size: int, rng: np.random.Generator,
                 cfg: AugmentConfig = AugmentConfig(), sparse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One augmented ``size``×``size`` training pair.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(H, W, 3)`` uint8.
    depth : numpy.ndarray
        ``(H, W)`` depth of any dtype and unit (0 = invalid); resampled by nearest neighbour.
    size : int
        Output side in pixels.
    rng : numpy.random.Generator
    cfg : AugmentConfig
    sparse : bool
        The depth is sparse (LiDAR): reduce it by nearest return instead of nearest
        neighbour (:func:`~pybokeh.nets.resample.crop_resize_depth`).

    Returns
    -------
    rgb : numpy.ndarray
        ``(size, size, 3)`` float32 in [0, 1].
    depth : numpy.ndarray
        ``(size, size)``, same dtype as the input depth.
    """
    if rgb.shape[:2] != depth.shape:
        raise ValueError(f"rgb {rgb.shape[:2]} and depth {depth.shape} must have one size")
    h, w = depth.shape
    box = random_crop_box(rng, h, w, cfg.scale, cfg.ratio)
    out_rgb = crop_resize_rgb(rgb, box, (size, size))
    out_depth = crop_resize_depth(depth, box, (size, size), sparse=sparse)
    if cfg.hflip > 0 and rng.random() < cfg.hflip:
        out_rgb = out_rgb[:, ::-1]
        out_depth = out_depth[:, ::-1]
    if cfg.brightness or cfg.contrast or cfg.saturation:
        out = _jitter(out_rgb, rng, cfg)
    else:
        out = out_rgb.astype(np.float32) * np.float32(1 / 255)
    return np.ascontiguousarray(out), np.ascontiguousarray(out_depth)
