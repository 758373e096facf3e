"""Where to focus when nobody says: the main subject, found in the depth map.

Phones focus a portrait on the person and keep the whole face sharp.  Without a
face detector, the depth map alone says a lot: the subject is usually the
nearest *sizeable* thing near the middle of the frame, while the nearest pixels
overall are often clutter at the edges (a branch in the corner, the ground at the
bottom).  :func:`subject_focus` works on a small grid of the normalised
disparity, box-filtered over about 4 % of the frame so a lone near pixel does not
count:

1. it cuts the map into depth layers, front to back: the nearest unlabelled
   pixel seeds a connected region of pixels at most :data:`REGION_TOLERANCE`
   farther than it;
2. every layer of at least :data:`MIN_AREA` of the frame scores
   ``median nearness × mean centre weight × sqrt(a / (a + HALF_AREA))`` — near,
   central (a Gaussian weight, centred a little above the middle where faces
   sit) and sizeable (``a`` its area fraction) — and the best layer is the subject;
3. the focus pixel is the nearest, most central pixel of the subject's upper
   fifth when the subject is tall (a person's head), else of the whole subject;
4. the sharp band (``focus_range``) covers the disparities (5th to 95th
   percentile) of the pixels in a head-sized window centred on the focus pixel
   that are nearer than the subject layer's far end plus :data:`HEAD_DEPTH`
   (:data:`HEAD_FRACTION` of the subject's width on a side), clamped to [:data:`MIN_FOCUS_RANGE`,
   :data:`MAX_FOCUS_RANGE`]; the focus value is the centre of that band, slid
   inside [0, 1] when the band would reach beyond the map's range (a subject at the
   near end of the map gets the whole band behind its nearest part, where the rest
   of a face is).

Limits: a depth map cannot tell a face from a shoulder; a head tilted far back
in a close-up selfie puts the chin nearest and the eyes in another layer, and
then the chin gets the focus.  Pass ``--focus-xy`` (or ``focus=(x, y)``) there.

All values are on the normalised disparity scale :func:`pybokeh.coc_map` uses
(0 = the map's farthest value, 1 = its nearest).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .inputs import as_depth
from .lens import DEPTH_KINDS, fill_invalid
from .validate import shape2d

__all__ = ["SubjectFocus", "subject_focus", "MIN_FOCUS_RANGE", "MAX_FOCUS_RANGE"]

#: Long side of the grid the search runs on (pixels).
GRID = 160
#: Narrowest and widest default sharp band, in normalised disparity.  0.05 keeps a
#: face sharp when the subject fills only a sliver of the map's range; 0.25 stops a
#: subject that spans the whole scene from leaving nothing to blur.
MIN_FOCUS_RANGE = 0.05
MAX_FOCUS_RANGE = 0.25
#: Pixels within this normalised disparity of the seed belong to the subject region.
REGION_TOLERANCE = 0.12
#: Side of the head window around the focus pixel, as a fraction of the subject's width.
HEAD_FRACTION = 0.4
#: How far behind the subject layer (normalised disparity) the head window still counts pixels.
HEAD_DEPTH = 0.06
#: Layers smaller than this fraction of the frame are not candidates.
MIN_AREA = 0.01
#: Area fraction at which the size factor of a layer's score reaches sqrt(1/2).
HALF_AREA = 0.05
#: Centre weight: Gaussian in normalised coordinates (x, y in [0, 1]).
CENTRE = (0.5, 0.42)
SIGMA = (0.24, 0.30)


@dataclass(frozen=True)
class SubjectFocus:
    """The focus :func:`subject_focus` chose.

    Attributes
    ----------
    xy : (int, int)
        Focus pixel (column, row) in image coordinates.
    value : float
        Focus as normalised disparity in [0, 1] (the centre of the sharp band); pass
        it as ``focus``.
    focus_range : float
        Width of the sharp band, normalised disparity; pass it as ``focus_range``.
    box : (int, int, int, int)
        Bounding box ``(x0, y0, x1, y1)`` of the subject region (image pixels, end exclusive).
    """

    xy: tuple[int, int]
    value: float
    focus_range: float
    box: tuple[int, int, int, int]


def subject_focus(depth: Any, image_shape: tuple[int, int] | None = None, *,
                  depth_kind: str = "disparity") -> SubjectFocus:
    """Find the main subject in a depth map and a focus and sharp band that keep it sharp.

    Parameters
    ----------
    depth : array_like, shape (H', W')
        Disparity (brighter = nearer, any real dtype) or, with
        ``depth_kind="depth"``, distance (larger = farther; inverted first).
        Invalid values (NaN, inf, negative; zero depth) are ignored.
    image_shape : (H, W), optional
        Size of the photo the map belongs to (default: the map's size); ``xy`` and
        ``box`` are in its pixels.
    depth_kind : {"disparity", "depth"}

    Returns
    -------
    SubjectFocus
        ``render(image, depth, result.value, focus_range=result.focus_range)``
        renders the subject sharp (see the module docstring for the method).
    """
    if depth_kind not in DEPTH_KINDS:
        raise ValueError(f"depth_kind must be 'disparity' or 'depth', got {depth_kind!r}")
    raw = as_depth(depth)
    if depth_kind == "depth":
        valid = (raw > 0) & ~np.isnan(raw)
        with np.errstate(divide="ignore"):
            raw = np.where(valid, 1.0 / np.where(valid, raw, 1.0), 0.0).astype(np.float32)
    else:
        valid = np.isfinite(raw) & (raw >= 0)
    d = fill_invalid(raw, valid, "depth")
    lo, hi = float(d.min()), float(d.max())
    d = (d - lo) / (hi - lo) if hi > lo else np.zeros_like(d)
    h, w = d.shape if image_shape is None else shape2d(image_shape, "image_shape")

    grid = _downsample(d, GRID)
    gh, gw = grid.shape
    radius = max(1, round(0.02 * max(gh, gw)))
    near = _box_mean(grid, radius)
    ys = (np.arange(gh) + 0.5) / gh
    xs = (np.arange(gw) + 0.5) / gw
    weight = np.exp(-0.5 * (((xs[None, :] - CENTRE[0]) / SIGMA[0]) ** 2 + ((ys[:, None] - CENTRE[1]) / SIGMA[1]) ** 2))
    region = _best_region(near, weight)

    rows = np.nonzero(region.any(axis=1))[0]
    cols = np.nonzero(region.any(axis=0))[0]
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if (y1 - y0) > 0.25 * gh:
        # A tall region (a standing or sitting person): focus on its upper part, where the head is.
        part = region.copy()
        part[y0 + max(1, (y1 - y0) // 5):] = False
    else:
        part = region
    py, px = np.nonzero(part)
    k = int(np.argmax(weight[py, px] * near[py, px]))  # the most central, nearest pixel of that part
    fy, fx = int(py[k]), int(px[k])
    # The head: a window around the focus pixel, HEAD_FRACTION of the subject's width on a side.
    side = max(2, round(HEAD_FRACTION * (x1 - x0)))
    head = np.zeros_like(region)
    head[max(0, fy - side // 2):fy + side // 2 + 1, max(0, fx - side // 2):fx + side // 2 + 1] = True
    # The subject, what is in front of it (a chin, a beard) and a little behind its layer (a face tilted back
    # behind the chin), not the background.
    head &= near >= near[region].min() - HEAD_DEPTH
    lo, hi = np.percentile(near[head], [5, 95]) if head.any() else (near[fy, fx], near[fy, fx])
    lo, hi = min(lo, near[fy, fx]), max(hi, near[fy, fx])
    band = float(np.clip(hi - lo, MIN_FOCUS_RANGE, MAX_FOCUS_RANGE))
    # Centre the band on the head; at the near (or far) end of the map slide it inside [0, 1] so
    # none of it is wasted beyond the map's range.
    value = float(np.clip(0.5 * (lo + hi), band / 2, 1 - band / 2))

    sy_img, sx_img = h / gh, w / gw
    xy = (min(w - 1, int((fx + 0.5) * sx_img)), min(h - 1, int((fy + 0.5) * sy_img)))
    box = (int(x0 * sx_img), int(y0 * sy_img), min(w, int(np.ceil(x1 * sx_img))), min(h, int(np.ceil(y1 * sy_img))))
    return SubjectFocus(xy, round(value, 4), round(band, 4), box)


def _downsample(d: np.ndarray, long_side: int) -> np.ndarray:
    from PIL import Image

    h, w = d.shape
    scale = min(1.0, long_side / max(h, w))
    gh, gw = max(1, round(h * scale)), max(1, round(w * scale))
    if (gh, gw) == (h, w):
        return d.astype(np.float32)
    return np.asarray(Image.fromarray(np.ascontiguousarray(d, np.float32)).resize((gw, gh), Image.BOX), np.float32)


def _box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over (2r+1)² windows clipped at the border (summed-area table)."""
    pad = np.pad(x.astype(np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    h, w = x.shape
    y0 = np.clip(np.arange(h) - r, 0, h)
    y1 = np.clip(np.arange(h) + r + 1, 0, h)
    x0 = np.clip(np.arange(w) - r, 0, w)
    x1 = np.clip(np.arange(w) + r + 1, 0, w)
    s = pad[y1][:, x1] - pad[y0][:, x1] - pad[y1][:, x0] + pad[y0][:, x0]
    n = (y1 - y0)[:, None] * (x1 - x0)[None, :]
    return (s / n).astype(np.float32)


def _best_region(near: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The subject region: the depth layer of best nearness × centrality among the sizeable ones.

    Layers are grown front to back: the nearest unlabelled pixel seeds a
    4-connected region of pixels at most :data:`REGION_TOLERANCE` farther than it.
    Each region of at least :data:`MIN_AREA` of the frame scores its median
    nearness × its mean centre weight × ``sqrt(a / (a + HALF_AREA))`` for its
    area fraction ``a`` (sizeable beats small: a 1 % sliver of near clutter scores
    half of what a 20 % subject does).
    """
    h, w = near.shape
    labels = np.full((h, w), -1, np.int32)
    flat = near.ravel()
    best, best_score = None, -1.0
    min_pixels = max(1, int(MIN_AREA * h * w))
    count = 0
    for idx in np.argsort(-flat, kind="stable"):
        if labels.flat[idx] >= 0:
            continue
        seed = divmod(int(idx), w)
        low = flat[idx] - REGION_TOLERANCE
        region = _grow(near, labels, seed, low, count)
        count += 1
        if region[0].size < min_pixels:
            continue
        area = region[0].size / (h * w)
        score = float(np.median(near[region])) * float(weight[region].mean()) * (area / (area + HALF_AREA)) ** 0.5
        if score > best_score:
            best, best_score = region, score
    if best is None:  # no sizeable layer (a noisy map): the whole frame
        return np.ones((h, w), bool)
    mask = np.zeros((h, w), bool)
    mask[best] = True
    return mask


def _grow(d: np.ndarray, labels: np.ndarray, seed: tuple[int, int], low: float, label: int):
    """Label the 4-connected unlabelled pixels with value ≥ ``low`` around ``seed``; their indices."""
    h, w = d.shape
    labels[seed] = label
    stack = [seed]
    ys, xs = [seed[0]], [seed[1]]
    while stack:
        y, x = stack.pop()
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < h and 0 <= nx < w and labels[ny, nx] < 0 and d[ny, nx] >= low:
                labels[ny, nx] = label
                stack.append((ny, nx))
                ys.append(ny)
                xs.append(nx)
    return np.array(ys), np.array(xs)
