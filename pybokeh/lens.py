"""The lens model: from a depth map and a focus setting to the circle of confusion.

Two conventions for the depth map:

``depth_kind="disparity"`` (default)
    Relative inverse depth, brighter = nearer, as monocular estimators output
    it.  The map is min–max normalised to [0, 1] (the BokehMe / BLB convention)
    and the signed CoC radius in pixels is ``r = K * (d - d_focus)`` with
    ``K = max_blur`` (pixels per unit of normalised disparity).  Focus values
    and ``focus_range`` are on the same normalised scale, so one set of numbers
    means the same for an 8-bit, 16-bit or float map.

``depth_kind="depth"``
    Metric depth in metres along the optical axis.  The thin lens gives
    ``r = f² / (2 N (z_f - f)) * (z_f / z - 1) / (sensor_width / W)`` pixels
    (f and sensor width in mm, N the f-number, W the image width in pixels),
    computed in the equivalent form ``f² / (2 N p) * (q - q_f) / (1 - f q_f)``
    with inverse depths ``q = 1/z`` so that ``z = inf`` (sky) is exact.

Both give a signed radius: positive in front of the focus plane, negative
behind it; the renderer composites layers in this order.

:class:`Lens` holds the six settings, validated once; :meth:`Lens.coc_map` is
written once over the array namespace of :mod:`pybokeh.arrays`, so the same
code computes the map from a NumPy array on the host and from a torch tensor
next to an image on a GPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .arrays import namespace
from .inputs import as_depth
from .validate import finite, nonnegative, positive, real_number, shape2d

#: f-number used in depth mode when none is given.
DEFAULT_F_NUMBER = 1.8
#: Disparity mode: default ``max_blur`` as a fraction of the image diagonal.
DEFAULT_MAX_BLUR_FRACTION = 0.025
#: Largest |CoC| radius the renderer accepts, in pixels.
MAX_COC_RADIUS = 4096.0
DEPTH_KINDS = ("disparity", "depth")

#: Radius grid of the renderer's kernels: :func:`pybokeh.render` rounds the CoC map to
#: multiples of ``1 / COC_STEPS_PER_PX`` px (a radius error of 1/128 px at most, far
#: below what the eye resolves), so that the CPU kernel reuses one splat per radius
#: (``kCocStepsPerPx`` in ``csrc/bokeh_math.h``).
COC_STEPS_PER_PX = 64


def round_to_kernel_grid(coc: Any) -> Any:
    """Round a CoC map (px) to the kernels' radius grid, in place, and return it.

    Parameters
    ----------
    coc : numpy.ndarray or torch.Tensor
        Float32 signed CoC radii in px, a map this library made (it is overwritten).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``coc`` itself, every value a multiple of ``1 / COC_STEPS_PER_PX`` (the
        scalings by a power of two are exact; halves round to even).
    """
    if isinstance(coc, np.ndarray):
        np.multiply(coc, COC_STEPS_PER_PX, out=coc)
        np.rint(coc, out=coc)
        np.multiply(coc, 1.0 / COC_STEPS_PER_PX, out=coc)
        return coc
    return coc.mul_(COC_STEPS_PER_PX).round_().mul_(1.0 / COC_STEPS_PER_PX)


#: Largest |CoC| (px) whose grid step count fits in int16 (:func:`grid_steps`).
MAX_STEP_RADIUS = 32767 / COC_STEPS_PER_PX
_STEP_BLOCK = 1 << 18  # elements per block of grid_steps' conversion


def grid_steps(coc: np.ndarray) -> np.ndarray:
    """A CoC map rounded to the kernel grid as int16 counts of ``1 / COC_STEPS_PER_PX`` px (half
    its memory); where a radius rounds to :data:`MAX_STEP_RADIUS` or more, the map rounded in
    place (:func:`round_to_kernel_grid`) instead.

    Parameters
    ----------
    coc : numpy.ndarray
        Float32 signed CoC radii in px (a map this library made: it may be overwritten).

    Returns
    -------
    numpy.ndarray
        Same shape: int16 steps ``k``, ``k / COC_STEPS_PER_PX`` being exactly what
        :func:`round_to_kernel_grid` gives; or that float32 map.
    """
    steps = np.empty(coc.shape, np.int16)
    flat_in, flat_out = coc.reshape(-1), steps.reshape(-1)
    block = np.empty(min(flat_in.size, _STEP_BLOCK), np.float32)
    for start in range(0, flat_in.size, _STEP_BLOCK):  # in blocks: no full-size float temporary
        part = block[:min(_STEP_BLOCK, flat_in.size - start)]
        np.multiply(flat_in[start:start + part.size], COC_STEPS_PER_PX, out=part)  # exact: a power of two
        np.rint(part, out=part)
        if not np.abs(part).max() <= 32767:
            return round_to_kernel_grid(coc)
        flat_out[start:start + part.size] = part
    return steps


def coc_map(
    depth: Any,
    focus: float | Sequence[float],
    *,
    focus_range: float = 0.0,
    depth_kind: str = "disparity",
    max_blur: float | None = None,
    f_number: float | None = None,
    focal_length_mm: float = 50.0,
    sensor_width_mm: float = 36.0,
    image_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Signed circle-of-confusion radius per pixel.

    Parameters
    ----------
    depth : array_like, shape (H', W')
        Disparity (``depth_kind="disparity"``, any real dtype, brighter =
        nearer) or metric depth in metres (``depth_kind="depth"``), as a NumPy
        array, PIL image or torch tensor.  Invalid values are filled from their
        valid neighbours (push–pull interpolation) before use: NaN and ±inf
        disparities, negative disparities; NaN, zero, negative and -inf depths.
        ``+inf`` depth is valid (infinitely far).  A map whose shape differs
        from ``image_shape`` is resampled bilinearly (antialiased when
        shrinking, in inverse depth for metric maps); its aspect ratio must
        match the image's within 5 %.
    focus : float or (x, y)
        The focus.  A number: in disparity mode a *normalised* disparity in
        [0, 1] — the map is min–max normalised, 0 is its farthest value, 1 its
        nearest, whatever its dtype or bit depth (0.5 focuses halfway between in
        disparity), outside [0, 1] raises ValueError; in depth mode a distance
        in metres beyond the focal length (``inf`` allowed), also one in front
        of or behind everything in the map (a deliberately defocused photo).
        Or an image pixel ``(x, y)`` (column, row): the focus is
        the median depth in a window of ``2 * max(1, round(0.01 * min(H, W))) +
        1`` pixels around it.
    focus_range : float
        Width of a band around the focus kept perfectly sharp, in the units
        of a focus value: normalised disparity in [0, 1] (disparity mode), or
        metres (depth mode).  Outside it the CoC grows from the nearer band
        edge, so the map stays continuous.
    depth_kind : {"disparity", "depth"}
    max_blur : float, optional
        Disparity mode: ``K``, the CoC radius in pixels per unit of normalised
        disparity (default 2.5 % of the image diagonal).  Depth mode: an
        optional cap on ``|CoC|`` in pixels.
    f_number : float, optional
        Depth mode: the f-number N of the thin lens (default 1.8).  Disparity
        mode: a photographic stand-in for ``max_blur`` (give one of them):
        ``K`` = the default strength × 1.8 / N, so f/1.8 is the default,
        f/3.6 half the blur, f/1.2 1.5× (see :meth:`Lens.blur_per_disparity`).
    focal_length_mm, sensor_width_mm : float
        Depth mode: focal length and sensor width in millimetres (defaults: a
        50 mm lens on a 36 mm full-frame sensor); positive in either mode.
    image_shape : (H, W), optional
        Size of the photo the map is for (default: the depth map's size).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32, signed CoC radius in pixels: positive in front of
        the focus plane (nearer), negative behind it.
    """
    lens = Lens(depth_kind, max_blur, f_number, focal_length_mm, sensor_width_mm, focus_range)
    return lens.coc_map(as_depth(depth), focus, image_shape)


