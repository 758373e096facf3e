"""The web app's rendering: a fast preview on a downscaled proxy that matches the full render.

A photo is kept at full resolution with its disparity, min–max normalised to
[0, 1] at the photo's size (:class:`Scene`).  Previews render a proxy of at
most :data:`PROXY_MAX_PIXELS`; the full render runs on download.  Both use the
same numbers:

* the focus is the normalised disparity under the clicked pixel of the
  *full-resolution* map (its median in the window ``render`` itself would use),
  so the proxy's averaged depth edges cannot move the focus;
* the blur strength ``K`` (CoC px per unit of normalised disparity) is computed
  for the full-size image (:meth:`pybokeh.lens.Lens.blur_per_disparity`) and scaled
  by the proxy's size ratio, so every blur disc covers the same fraction of the
  frame in the preview as in the download;
* the proxy's disparity is the full map downscaled; its range can be a little
  narrower than [0, 1] (averaging trims lone extreme pixels), and ``render``
  normalises it again, so focus, sharp band and ``K`` are re-expressed on the
  proxy's own scale (:meth:`Scene.proxy_lens`).

What the proxy cannot match: detail finer than its pixels, and highlight
boosting, which ramps in over CoC radii of 2–6 *pixels*
(:mod:`pybokeh.highlights`) and so starts at slightly stronger blur (relative to
the frame) in the preview than in the download.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .. import icc, render
from ..color import linear_to_srgb, srgb_to_linear
from ..focus import subject_focus
from ..lens import Lens, fill_invalid, focus_value, resample
from ..renderer import DEFAULT_HIGHLIGHT_BOOST
from ..validate import finite

#: Largest preview proxy, in pixels (1 MP).
PROXY_MAX_PIXELS = 1_000_000
#: Proxy levels, as fractions of the largest proxy's pixels (see :class:`Pace`).
PROXY_LEVELS = (1.0, 0.5, 0.25)
#: How long a preview may take on the server before the next one uses a smaller proxy (seconds).
DEFAULT_PREVIEW_TARGET_S = 0.2
#: f-number range offered for the blur strength (disparity mode: f/1.8 = the library's default).
F_NUMBER_RANGE = (0.7, 22.0)
#: Highest highlight strength the page offers (the library accepts up to 1000).
MAX_HIGHLIGHT_BOOST = 1000.0


@dataclass(frozen=True)
class Settings:
    """What the page controls, in the units of :func:`pybokeh.render`.

    Attributes
    ----------
    focus_xy : (int, int)
        Focus pixel (column, row) in the full-resolution photo: the focus is the
        normalised disparity under it (see :meth:`Scene.focus_value`).
    focus : float or None
        A normalised disparity in [0, 1] to focus on instead (the page sends the
        automatic subject focus this way until the user clicks).
    f_number : float
        Blur strength as an f-number, in :data:`F_NUMBER_RANGE` (f/1.8 = the default strength).
    blades : int
        0 (round) or 3–16.
    rotation_deg : float
        Polygon rotation, degrees counter-clockwise.
    highlight_boost : float
        In [0, :data:`MAX_HIGHLIGHT_BOOST`].
    focus_range : float
        Width of the sharp band, normalised disparity in [0, 1].
    """

    focus_xy: tuple[int, int]
    f_number: float = 1.8
    blades: int = 0
    rotation_deg: float = 0.0
    highlight_boost: float = DEFAULT_HIGHLIGHT_BOOST
    focus_range: float = 0.0
    focus: float | None = None

    @classmethod
    def parse(cls, data: object, shape: tuple[int, int]) -> "Settings":
        """Settings from the page's JSON object; ValueError (TypeError for a wrong type) naming the field."""
        if not isinstance(data, dict):
            raise TypeError("settings must be a JSON object")
        h, w = shape

        def number(name: str, default: float | None, lo: float, hi: float) -> float:
            value = data.get(name, default)
            if value is None:
                raise ValueError(f"{name} is required")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            value = finite(value, name)
            if not lo <= value <= hi:
                raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}], got {value:g}")
            return float(value)

        x = number("x", None, 0, w - 1)
        y = number("y", None, 0, h - 1)
        blades = number("blades", 0, 0, 16)
        if blades != int(blades) or int(blades) in (1, 2):
            raise ValueError(f"blades must be 0 (round) or an integer 3..16, got {blades:g}")
        focus = None if data.get("focus") is None else number("focus", None, 0.0, 1.0)
        return cls(focus_xy=(int(x), int(y)), focus=focus,
                   f_number=number("f_number", 1.8, *F_NUMBER_RANGE),
                   blades=int(blades),
                   rotation_deg=number("rotation_deg", 0.0, -360.0, 360.0),
                   highlight_boost=number("highlight_boost", DEFAULT_HIGHLIGHT_BOOST, 0.0, MAX_HIGHLIGHT_BOOST),
                   focus_range=number("focus_range", 0.0, 0.0, 1.0))


