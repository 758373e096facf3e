"""Depth that phones and depth cameras embed in their photos, read and registered to the photo.

Formats (see :mod:`pybokeh.phone.formats` for the decoding of each):

* iPhone Portrait HEIC: the auxiliary depth image (``urn:mpeg:hevc:2015:auxid:2``)
  with Apple's XMP (``FloatMinValue``/``FloatMaxValue``, ``Accuracy``); needs the
  ``heif`` extra (``pip install "pybokeh[heif]"``, pillow-heif);
* iPhone Portrait JPEG: a multi-picture (MPF) file whose image with Apple's
  disparity XMP holds the map (the 2nd image; a portrait matte may follow);
* Google depth map XMP (GDepth, Lens Blur): a base64 PNG/JPEG in the extended XMP,
  ``RangeInverse``/``RangeLinear`` with ``Near``/``Far``;
* XDM 1.0 (``Device:Cameras``/``Camera:DepthMap``/``Depthmap:Data``) and Dynamic
  Depth 1.0 (``DepthMap:DepthURI`` naming an item appended to the JPEG).

:func:`read_photo_with_depth` is the entry point; :func:`read_embedded_depth`
gives the map as stored (unregistered).  All metadata is untrusted: sizes are
bounded (no embedded map may have more pixels than its photo, checked before
decoding) and anything malformed raises :class:`pybokeh.io.ImageFileError` with a
one-line message.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from .. import io
from ..imagefile import ImageFileError
from . import formats, heif, xmp
from .formats import SOURCE_NAMES, EmbeddedDepth
from .register import register

__all__ = ["PhotoDepth", "EmbeddedDepth", "read_photo_with_depth", "read_embedded_depth", "SOURCE_NAMES"]


@dataclass
class PhotoDepth:
    """A photo and the depth its file carries, registered to it.

    Attributes
    ----------
    image : numpy.ndarray
        The photo as :func:`pybokeh.io.read_photo` returns it (EXIF orientation applied).
    depth : numpy.ndarray or None
        ``(H, W)`` float32 at the photo's size and displayed orientation, or None
        when the file carries no depth.  Units per ``kind``/``units``.
    kind : {"disparity", "depth"} or None
        ``"disparity"``: larger = nearer (Apple: 1/m); ``"depth"``: distance along
        the optical axis, larger = farther.
    metric : bool
        Whether the device marks the values as calibrated.
    units : str or None
        ``"1/m"`` or ``"m"`` when metric, else None (relative or unspecified units).
    source : str or None
        ``"apple-heic"``, ``"apple-mpf"``, ``"gdepth"``, ``"xdm"`` or ``"dynamic-depth"``.
    metadata : dict
        The stored values the decoding used (``FloatMinValue``, ``Near``/``Far``,
        ``Accuracy``, stored map size, orientation, cropping, ...).
    valid : numpy.ndarray or None
        ``(H, W)`` bool: where ``depth`` comes mostly from samples the device stored as
        valid (elsewhere it is filled from their neighbours); None when every stored
        sample is valid (or there is no depth).
    """

    image: np.ndarray
    depth: np.ndarray | None
    kind: str | None = None
    metric: bool = False
    units: str | None = None
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    valid: np.ndarray | None = None

    def disparity(self) -> np.ndarray:
        """The map as normalised disparity: ``(H, W)`` float32 in [0, 1], 1 = nearest, 0 = farthest.

        Depth maps are inverted first (``1 / depth``: disparity is what the lens blur
        is linear in), then min–max normalised, as :func:`pybokeh.render` normalises
        any disparity map; a ``focus`` value given to ``render`` refers to this scale.
        """
        if self.depth is None:
            raise ValueError("this photo carries no embedded depth")
        if self.kind == "depth":
            with np.errstate(divide="ignore"):
                d = np.where(self.depth > 0, 1.0 / self.depth, 0.0).astype(np.float32)
        else:
            d = self.depth.astype(np.float32)
        lo, hi = float(d.min()), float(d.max())
        return ((d - lo) / (hi - lo) if hi > lo else np.zeros_like(d)).astype(np.float32)

    def describe(self) -> str:
        """One line saying where the depth came from (for messages)."""
        if self.depth is None:
            return "no embedded depth"
        w, h = self.metadata.get("stored_size", (None, None))
        scale = ("metric " + self.units) if self.metric else "relative"
        return f"{SOURCE_NAMES[self.source]}, {w}×{h}, {self.kind} ({scale})"


def read_embedded_depth(path: str | os.PathLike) -> EmbeddedDepth | None:
    """The depth map embedded in a photo file as stored (not registered), or None.

    Raises :class:`pybokeh.io.ImageFileError` for unreadable files, malformed
    depth metadata, or a HEIC file without the ``heif`` extra installed.
    """
    what = f"photo {str(path)!r}"
    if heif.is_heif(path):
        return _heif_depth(path, what)
    try:
        img = Image.open(path)
    except Exception:
        io.read_photo(path)  # raises the reader's one-line error for missing/unreadable files
        raise
    with img:
        if img.format not in ("JPEG", "MPO"):
            return None
        max_pixels = img.size[0] * img.size[1]
        found = _mpf_depth(img, what, max_pixels)
        if found is not None:
            return found
        main, extended = xmp.jpeg_xmp(getattr(img, "applist", []), what)
    if main is None:
        return None
    roots = [r for r in (main, extended) if r is not None]
    found = formats.decode_xdm(roots, what, max_pixels)
    if found is None and _has_dynamic_depth(roots):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ImageFileError(f"cannot read {what}: {exc}") from None
        found = formats.decode_dynamic_depth(roots, data, what, max_pixels)
    if found is None:
        found = formats.decode_gdepth(main, extended, what, max_pixels)
    return found


def read_photo_with_depth(path: str | os.PathLike, max_pixels: int = io.DEFAULT_MAX_PIXELS) -> PhotoDepth:
    """Read a photo and the depth its file embeds, registered to the photo as displayed.

    Parameters
    ----------
    path : path-like
        JPEG (GDepth, XDM, Dynamic Depth, Apple MPF), HEIC/HEIF (iPhone Portrait;
        needs ``pip install "pybokeh[heif]"``) or any photo PIL reads (no depth).
    max_pixels : int
        Largest photo read, as for :func:`pybokeh.io.read_photo` (checked before
        decoding); the embedded map may not have more pixels than the photo.

    Returns
    -------
    PhotoDepth
        ``image`` as :func:`pybokeh.io.read_photo` gives it; ``depth`` the embedded
        map turned by the photo's EXIF orientation, centre-cropped to the photo's
        aspect ratio when it differs by 5–25 %, resampled bilinearly (in inverse
        depth) to the photo's size — or None when the file has no depth.

    Raises
    ------
    pybokeh.io.ImageFileError
        Unreadable photo, malformed or oversized depth data, or HEIC without the extra.
    """
    image = io.read_photo(path, max_pixels)
    found = read_embedded_depth(path)
    if found is None:
        return PhotoDepth(image, None)
    orientation = 1 if heif.is_heif(path) else io.photo_orientation(path, max_pixels)  # libheif turned both
    depth, valid, notes = register(found.values, found.kind, orientation, image.shape[:2], f"photo {str(path)!r}")
    return PhotoDepth(image, depth, found.kind, found.metric, found.units, found.source,
                      {**found.metadata, **notes}, valid)


def _mpf_depth(img: Image.Image, what: str, max_pixels: int) -> EmbeddedDepth | None:
    """Apple's disparity image inside a multi-picture (MPF) JPEG: the frame whose XMP says so."""
    frames = getattr(img, "n_frames", 1)
    if img.format != "MPO" or frames < 2:
        return None
    try:
        for index in range(1, min(frames, 16)):
            img.seek(index)
            packet = img.info.get("xmp")
            if not packet:
                continue
            props = xmp.properties(xmp.parse(packet, what))
            if not formats.is_apple_depth(props):
                continue
            w, h = img.size
            if w * h > max_pixels:
                raise ImageFileError(f"{what}: embedded map of {w}×{h} pixels is larger than its photo")
            img.load()
            stored = formats.samples(img, what)
            found = formats.decode_apple(stored, props, "apple-mpf", what)
            found.metadata["mpf_index"] = index + 1
            return found
    except ImageFileError:
        raise
    except Exception as exc:  # corrupt MPF index or frame data
        raise ImageFileError(f"{what}: unreadable multi-picture image ({type(exc).__name__}: {exc})") from None
    finally:
        img.seek(0)
    return None


