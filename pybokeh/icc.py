"""The tone (transfer) curve of a photo's ICC profile, so blur happens in the photo's own linear light.

The renderer decodes pixel values to linear light with the sRGB curve.  Mixing
light is linear in *any* set of RGB primaries (they are a linear map of CIE
XYZ), so a Display P3 or Adobe RGB photo needs no conversion of its primaries:
only its transfer curve matters.  Display P3 and most camera JPEGs use the sRGB
curve; Adobe RGB (gamma 563/256 ≈ 2.2), ProPhoto (gamma 1.8) and Rec. 2020 do
not.  For those, :func:`to_render` re-encodes the pixels as float32 sRGB values
of the same linear light (exactly invertible), the renderer blurs them, and
:func:`from_render` encodes the result back with the profile's own curve, in the
photo's dtype.  The output carries the unchanged profile.

Only the profile's tone curves are read (``rTRC``/``gTRC``/``bTRC``, or
``kTRC`` for grey profiles; ``curv`` and ``para`` types, ICC.1 v2 and v4).  A
profile without them (LUT-based ``A2B0`` profiles) is treated as sRGB-encoded.
Profiles are untrusted input: every offset and length is checked, and a
malformed profile raises :class:`ProfileError` (a ``ValueError``), never read
past its end.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .color import linear_to_srgb, srgb_to_linear

__all__ = ["TransferCurve", "transfer_curve", "to_render", "from_render", "render_in_own_light", "SRGB_TOLERANCE"]

#: Largest difference in linear light (values in [0, 1]) from the sRGB curve for
#: which a profile's curve counts as sRGB (sRGB's own 1024-entry tables differ
#: from the formula by ~1e-4).
SRGB_TOLERANCE = 5e-4
#: Samples of a curve for its numerical inverse: spacing 2**-18 in code value,
#: under a third of a 16-bit step, so 16-bit values survive the round trip.
_INVERSE_SAMPLES = 2**18 + 1
#: Parameter counts of the ``para`` curve types 0..4 (ICC.1:2010, 10.18).
_PARA_COUNTS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}


class ProfileError(ValueError):
    """A malformed ICC profile."""


@dataclass(frozen=True)
class _Curve:
    kind: str                  # "identity", "gamma", "table" or "para"
    params: tuple = ()
    table: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Code values in [0, 1] → linear light in [0, 1] (float64)."""
        x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
        if self.kind == "identity":
            return x
        if self.kind == "gamma":
            return x ** self.params[0]
        if self.kind == "table":  # 16-bit tables are flat near black: a 1e-7 slope keeps every code invertible
            t = self.table
            return np.interp(x, np.linspace(0.0, 1.0, t.size), t) * (1.0 - 1e-7) + x * 1e-7
        ftype, p = self.params[0], self.params[1:]
        g = p[0]
        if ftype == 0:
            y = x ** g
        else:
            a, b = p[1], p[2]
            base = np.maximum(a * x + b, 0.0) ** g
            if ftype == 1:
                y = np.where(x >= -b / a if a else True, base, 0.0)
            elif ftype == 2:
                y = np.where(x >= -b / a if a else True, base + p[3], p[3])
            elif ftype == 3:
                y = np.where(x >= p[4], base, p[3] * x)
            else:
                y = np.where(x >= p[4], base + p[5], p[3] * x + p[6])
        return np.clip(y, 0.0, 1.0)


class TransferCurve:
    """Per-channel tone curves of a profile: code value ↔ linear light, both in [0, 1].

    Attributes
    ----------
    srgb : bool
        True when every channel's curve is the sRGB curve within
        :data:`SRGB_TOLERANCE` (then no conversion is needed).
    """

    def __init__(self, curves: tuple[_Curve, _Curve, _Curve]) -> None:
        self._curves = curves
        grid = np.linspace(0.0, 1.0, 4097)
        reference = srgb_to_linear(grid.astype(np.float32)).astype(np.float64)
        self.srgb = all(float(np.max(np.abs(c(grid) - reference))) <= SRGB_TOLERANCE for c in curves)
        self._inverse: list[tuple[np.ndarray, np.ndarray]] | None = None

    def to_linear(self, code: np.ndarray) -> np.ndarray:
        """H×W×3 code values in [0, 1] → linear light (float64)."""
        return np.stack([c(code[..., i]) for i, c in enumerate(self._curves)], axis=-1)

    def from_linear(self, linear: np.ndarray) -> np.ndarray:
        """H×W×3 linear light in [0, 1] → code values in [0, 1] (float64), the curves' inverse."""
        if self._inverse is None:
            xs = np.linspace(0.0, 1.0, _INVERSE_SAMPLES)
            self._inverse = [(np.maximum.accumulate(c(xs)), xs) for c in self._curves]
        return np.stack([np.interp(np.clip(linear[..., i], 0.0, 1.0), ys, xs)
                         for i, (ys, xs) in enumerate(self._inverse)], axis=-1)