def normalised_disparity(depth: np.ndarray, shape: tuple[int, int], kind: str = "disparity") -> np.ndarray:
    """A depth or disparity map as normalised disparity at the photo's size.

    Parameters
    ----------
    depth : numpy.ndarray
        ``(H', W')`` map, any real dtype: disparity (brighter = nearer) or, with
        ``kind="depth"``, distance (larger = farther; inverted first, ``1/z``).
        Invalid values (NaN, inf, negative; zero depth) are filled from their
        valid neighbours, as :func:`pybokeh.render` fills them.
    shape : (H, W)
        The photo's size; the map is resampled to it (aspect ratio within 5 %).
    kind : {"disparity", "depth"}

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32 in [0, 1]: 0 = the farthest value, 1 = the nearest.
    """
    raw = np.asarray(depth)
    if raw.ndim != 2 or raw.dtype.kind not in "uif" or raw.size == 0:
        raise ValueError(f"the depth map must be a non-empty 2-D array of numbers, got shape {raw.shape} "
                         f"and dtype {raw.dtype}")
    raw = raw.astype(np.float32)
    if kind == "depth":
        valid = (raw > 0) & ~np.isnan(raw)
        with np.errstate(divide="ignore"):
            raw = np.where(valid, 1.0 / np.where(valid, raw, 1.0), 0.0).astype(np.float32)
    elif kind == "disparity":
        valid = np.isfinite(raw) & (raw >= 0)
    else:
        raise ValueError(f"depth kind must be 'disparity' or 'depth', got {kind!r}")
    values = resample(fill_invalid(raw, valid, "depth map"), tuple(shape), "the depth map")
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(tuple(shape), np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


def proxy_size(shape: tuple[int, int], max_pixels: int = PROXY_MAX_PIXELS) -> tuple[int, int]:
    """``(h, w)`` of the largest proxy with the photo's aspect ratio and at most ``max_pixels`` pixels.

    A side that would shrink below one pixel stays one pixel, and the other side
    is cut to keep the budget (a panorama thousands of times wider than tall is squeezed).
    """
    h, w = shape
    scale = min(1.0, math.sqrt(max_pixels / (h * w)))
    ph, pw = max(1, int(h * scale)), max(1, int(w * scale))
    return min(ph, max(1, max_pixels // pw)), min(pw, max(1, max_pixels // ph))


def _shrink(image: np.ndarray, size: tuple[int, int], curve: icc.TransferCurve | None = None) -> np.ndarray:
    """The photo at ``size`` (h, w), antialiased in linear light; uint8 stays uint8, deeper photos
    become float32 in [0, 1].

    Averaging code values would darken thin bright detail (a white light covering a tenth of a
    proxy pixel on black would give it 0.1 of full code instead of the 0.35 that a tenth of the
    light encodes to in sRGB), so the preview's lights would be dimmer than the full render's.  Decoded with the photo's tone curve
    (``curve``, see :mod:`pybokeh.icc`; None: sRGB's), one channel at a time, and encoded back.
    """
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    own = curve is not None and not curve.srgb
    if image.dtype in (np.uint8, np.uint16):  # decode through a table of every code value
        codes = np.linspace(0.0, 1.0, np.iinfo(image.dtype).max + 1)[:, None].repeat(3, axis=1)
        table = (curve.to_linear(codes) if own else srgb_to_linear(codes)).astype(np.float32)
    else:  # float32 in [0, 1]
        unit = np.clip(image, 0.0, 1.0)
        decoded = curve.to_linear(unit).astype(np.float32) if own else srgb_to_linear(unit)
    channels = []
    for c in range(3):
        linear = table[image[..., c], c] if image.dtype in (np.uint8, np.uint16) else decoded[..., c]
        channels.append(np.asarray(Image.fromarray(np.ascontiguousarray(linear)).resize(
            (w, h), Image.LANCZOS, reducing_gap=3.0)))
    small = np.clip(np.stack(channels, axis=2), 0.0, 1.0)  # Lanczos rings below 0 and above 1
    code = curve.from_linear(small) if own else linear_to_srgb(small)
    if image.dtype == np.uint8:
        return np.round(code * 255.0).astype(np.uint8)
    return np.asarray(code, np.float32)


def _resize_map(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float32 map at ``size`` (h, w): bilinear, antialiased when shrinking (as :func:`pybokeh.lens.resample`)."""
    h, w = size
    if values.shape == (h, w):
        return values
    return np.asarray(Image.fromarray(np.ascontiguousarray(values, np.float32)).resize((w, h), Image.BILINEAR),
                      np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """An H×W×3 photo (uint8, uint16 or float in [0, 1]) as uint8, rounded."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


class Scene:
    """A photo, its normalised disparity and preview proxies of both.

    Proxies come in :data:`PROXY_LEVELS`: level 0 has at most ``proxy_pixels``
    pixels (the photo itself when it is smaller), each next level half as many;
    previews render the current
    :attr:`level` (see :class:`Pace`, which steps down when clicks get slow).

    Parameters
    ----------
    image : numpy.ndarray
        H×W×3 photo as :func:`pybokeh.io.read_photo` gives it (uint8, uint16 or float32 in [0, 1]).
    disparity : numpy.ndarray or None
        ``(H, W)`` float32 normalised disparity (see :func:`normalised_disparity`),
        or None while the photo has no depth yet.
    proxy_pixels : int
        Largest proxy (level 0), in pixels.
    curve : pybokeh.icc.TransferCurve or None
        The tone curve of the photo's ICC profile (:func:`pybokeh.icc.transfer_curve`):
        previews and the full render blur in its linear light, as ``pybokeh render`` does.
        None: the sRGB curve.
    """

    def __init__(self, image: np.ndarray, disparity: np.ndarray | None = None,
                 proxy_pixels: int = PROXY_MAX_PIXELS, curve: icc.TransferCurve | None = None) -> None:
        self.image = image
        self.curve = curve
        self.shape = image.shape[:2]
        self.level = 0
        h0, w0 = proxy_size(self.shape, proxy_pixels)
        self._shapes = [proxy_size(self.shape, max(1, int(h0 * w0 * f))) for f in PROXY_LEVELS]
        first = _shrink(image, self._shapes[0], curve)
        self._proxies = [first] + [_shrink(first, shape, curve) for shape in self._shapes[1:]]
        self.disparity: np.ndarray | None = None
        self._maps: list[np.ndarray] | None = None
        if disparity is not None:
            self.set_disparity(disparity)

    @property
    def levels(self) -> int:
        """How many proxy levels there are."""
        return len(self._shapes)

    @property
    def proxy_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the current proxy."""
        return self._shapes[self.level]

    @property
    def proxy(self) -> np.ndarray:
        """The current proxy of the photo (uint8, or float32 in [0, 1] for deeper photos)."""
        return self._proxies[self.level]

    @property
    def proxy_disparity(self) -> np.ndarray | None:
        """The current proxy of the normalised disparity, or None without depth."""
        return None if self._maps is None else self._maps[self.level]

    def largest_proxy(self) -> np.ndarray:
        """The level-0 proxy (what the page shows before the first preview)."""
        return self._proxies[0]

    def set_level(self, level: int) -> None:
        """Render previews at this proxy level from now on (0 = largest; clamped to the levels there are)."""
        self.level = min(max(0, int(level)), self.levels - 1)

    def set_disparity(self, disparity: np.ndarray) -> None:
        """Use this ``(H, W)`` normalised disparity (float32 in [0, 1]) from now on."""
        if disparity.shape != self.shape:
            raise ValueError(f"disparity must have the photo's shape {self.shape}, got {disparity.shape}")
        first = _resize_map(disparity, self._shapes[0])
        self._maps = [first] + [_resize_map(first, shape) for shape in self._shapes[1:]]
        self.disparity = disparity

    def _need_depth(self) -> np.ndarray:
        if self.disparity is None:
            raise ValueError("this photo has no depth yet: load a depth map")
        return self.disparity

    def subject(self):
        """:func:`pybokeh.subject_focus` on the full-resolution disparity."""
        return subject_focus(self._need_depth())

    def focus_value(self, xy: tuple[int, int]) -> float:
        """The normalised disparity under a full-resolution pixel (the median ``render`` would take)."""
        return focus_value(xy, self._need_depth(), self.shape)

    def focus_of(self, settings: Settings) -> float:
        """The focus the settings ask for, as normalised disparity."""
        return settings.focus if settings.focus is not None else self.focus_value(settings.focus_xy)

    def strength(self, f_number: float) -> float:
        """``K`` for the full-size photo at this f-number (CoC px per unit of normalised disparity)."""
        return Lens(f_number=f_number).blur_per_disparity(self.shape)

    def proxy_lens(self, focus: float, focus_range: float, strength: float) -> tuple[float, float, float]:
        """``(focus, focus_range, max_blur)`` on the proxy map's own normalised scale, for the proxy's size.

        ``render`` min–max normalises the proxy map again; with its range
        ``[lo, hi]`` inside [0, 1], a full-scale disparity ``d`` is
        ``(d - lo) / (hi - lo)`` there, so widths divide by ``hi - lo`` and ``K``
        multiplies by it (``r = K (d - f)`` is unchanged), times the size ratio.
        """
        d = self.proxy_disparity
        lo, hi = float(d.min()), float(d.max())
        span = hi - lo if hi > lo else 1.0
        scale = math.hypot(*self.proxy_shape) / math.hypot(*self.shape)
        f = min(1.0, max(0.0, (focus - lo) / span))
        return f, min(1.0, focus_range / span), strength * scale * span

    def render_preview(self, settings: Settings, backend: str = "auto", threads: int | None = None) -> np.ndarray:
        """The proxy rendered with these settings (same dtype as :attr:`proxy`)."""
        self._need_depth()
        focus, band, k = self.proxy_lens(self.focus_of(settings), settings.focus_range,
                                         self.strength(settings.f_number))
        return icc.render_in_own_light(self.proxy, self.curve, lambda proxy: render(
            proxy, self.proxy_disparity, focus, max_blur=k, focus_range=band,
            blades=settings.blades, rotation_deg=settings.rotation_deg,
            highlight_boost=settings.highlight_boost, backend=backend, threads=threads))

    def render_full(self, settings: Settings, backend: str = "auto", threads: int | None = None) -> np.ndarray:
        """The full-resolution photo rendered with these settings (the photo's dtype)."""
        disparity = self._need_depth()
        return icc.render_in_own_light(self.image, self.curve, lambda image: render(
            image, disparity, self.focus_of(settings),
            max_blur=self.strength(settings.f_number), focus_range=settings.focus_range,
            blades=settings.blades, rotation_deg=settings.rotation_deg,
            highlight_boost=settings.highlight_boost, backend=backend, threads=threads))

    def depth_view(self) -> np.ndarray:
        """The level-0 proxy's disparity as uint8 grey (brighter = nearer), for the page's depth view."""
        d = self._maps[0] if self._maps is not None else np.zeros(self._shapes[0], np.float32)
        return np.round(np.clip(d, 0, 1) * 255).astype(np.uint8)


class Pace:
    """Keeps previews fast: the proxy level for the next preview from how long the last one took.

    A preview slower than ``target_s`` moves one level down (half the pixels,
    about half the time); one that took under 0.35 × ``target_s``, so that twice
    its pixels would still take well under the target, moves one level up.  On a
    machine busy with other work the preview gets coarser instead of slower, and
    sharpens again when the machine is free.  ``target_s=None`` keeps level 0.
    """

    def __init__(self, target_s: float | None = DEFAULT_PREVIEW_TARGET_S) -> None:
        if target_s is not None and not (isinstance(target_s, (int, float)) and target_s > 0):
            raise ValueError(f"the preview target must be a positive number of seconds or None, got {target_s!r}")
        self.target_s = target_s

    def next_level(self, level: int, levels: int, seconds: float) -> int:
        if self.target_s is None:
            return 0
        if seconds > self.target_s and level < levels - 1:
            return level + 1
        if seconds < 0.35 * self.target_s and level > 0:
            return level - 1
        return level
