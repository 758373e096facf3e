"""Measurements of ``pybokeh.render`` on real photos (issue 10), shared by
``tests/renderer/quality/test_real_photos.py`` and ``bench/real_photos.py``.

No ground truth exists for these photos; the measurements count defects that a lens
cannot make:

* glitter: a pixel within 3 px of focus (|CoC| < 3) cannot end up brighter than every
  input pixel within 4 px (a 9x9 window) by more than a few levels: near focus a lens
  only averages nearby light.  Counted where the output's Rec. 709 luminance of the
  uint8 sRGB codes exceeds that window maximum of the input by more than 25 levels.
* neighbour difference: the largest difference (any channel, uint8 levels) between
  4-neighbours in a region; inside a blurred region it stays small.
* seams: in regions blurred by at least 1 px where the render with the depth map
  Gaussian-smoothed to float (sigma 1.5 px) is smooth (neighbours within 2 levels),
  neighbour pairs that step by 6 levels or more with the 8-bit map (steps that follow
  the depth map's levels).
* disc structure: the luminance's mean deviation from its 15 px box mean, which the
  discs of out-of-focus lights raise (a plain blur flattens it).
* whitening: saturated colours (one channel at 255, another below 160) out of focus
  (|CoC| >= 2 px) whose darkest channel rises by more than 30 levels over the render
  with ``highlight_boost=0``: a bright colour blooming into white.
"""
from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass

import numpy as np

#: Rec. 709 luma weights, applied to the uint8 sRGB codes.
LUMA_709 = np.array([0.2126, 0.7152, 0.0722])


@dataclass(frozen=True)
class Photo:
    """A photo of ``shared/data/photos`` with its provided disparity map and a focus pixel."""

    name: str
    image: str
    depth: str
    focus: tuple[int, int]
    depth_mode_l: bool = False  # read the disparity JPEG as mode "L" (PIL's luma) instead of pybokeh.io


PHOTOS = {
    p.name: p
    for p in (
        Photo("inputs_new_11", "mpib/inputs_new_11_all-in-focus.jpg", "mpib/inputs_new_11_disparity.jpg", (1330, 470)),
        Photo("inputs_13", "bokehme/inputs_13.jpg", "bokehme/inputs_13.png", (480, 600)),
        Photo("inputs_21", "bokehme/inputs_21.jpg", "bokehme/inputs_21.png", (650, 480)),
        Photo("inputs_street_8", "mpib/inputs_street_8_all-in-focus.jpg", "mpib/inputs_street_8_disparity.jpg",
              (1450, 1200), depth_mode_l=True),
        Photo("blb_280", "blb_preview/280_image.jpg", "blb_preview/280_disparity.jpg", (960, 540)),
    )
}


def load(data_dir: pathlib.Path, name: str):
    """``(photo uint8 (H, W, 3), disparity map as read, focus (x, y))`` of ``PHOTOS[name]``."""
    from PIL import Image

    from pybokeh.io import read_depth, read_photo

    p = PHOTOS[name]
    root = pathlib.Path(data_dir) / "photos"
    photo = read_photo(root / p.image)
    if p.depth_mode_l:
        depth = np.asarray(Image.open(root / p.depth).convert("L"))
    else:
        depth = read_depth(root / p.depth)
    return photo, depth, p.focus


def luma(img: np.ndarray) -> np.ndarray:
    """Rec. 709 luminance of uint8 sRGB codes (float64, 0-255)."""
    return img.astype(np.float64) @ LUMA_709


def _max_filter(a: np.ndarray, radius: int) -> np.ndarray:
    """Maximum over the (2 radius + 1)^2 window (edges: the part inside)."""
    out = a.copy()
    for axis in (0, 1):
        src = out.copy()
        n = src.shape[axis]
        for k in range(1, radius + 1):
            lo = [slice(None)] * 2
            hi = [slice(None)] * 2
            lo[axis], hi[axis] = slice(0, n - k), slice(k, n)
            np.maximum(out[tuple(lo)], src[tuple(hi)], out=out[tuple(lo)])
            np.maximum(out[tuple(hi)], src[tuple(lo)], out=out[tuple(hi)])
    return out


def glitter_mask(photo: np.ndarray, out: np.ndarray, coc: np.ndarray, coc_limit: float = 3.0, radius: int = 4,
                 levels: float = 25.0) -> np.ndarray:
    """Pixels with |CoC| < ``coc_limit`` whose output luminance exceeds the largest input
    luminance within ``radius`` px (square window) by more than ``levels``."""
    return (np.abs(coc) < coc_limit) & (luma(out) > _max_filter(luma(photo), radius) + levels)


def glitter_count(photo, out, coc, **kw) -> int:
    return int(glitter_mask(photo, out, coc, **kw).sum())