@dataclass(frozen=True)
class Lens:
    """The lens settings of a render, validated once: how depth becomes blur.

    Parameters
    ----------
    depth_kind, max_blur, f_number, focal_length_mm, sensor_width_mm, focus_range
        As in :func:`coc_map`; stored as validated Python floats.  Raises
        ValueError / TypeError naming the argument.
    """

    depth_kind: str = "disparity"
    max_blur: float | None = None
    f_number: float | None = None
    focal_length_mm: float = 50.0
    sensor_width_mm: float = 36.0
    focus_range: float = 0.0

    def __post_init__(self) -> None:
        if self.depth_kind not in DEPTH_KINDS:
            raise ValueError(f"depth_kind must be 'disparity' or 'depth', got {self.depth_kind!r}")
        disparity = self.depth_kind == "disparity"
        if disparity and self.f_number is not None and self.max_blur is not None:
            raise ValueError("in disparity mode give max_blur or f_number, not both (f_number sets max_blur: "
                             "the default strength at f/1.8, scaled by 1.8 / f_number)")
        checked = dict(max_blur=None if self.max_blur is None else nonnegative(self.max_blur, "max_blur"),
                       f_number=None if self.f_number is None else positive(self.f_number, "f_number"),
                       focal_length_mm=positive(self.focal_length_mm, "focal_length_mm"),
                       sensor_width_mm=positive(self.sensor_width_mm, "sensor_width_mm"),
                       focus_range=nonnegative(self.focus_range, "focus_range"))
        if disparity and checked["focus_range"] > 1.0:
            raise ValueError(f"focus_range must be a width of normalised disparity in [0, 1] in disparity mode, "
                             f"got {checked['focus_range']:g}")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def blur_per_disparity(self, shape: tuple[int, int]) -> float:
        """Disparity mode's ``K`` (CoC px per unit of normalised disparity) for an image of ``shape``.

        ``max_blur`` when given; else :data:`DEFAULT_MAX_BLUR_FRACTION` of the image
        diagonal at the reference f-number :data:`DEFAULT_F_NUMBER` (f/1.8), scaled by
        ``DEFAULT_F_NUMBER / f_number``: a lens's blur disc is proportional to its
        aperture diameter ``f / N``, so f/3.6 blurs half as much as f/1.8 and f/0.9 twice.
        """
        if self.max_blur is not None:
            return self.max_blur
        k = DEFAULT_MAX_BLUR_FRACTION * math.hypot(*shape)
        return k if self.f_number is None else k * DEFAULT_F_NUMBER / self.f_number

    def coc_map(self, depth: Any, focus: float | Sequence[float], image_shape: tuple[int, int] | None = None):
        """:func:`coc_map` of a depth map already in an array library.

        Parameters
        ----------
        depth : numpy.ndarray or torch.Tensor
            ``(H', W')`` float32 raw map (:func:`pybokeh.inputs.as_depth`); the
            map is computed in its library, on its device.  Not modified.
        focus, image_shape
            As in :func:`coc_map`.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            ``(H, W)`` float32 contiguous, signed CoC radius in pixels.
        """
        ops = namespace(depth)
        shape = tuple(depth.shape) if image_shape is None else shape2d(image_shape, "image_shape")
        if self.depth_kind == "disparity":
            values, lo, hi, f = self._disparity_inputs(depth, focus, shape, ops)
            coc = self._disparity_coc(values, lo, hi, f, shape, ops)
        else:
            # Work in inverse depth q = 1/z (1/m): +inf depth is exactly q = 0, and
            # the CoC is linear in q.
            valid = (depth > 0) & ~ops.xp.isnan(depth)
            with np.errstate(divide="ignore"):
                q = ops.cast(ops.where(valid, 1.0 / ops.where(valid, depth, 1.0), 0.0), ops.float32)
            q = resample(fill_invalid(q, valid, "depth"), shape, "depth")
            q_focus = focus_value(focus, q, shape) if _is_pixel(focus) else focus_inverse_depth(focus)
            coc = self._thin_lens_coc(ops.cast(q, ops.float64), q_focus, shape[1], ops)
        coc = ops.cast(coc, ops.float32)
        lo, hi = ops.minmax(coc)  # NaN propagates; no full-size temporaries
        if not (math.isfinite(lo) and math.isfinite(hi)) or max(hi, -lo) > MAX_COC_RADIUS:
            raise ValueError(f"the lens settings give a circle of confusion over {MAX_COC_RADIUS:g} px; "
                             f"check max_blur, f_number, focal_length_mm and the depth units")
        return coc if ops.xp is np else coc.contiguous()

    def kernel_coc(self, depth: Any, focus: float | Sequence[float], image_shape: tuple[int, int], *,
                   steps: bool = False):
        """The CoC map as the kernels read it: :meth:`coc_map` on the radius grid.

        Parameters
        ----------
        depth, focus, image_shape
            As in :meth:`coc_map`.
        steps : bool
            Int16 steps of ``1 / COC_STEPS_PER_PX`` px (:func:`grid_steps`) where the radii fit,
            for the kernels that read them.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            ``(H, W)``: int16 steps (``steps``, NumPy, every radius under
            :data:`MAX_STEP_RADIUS`) or float32 px rounded to the grid
            (:func:`round_to_kernel_grid`).
        """
        ops = namespace(depth)
        shape = shape2d(image_shape, "image_shape")
        if (steps and ops.xp is np and self.depth_kind == "disparity"
                and self.blur_per_disparity(shape) * COC_STEPS_PER_PX <= 32767):  # |CoC| <= K: every radius fits
            values, lo, hi, f = self._disparity_inputs(depth, focus, shape, ops)
            if math.isfinite(hi - lo):  # (else coc_map raises, naming the lens settings)
                return self._disparity_steps(values, lo, hi, f, shape, ops)
        coc = self.coc_map(depth, focus, shape)
        return grid_steps(coc) if steps and ops.xp is np else round_to_kernel_grid(coc)

    def _disparity_inputs(self, depth, focus, shape: tuple[int, int], ops):
        """The disparity map filled and resampled to ``shape``, its range and the normalised focus."""
        lo, hi = ops.minmax(depth)
        values = ops.cast(depth, ops.float32)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo >= 0):
            # Some pixel is NaN, infinite or negative (they show in the range; else no mask pass).
            # The mask is a temporary: the peak memory of a render is here or in the kernel.
            values = fill_invalid(depth, ops.xp.isfinite(depth) & (depth >= 0), "depth")
        values = resample(values, shape, "depth")
        if values is not depth:  # filled, cast or resampled: its own range
            lo, hi = ops.minmax(values)
        pixel_value = focus_value(focus, values, shape) if _is_pixel(focus) else None
        return values, lo, hi, normalised_focus(focus, pixel_value, lo, hi)

    def _disparity_steps(self, values: np.ndarray, lo: float, hi: float, focus: float, shape: tuple[int, int],
                         ops) -> np.ndarray:
        """:meth:`_disparity_coc` as :func:`grid_steps`, block by block: the same radii without a
        full-size float map."""
        out = np.empty(values.shape, np.int16)
        flat_in, flat_out = values.reshape(-1), out.reshape(-1)
        for start in range(0, flat_in.size, _STEP_BLOCK):
            block = slice(start, start + _STEP_BLOCK)
            flat_out[block] = grid_steps(self._disparity_coc(flat_in[block], lo, hi, focus, shape, ops))
        return out

    def _disparity_coc(self, values, lo: float, hi: float, focus: float, shape: tuple[int, int], ops):
        """``K * (d - clip(d, f - h, f + h))`` on the min–max normalised disparity ``d``.

        ``lo``/``hi`` are the map's range, ``focus`` is on the normalised scale
        (:func:`normalised_focus`), ``h`` half the sharp band.
        """
        span = hi - lo if hi > lo else 1.0
        half = 0.5 * self.focus_range
        # k * (d - clip(d, ...)) with d = (values - lo) / span, computed in place on
        # one new array (values may be the caller's): the same roundings, one full-size
        # array instead of five.
        d = values - lo
        d /= span
        ops.subtract_clip(d, focus - half, focus + half)
        d *= self.blur_per_disparity(shape)
        return d

    def _thin_lens_coc(self, q, q_focus: float, width: int, ops):
        """Thin-lens CoC radius (px) from inverse depth ``q`` (1/m, float64).

        ``r = f² / (2 N p) * (q - q_e) / (1 - f q_e)`` with ``q_e`` the inverse
        depth clipped to the sharp band around the focus, ``p`` the pixel pitch
        (mm); the same as ``f² / (2N(z_f - f)) * (z_f / z - 1) / p``.
        """
        n = DEFAULT_F_NUMBER if self.f_number is None else self.f_number
        flen = self.focal_length_mm
        f_m = flen / 1000.0
        if q_focus * f_m >= 1.0:
            raise ValueError(f"focus distance {1 / q_focus:g} m must exceed the focal length ({flen:g} mm)")
        z_focus = math.inf if q_focus == 0 else 1.0 / q_focus
        half = self.focus_range / 2
        if math.isinf(z_focus):
            q_lo = q_hi = 0.0
        else:
            q_lo = 1.0 / (z_focus + half)
            q_hi = math.inf if z_focus - half <= 0 else 1.0 / (z_focus - half)
        q_edge = ops.clip(q, q_lo, min(q_hi, 0.999 / f_m))
        pitch_mm = self.sensor_width_mm / width
        q_mm, qe_mm = q / 1000.0, q_edge / 1000.0
        coc = flen * flen / (2.0 * n * pitch_mm) * (q_mm - qe_mm) / (1.0 - flen * qe_mm)
        return coc if self.max_blur is None else ops.clip(coc, -self.max_blur, self.max_blur)