def transfer_curve(profile: bytes | None) -> TransferCurve | None:
    """The tone curves of an ICC profile, or None when it has none (or there is no profile).

    Raises
    ------
    ProfileError
        The profile is malformed (truncated, offsets outside it, unknown curve type).
    """
    if not profile:
        return None
    data = bytes(profile)
    if len(data) < 132 or data[36:40] != b"acsp":
        raise ProfileError("the embedded ICC profile is malformed (no ICC header)")
    space = data[16:20]
    (count,) = struct.unpack(">I", data[128:132])
    if count > (len(data) - 132) // 12:
        raise ProfileError("the embedded ICC profile is malformed (tag table past its end)")
    tags = {}
    for i in range(count):
        sig, offset, size = struct.unpack(">4sII", data[132 + 12 * i:144 + 12 * i])
        tags[sig] = (offset, size)
    names = (b"rTRC", b"gTRC", b"bTRC") if space == b"RGB " else (b"kTRC",) * 3 if space == b"GRAY" else None
    if names is None or any(n not in tags for n in names):
        return None
    return TransferCurve(tuple(_read_curve(data, *tags[n]) for n in names))


def _read_curve(data: bytes, offset: int, size: int) -> _Curve:
    if offset + size > len(data) or size < 12:
        raise ProfileError("the embedded ICC profile is malformed (tone curve past its end)")
    tag = data[offset:offset + size]
    kind = tag[:4]
    if kind == b"curv":
        (n,) = struct.unpack(">I", tag[8:12])
        if n == 0:
            return _Curve("identity")
        if 12 + 2 * n > size:
            raise ProfileError("the embedded ICC profile is malformed (curve table past its end)")
        if n == 1:
            gamma = struct.unpack(">H", tag[12:14])[0] / 256.0
            if not 0.0 < gamma <= 16.0:
                raise ProfileError(f"the embedded ICC profile has an implausible gamma {gamma:g}")
            return _Curve("gamma", (gamma,))
        table = np.frombuffer(tag, ">u2", n, 12).astype(np.float64) / 65535.0
        return _Curve("table", table=table)
    if kind == b"para":
        (ftype,) = struct.unpack(">H", tag[8:10])
        if ftype not in _PARA_COUNTS or 12 + 4 * _PARA_COUNTS[ftype] > size:
            raise ProfileError(f"the embedded ICC profile has an unknown parametric curve (type {ftype})")
        params = struct.unpack(f">{_PARA_COUNTS[ftype]}i", tag[12:12 + 4 * _PARA_COUNTS[ftype]])
        values = tuple(v / 65536.0 for v in params)
        if not 0.0 < values[0] <= 16.0:
            raise ProfileError(f"the embedded ICC profile has an implausible gamma {values[0]:g}")
        return _Curve("para", (ftype, *values))
    raise ProfileError(f"the embedded ICC profile has an unknown tone curve type {kind!r}")


def _unit(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image / 255.0
    if image.dtype == np.uint16:
        return image / 65535.0
    return image.astype(np.float64)


def to_render(image: np.ndarray, curve: TransferCurve | None) -> np.ndarray:
    """The photo as the renderer should see it: unchanged for sRGB-curve profiles (or none),
    else float32 sRGB code values of the same linear light.

    Parameters
    ----------
    image : numpy.ndarray
        H×W×3 photo, uint8, uint16 or float32 in [0, 1], encoded with ``curve``.
    curve : TransferCurve or None
        From :func:`transfer_curve`.
    """
    if curve is None or curve.srgb:
        return image
    return linear_to_srgb(curve.to_linear(_unit(image)).astype(np.float32))


def from_render(rendered: np.ndarray, curve: TransferCurve | None, dtype: np.dtype) -> np.ndarray:
    """Undo :func:`to_render` on the renderer's result: the profile's code values in ``dtype``."""
    if curve is None or curve.srgb:
        return rendered
    code = curve.from_linear(srgb_to_linear(rendered).astype(np.float64))
    dtype = np.dtype(dtype)
    if dtype == np.uint8 or dtype == np.uint16:
        top = np.iinfo(dtype).max
        return np.round(code * top).astype(dtype)
    return code.astype(dtype)


def render_in_own_light(photo: np.ndarray, curve: TransferCurve | None,
                        render: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``render`` applied to the photo in its profile's linear light: :func:`to_render`, then
    ``render`` (e.g. :func:`pybokeh.render` with its other arguments bound), then :func:`from_render`.

    Parameters
    ----------
    photo : numpy.ndarray
        H×W×3 photo encoded with ``curve`` (uint8, uint16 or float32 in [0, 1]).
    curve : TransferCurve or None
        From :func:`transfer_curve`; None or an sRGB curve: ``render(photo)`` itself.
    render : callable
        Takes the prepared H×W×3 image and returns the rendered one, same shape.

    Returns
    -------
    numpy.ndarray
        The rendered photo in ``photo``'s dtype and curve.  Pixels the renderer left as they
        were (its float path within ~1e-7) keep their exact codes: a profile's table may be
        flat near black, where codes differ by less light than float32 holds.
    """
    prepared = to_render(photo, curve)
    out = render(prepared)
    if prepared is photo:
        return out
    unchanged = np.all(np.abs(out - prepared) <= 1e-6, axis=-1)
    out = from_render(out, curve, photo.dtype)
    out[unchanged] = photo[unchanged]
    return out