def neighbour_diffs(img: np.ndarray):
    """(vertical, horizontal) absolute differences of 4-neighbours, max over channels (int)."""
    a = img.astype(np.int32)
    return np.abs(np.diff(a, axis=0)).max(axis=-1), np.abs(np.diff(a, axis=1)).max(axis=-1)


def max_neighbour_diff(img: np.ndarray, rows: slice, cols: slice) -> int:
    """Largest 4-neighbour difference (uint8 levels, any channel) with both pixels in the region."""
    dv, dh = neighbour_diffs(img[rows, cols])
    return int(max(dv.max(initial=0), dh.max(initial=0)))


def depth_edges(depth: np.ndarray, shape: tuple[int, int], window: int = 9, levels: float = 4.0) -> np.ndarray:
    """Pixels within ``window // 2`` px of a depth edge: the map (resampled to ``shape``)
    spans more than ``levels`` of its values in the ``window``-wide square around them.

    Smoothing a map moves and softens its silhouettes, so renders with the 8-bit and the
    smoothed map rightly differ there; seams are steps *away* from them.
    """
    from scipy.ndimage import maximum_filter, minimum_filter

    from pybokeh.lens import resample

    d = resample(np.asarray(depth, np.float32), shape, "depth")
    return (maximum_filter(d, window) - minimum_filter(d, window)) > levels


def seam_stats(out_8bit: np.ndarray, out_smooth: np.ndarray, coc: np.ndarray, min_coc: float = 1.0,
               flat: int = 2, step: int = 6, exclude: np.ndarray | None = None) -> dict:
    """Steps in smooth blurred regions: among 4-neighbour pairs with both pixels blurred
    (|CoC| >= ``min_coc``) and not in ``exclude`` (e.g. :func:`depth_edges`) where the
    render with the smoothed map changes by at most ``flat`` levels, how many change by
    ``step`` levels or more with the 8-bit map, and the largest such change (a seam: a
    step that follows the depth map's levels)."""
    blurred = np.abs(coc) >= min_coc
    if exclude is not None:
        blurred &= ~exclude
    d8, ds = neighbour_diffs(out_8bit), neighbour_diffs(out_smooth)
    both = (blurred[1:] & blurred[:-1], blurred[:, 1:] & blurred[:, :-1])
    v8 = np.concatenate([d8[0][both[0]], d8[1][both[1]]])
    vs = np.concatenate([ds[0][both[0]], ds[1][both[1]]])
    smooth = vs <= flat
    return {"smooth_pairs": int(smooth.sum()), "seam_pairs": int((v8[smooth] >= step).sum()),
            "max_step": int(v8[smooth].max(initial=0))}


def whitening(photo: np.ndarray, out: np.ndarray, out_no_boost: np.ndarray, coc: np.ndarray, min_coc: float = 2.0,
              rise: int = 30) -> dict:
    """Saturated out-of-focus input colours whose darkest channel rises by more than
    ``rise`` levels over the ``highlight_boost=0`` render (count, fraction, mean rise)."""
    sat = (photo.max(axis=2) == 255) & (photo.min(axis=2) < 160) & (np.abs(coc) >= min_coc)
    n = int(sat.sum())
    if n == 0:
        return {"saturated": 0, "whitened": 0, "fraction": 0.0, "mean_rise": 0.0}
    d = out.min(axis=2).astype(np.int32)[sat] - out_no_boost.min(axis=2).astype(np.int32)[sat]
    return {"saturated": n, "whitened": int((d > rise).sum()), "fraction": float((d > rise).mean()),
            "mean_rise": float(d.mean())}


def disc_structure(img: np.ndarray, size: int = 15) -> float:
    """Structure at the scale of bokeh discs: the mean absolute deviation of the luminance
    from its ``size``-px box mean (discs of lights raise it; a plain blur flattens it)."""
    lum = luma(img)
    pad = size // 2
    p = np.pad(lum, pad, mode="edge")
    c = np.zeros((p.shape[0] + 1, p.shape[1] + 1))
    c[1:, 1:] = p.cumsum(0).cumsum(1)
    h, w = lum.shape
    box = (c[size:size + h, size:size + w] - c[:h, size:size + w] - c[size:size + h, :w] + c[:h, :w]) / size ** 2
    return float(np.abs(lum - box).mean())


def smooth_map(depth: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """The map as float32, Gaussian-smoothed (separable, edges extended)."""
    n = int(math.ceil(3 * sigma))
    x = np.arange(-n, n + 1)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    a = depth.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (n, n)
        p = np.pad(a, pad, mode="edge")
        a = sum(w * np.take(p, np.arange(i, i + a.shape[axis]), axis=axis) for i, w in enumerate(k))
    return a.astype(np.float32)