# ------------------------------------------------------------- focus values

def normalised_focus(focus: Any, pixel_value: float | None, lo: float, hi: float) -> float:
    """Disparity mode: the focus on the min–max normalised scale, in [0, 1].

    ``pixel_value`` is the median raw disparity around a focus pixel (None when
    ``focus`` is a number).  A number must already be on the normalised scale:
    0 = the farthest value of the map, 1 = the nearest, whatever the file's bit
    depth or units; outside [0, 1] raises ValueError.
    """
    span = hi - lo if hi > lo else 1.0
    if pixel_value is not None:
        return (pixel_value - lo) / span
    f = finite(focus, "focus")
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"focus must be a normalised disparity in [0, 1] (0 = farthest, 1 = nearest in the map) "
                         f"or a pixel (x, y), got {f:g}")
    return f


def focus_inverse_depth(focus) -> float:
    """Inverse focus distance (1/m) from a focus value in metres (``inf`` allowed)."""
    z_focus = real_number(focus, "focus")
    if not z_focus > 0:
        raise ValueError(f"focus must be a positive distance in metres in depth mode, got {z_focus!r}")
    return 0.0 if math.isinf(z_focus) else 1.0 / z_focus


def focus_window_radius(shape: tuple[int, int]) -> int:
    """Half-size of the window whose median depth a focus pixel selects."""
    return max(1, int(round(0.01 * min(shape))))