def _has_dynamic_depth(roots) -> bool:
    return any(el.tag.startswith(f"{{{formats.DD_DEVICE}}}") for root in roots for el in root.iter())


def _heif_depth(path, what: str) -> EmbeddedDepth | None:
    depth, packets = heif.depth_image(path, what)
    if depth is None:
        return None
    w, h = depth.size
    try:
        with Image.open(path) as primary:
            max_pixels = primary.size[0] * primary.size[1]
    except Exception as exc:
        raise ImageFileError(f"cannot read {what}: {exc}") from None
    if w * h > max_pixels:
        raise ImageFileError(f"{what}: embedded map of {w}×{h} pixels is larger than its photo")
    try:
        stored = formats.samples(depth.to_pillow(), what)
    except ImageFileError:
        raise
    except Exception as exc:
        raise ImageFileError(f"{what}: cannot decode the depth image ({type(exc).__name__}: {exc})") from None
    for packet in packets:
        props = xmp.properties(xmp.parse(packet, what))
        if formats.is_apple_depth(props):
            return formats.decode_apple(stored, props, "apple-heic", what)
    # No Apple XMP: libheif's depth representation info (ISO/IEC 23008-12), relative.
    meta = depth.info.get("metadata") or {}
    lo, hi, rep = meta.get("d_min"), meta.get("d_max"), meta.get("representation_type")
    if lo is None or hi is None or rep not in (0, 1, 2):
        raise ImageFileError(f"{what}: depth image without Apple XMP or a usable depth representation")
    props = {f"{{{formats.APDI}}}AuxiliaryImageType": "depth" if rep == 2 else "disparity",
             f"{{{formats.APDI}}}FloatMinValue": repr(float(lo)), f"{{{formats.APDI}}}FloatMaxValue": repr(float(hi))}
    return formats.decode_apple(stored, props, "apple-heic", what)