def focus_value(focus: Any, values, shape: tuple[int, int]) -> float:
    """The median of ``values`` (an H×W map of the image's size) around the focus pixel ``(x, y)``."""
    pos = np.asarray(focus)
    if pos.shape != (2,) or pos.dtype == np.bool_ or pos.dtype.kind not in "uif":
        raise ValueError(f"focus must be a number or a pixel (x, y), got {focus!r}")
    x, y = float(pos[0]), float(pos[1])
    h, w = shape
    if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x < w and 0 <= y < h):
        raise ValueError(f"focus pixel {tuple(focus)} lies outside the {w}×{h} image (x in [0, {w}), y in [0, {h}))")
    xi, yi = int(x), int(y)
    r = focus_window_radius(shape)
    ordered = namespace(values).sort(values[max(0, yi - r):yi + r + 1, max(0, xi - r):xi + r + 1].reshape(-1))
    n = ordered.shape[0]
    return float(ordered[n // 2]) if n % 2 else float((ordered[n // 2 - 1] + ordered[n // 2]) / 2)


def _is_pixel(focus: Any) -> bool:
    return isinstance(focus, (tuple, list, np.ndarray)) and not np.isscalar(focus)


# ----------------------------------------------------------------- the map

def fill_invalid(values, valid, name: str):
    """Replace invalid pixels by push–pull interpolation of the valid ones.

    ``values`` and ``valid`` are H×W arrays of one library (NumPy or torch);
    the result is float32.  Valid pixels are kept exactly; each hole takes the
    mean of the valid pixels in the smallest enclosing block of a 2×2 pyramid
    (sums in float64).  Raises ``ValueError`` naming ``name`` when no pixel is valid.
    """
    ops = namespace(values)
    if bool(valid.all()):
        return ops.cast(values, ops.float32)
    if not bool(valid.any()):
        raise ValueError(f"{name} has no valid values (all NaN, infinite or out of range)")
    filled = _push_pull(ops.where(valid, ops.cast(values, ops.float64), 0.0), ops.cast(valid, ops.float64), ops)
    return ops.cast(filled, ops.float32)


def _push_pull(values, weight, ops):
    h, w = values.shape
    if (h == 1 and w == 1) or bool((weight > 0).all()):
        return values
    vw = ops.pad_end(values * weight, h % 2, w % 2)
    ww = ops.pad_end(weight, h % 2, w % 2)
    hh, wh = vw.shape[0] // 2, vw.shape[1] // 2
    vs = vw.reshape(hh, 2, wh, 2).sum(axis=(1, 3))
    ws = ww.reshape(hh, 2, wh, 2).sum(axis=(1, 3))
    coarse = ops.where(ws > 0, vs / ops.where(ws > 0, ws, 1.0), 0.0)
    coarse = _push_pull(coarse, ops.cast(ws > 0, ops.float64), ops)
    return ops.where(weight > 0, values, ops.repeat2(coarse)[:h, :w])


def resample(values, shape: tuple[int, int], name: str):
    """Bilinear resampling of a float32 map (NumPy or torch) to ``shape`` (antialiased when shrinking)."""
    h, w = values.shape
    if (h, w) == tuple(shape):
        return values
    th, tw = shape
    if abs((w / h) / (tw / th) - 1.0) > 0.05:
        raise ValueError(f"{name} has aspect ratio {w}/{h} but the image is {tw}/{th}; "
                         f"resize or crop the depth map to the photo's framing first")
    return namespace(values).resize_bilinear(values, (th, tw))
