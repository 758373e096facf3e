"""Decoders of the depth formats phones embed, each to an :class:`EmbeddedDepth`.

Every decoder takes what the container gave (the stored samples of an embedded
image and its metadata) and turns the samples into physical values exactly as
the format defines them.  The map is left in the frame of the photo's *stored*
pixels (registration to the displayed photo is :mod:`pybokeh.phone.register`).
"""
from __future__ import annotations

import base64
import binascii
import io as _bytes_io
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..imagefile import ImageFileError
from . import xmp

APDI = "http://ns.apple.com/pixeldatainfo/1.0/"
DEPTH_DATA = "http://ns.apple.com/depthData/1.0/"
GDEPTH = "http://ns.google.com/photos/1.0/depthmap/"
GFOCUS = "http://ns.google.com/photos/1.0/focus/"
XDM_DEVICE = "http://ns.xdm.org/photos/1.0/device/"
XDM_CAMERA = "http://ns.xdm.org/photos/1.0/camera/"
XDM_DEPTHMAP = "http://ns.xdm.org/photos/1.0/depthmap/"
DD_DEVICE = "http://ns.google.com/photos/dd/1.0/device/"
DD_CAMERA = "http://ns.google.com/photos/dd/1.0/camera/"
DD_DEPTHMAP = "http://ns.google.com/photos/dd/1.0/depthmap/"
DD_CONTAINER = ("http://ns.google.com/photos/dd/1.0/container/", "http://ns.google.com/photos/1.0/container/")
DD_ITEM = ("http://ns.google.com/photos/dd/1.0/item/", "http://ns.google.com/photos/1.0/container/item/")

#: Human-readable names of the sources, for messages.
SOURCE_NAMES = {
    "apple-heic": "iPhone HEIC auxiliary disparity image",
    "apple-mpf": "iPhone multi-picture JPEG (MPF) disparity image",
    "gdepth": "Google depth map (GDepth XMP)",
    "xdm": "XDM depth map (Intel/Google XDM 1.0 XMP)",
    "dynamic-depth": "Dynamic Depth map (Android)",
}


@dataclass
class EmbeddedDepth:
    """A depth or disparity map as the device stored it, decoded to physical values.

    Attributes
    ----------
    values : numpy.ndarray
        ``(h, w)`` float32 in the frame of the photo's stored pixels.  NaN marks
        samples the format calls invalid.
    kind : {"disparity", "depth"}
        ``"disparity"``: inverse distance, larger = nearer; ``"depth"``: distance
        along the optical axis, larger = farther.
    metric : bool
        True when the device says the values are calibrated (Apple ``Accuracy``
        absolute, Dynamic Depth ``Units`` meters); ``units`` then names them.
    units : str or None
        ``"1/m"`` or ``"m"`` when metric; otherwise the format's unspecified units (None).
    source : str
        Key of :data:`SOURCE_NAMES`.
    metadata : dict
        The stored values the decoding used (ranges, format, focal point, ...).
    """

    values: np.ndarray
    kind: str
    metric: bool
    units: str | None
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


def decode_image(data: bytes, what: str, max_pixels: int) -> np.ndarray:
    """Decode an embedded PNG/JPEG to its stored samples (uint8 or uint16, one channel).

    The size is checked against ``max_pixels`` before any pixel is decoded.  Grey
    stored as RGB(A) (GDepth writes R = G = B) gives its first channel.
    """
    try:
        img = Image.open(_bytes_io.BytesIO(data))
        w, h = img.size
        if w * h > max_pixels or w == 0 or h == 0:
            raise ImageFileError(f"{what}: embedded map of {w}×{h} pixels is larger than its photo "
                                 f"({max_pixels} pixels) or empty")
        img.load()
    except ImageFileError:
        raise
    except Exception as exc:  # PIL raises many types on corrupt data; all mean "unreadable"
        raise ImageFileError(f"{what}: embedded map is not a readable image ({type(exc).__name__}: {exc})") from None
    return samples(img, what)


def samples(img: Image.Image, what: str) -> np.ndarray:
    """One channel of stored samples from a decoded PIL image (uint8 or uint16)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(img, dtype=np.uint16)
    if mode == "I":  # PIL opens 16-bit grey PNGs as I (32-bit) in some versions
        arr = np.asarray(img)
        if arr.min() < 0 or arr.max() > 65535:
            raise ImageFileError(f"{what}: embedded map has values outside 16 bits")
        return arr.astype(np.uint16)
    if mode == "L":
        return np.asarray(img, dtype=np.uint8)
    if mode in ("LA", "RGB", "RGBA", "P"):
        return np.asarray(img.convert("RGB") if mode == "P" else img)[..., 0].copy()
    raise ImageFileError(f"{what}: embedded map has unsupported mode {mode!r}")


def _number(props: dict[str, str], key: str, what: str, default: float | None = None) -> float:
    text = props.get(key)
    if text is None:
        if default is not None:
            return default
        raise ImageFileError(f"{what}: depth metadata lacks {key.split('}')[-1]}")
    try:
        value = float(text)
    except ValueError:
        raise ImageFileError(f"{what}: {key.split('}')[-1]} is not a number ({text[:40]!r})") from None
    if not math.isfinite(value):
        raise ImageFileError(f"{what}: {key.split('}')[-1]} is not finite ({text[:40]!r})")
    return value


def _unit_samples(stored: np.ndarray) -> np.ndarray:
    """Stored samples as fractions of their bit depth's full scale (``v / 255`` or ``v / 65535``)."""
    full = 65535.0 if stored.dtype == np.uint16 else 255.0
    return stored.astype(np.float32) / np.float32(full)


# ----------------------------------------------------------------- Apple

def is_apple_depth(props: dict[str, str]) -> bool:
    """Whether an auxiliary image's XMP describes Apple depth data (not a matte)."""
    kind = props.get(f"{{{APDI}}}AuxiliaryImageType", "").strip().lower()
    return kind in ("disparity", "depth") and f"{{{APDI}}}AuxiliaryImageSubType" not in props


def decode_apple(stored: np.ndarray, props: dict[str, str], source: str, what: str) -> EmbeddedDepth:
    """Apple disparity/depth: ``FloatMin + (v - IntMin) / (IntMax - IntMin) * (FloatMax - FloatMin)``.

    ``AuxiliaryImageType`` disparity gives 1/m, depth gives m; ``depthData:Accuracy``
    absolute means calibrated, relative means only proportional (iPhone dual
    cameras without calibration).
    """
    kind = props[f"{{{APDI}}}AuxiliaryImageType"].strip().lower()
    fmin = _number(props, f"{{{APDI}}}FloatMinValue", what)
    fmax = _number(props, f"{{{APDI}}}FloatMaxValue", what)
    full = 65535.0 if stored.dtype == np.uint16 else 255.0
    imin = _number(props, f"{{{APDI}}}IntMinValue", what, 0.0)
    imax = _number(props, f"{{{APDI}}}IntMaxValue", what, full)
    if not imax > imin or not fmax >= fmin:
        raise ImageFileError(f"{what}: Apple depth range is empty (Int {imin:g}..{imax:g}, Float {fmin:g}..{fmax:g})")
    scale = np.float32((fmax - fmin) / (imax - imin))
    values = np.float32(fmin) + (stored.astype(np.float32) - np.float32(imin)) * scale
    accuracy = props.get(f"{{{DEPTH_DATA}}}Accuracy", "").strip().lower()
    metric = accuracy == "absolute"
    meta = {"AuxiliaryImageType": kind, "FloatMinValue": fmin, "FloatMaxValue": fmax, "IntMinValue": imin,
            "IntMaxValue": imax, "Accuracy": accuracy or None, "stored_size": (stored.shape[1], stored.shape[0])}
    return EmbeddedDepth(values, kind, metric, ("1/m" if kind == "disparity" else "m") if metric else None,
                         source, meta)


# ----------------------------------------------------------------- Google GDepth (Lens Blur)

def range_to_depth(unit: np.ndarray, fmt: str, near: float, far: float, what: str) -> np.ndarray:
    """GDepth / XDM / Dynamic Depth range conversion of ``unit`` = v / full scale.

    ``RangeInverse``: ``depth = Near·Far / (Far − unit·(Far − Near))``;
    ``RangeLinear``: ``depth = Near + unit·(Far − Near)``.
    """
    if fmt == "RangeInverse":
        if not (0 < near < far):
            raise ImageFileError(f"{what}: RangeInverse needs 0 < Near < Far, got Near={near:g}, Far={far:g}")
        return np.float32(near * far) / (np.float32(far) - unit * np.float32(far - near))
    if fmt == "RangeLinear":
        if not far > near:
            raise ImageFileError(f"{what}: RangeLinear needs Near < Far, got Near={near:g}, Far={far:g}")
        return np.float32(near) + unit * np.float32(far - near)
    raise ImageFileError(f"{what}: unknown depth format {fmt[:40]!r} (expected RangeInverse or RangeLinear)")


def _b64(text: str, what: str, name: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageFileError(f"{what}: {name} is not valid base64") from None


def decode_gdepth(main: ET.Element, extended: ET.Element | None, what: str, max_pixels: int) -> EmbeddedDepth | None:
    """Google depth map XMP (GDepth, written by the Lens Blur camera), or None when absent."""
    props = xmp.properties(main)
    if f"{{{GDEPTH}}}Format" not in props:
        return None
    if extended is not None:
        for k, v in xmp.properties(extended).items():
            props.setdefault(k, v)
    data = props.get(f"{{{GDEPTH}}}Data")
    if data is None:
        raise ImageFileError(f"{what}: GDepth metadata without GDepth:Data (extended XMP missing?)")
    fmt = props[f"{{{GDEPTH}}}Format"].strip()
    near = _number(props, f"{{{GDEPTH}}}Near", what)
    far = _number(props, f"{{{GDEPTH}}}Far", what)
    stored = decode_image(_b64(data, what, "GDepth:Data"), what, max_pixels)
    values = range_to_depth(_unit_samples(stored), fmt, near, far, what)
    units = props.get(f"{{{GDEPTH}}}Units", "").strip() or None
    meta: dict[str, Any] = {"Format": fmt, "Near": near, "Far": far, "Units": units,
                            "Mime": props.get(f"{{{GDEPTH}}}Mime"), "stored_size": (stored.shape[1], stored.shape[0])}
    for name in ("FocalDistance", "FocalPointX", "FocalPointY", "BlurAtInfinity"):
        key = f"{{{GFOCUS}}}{name}"
        if key in props:
            meta[name] = _number(props, key, what)
    metric = units is not None and units.lower() in ("m", "meters", "metres")
    return EmbeddedDepth(values, "depth", metric, "m" if metric else None, "gdepth", meta)


# ----------------------------------------------------------------- XDM 1.0 and Dynamic Depth

def _cameras(root: ET.Element, device_ns: str) -> list[ET.Element]:
    """The camera structs of ``Device:Cameras`` (XDM: the list items; Dynamic Depth wraps each in ``Device:Camera``)."""
    out: list[ET.Element] = []
    for desc in xmp.descriptions(root):
        for cams in desc.iter(f"{{{device_ns}}}Cameras"):
            for item in xmp.items(cams):
                wrapped = item.find(f"{{{device_ns}}}Camera") if item is not None else None
                camera = xmp.struct(wrapped) if wrapped is not None else item
                if camera is not None:
                    out.append(camera)
    return out


def decode_xdm(roots: list[ET.Element], what: str, max_pixels: int) -> EmbeddedDepth | None:
    """XDM 1.0 (``ns.xdm.org``): ``Depthmap:Data`` of the first camera that has one, or None."""
    for root in roots:
        for index, camera in enumerate(_cameras(root, XDM_DEVICE)):
            dm = xmp.struct(camera.find(f"{{{XDM_CAMERA}}}DepthMap"))
            if dm is None:
                continue
            props = xmp.fields(dm)
            data = props.get(f"{{{XDM_DEPTHMAP}}}Data")
            if data is None:
                continue
            fmt = props.get(f"{{{XDM_DEPTHMAP}}}Format", "").strip()
            near = _number(props, f"{{{XDM_DEPTHMAP}}}Near", what)
            far = _number(props, f"{{{XDM_DEPTHMAP}}}Far", what)
            stored = decode_image(_b64(data, what, "Depthmap:Data"), what, max_pixels)
            values = range_to_depth(_unit_samples(stored), fmt, near, far, what)
            metric = props.get(f"{{{XDM_DEPTHMAP}}}Metric", "").strip().lower() == "true"
            # A stored 0 in a RangeLinear map with Near 0 is "no measurement".
            if fmt == "RangeLinear" and near == 0:
                values[stored == 0] = np.nan
            meta = {"Format": fmt, "Near": near, "Far": far, "Metric": metric, "camera": index,
                    "stored_size": (stored.shape[1], stored.shape[0])}
            return EmbeddedDepth(values, "depth", metric, "m" if metric else None, "xdm", meta)
    return None


def _container_items(roots: list[ET.Element]) -> list[dict[str, str]]:
    for root in roots:
        for desc in xmp.descriptions(root):
            for ns in DD_CONTAINER:
                for directory in desc.iter(f"{{{ns}}}Directory"):
                    out = []
                    for li in xmp.items(directory):
                        item = li.find(f"{{{ns}}}Item") if li is not None else None
                        fields = xmp.fields(xmp.struct(item) if item is not None else li)
                        out.append({k.split("}")[-1]: v for k, v in fields.items() if k.split("}")[0][1:] in DD_ITEM})
                    if out:
                        return out
    return []


def decode_dynamic_depth(roots: list[ET.Element], file_bytes: bytes, what: str,
                         max_pixels: int) -> EmbeddedDepth | None:
    """Dynamic Depth 1.0: the depth image is a container item appended after the primary JPEG.

    ``Container:Directory`` lists the items in file order (the primary image
    first); each later item's bytes follow the primary image's, ``Item:Length``
    bytes long plus ``Item:Padding``.  The camera's ``DepthMap`` names its item by
    ``DepthURI``.
    """
    for root in roots:
        for camera in _cameras(root, DD_DEVICE):
            dm = xmp.struct(camera.find(f"{{{DD_CAMERA}}}DepthMap"))
            if dm is None:
                continue
            props = {k.split("}")[-1]: v for k, v in xmp.fields(dm).items() if k.startswith(f"{{{DD_DEPTHMAP}}}")}
            if props.get("ItemSemantic", "Depth").strip() != "Depth" or "DepthURI" not in props:
                continue
            items = _container_items(roots)
            data = _container_item(items, props["DepthURI"].strip(), file_bytes, what)
            fmt = props.get("Format", "").strip()
            near = _number(props, "Near", what)
            far = _number(props, "Far", what)
            stored = decode_image(data, what, max_pixels)
            values = range_to_depth(_unit_samples(stored), fmt, near, far, what)
            units = props.get("Units", "").strip() or None
            metric = units is not None and units.lower() == "meters"
            meta = {"Format": fmt, "Near": near, "Far": far, "Units": units, "DepthURI": props["DepthURI"],
                    "stored_size": (stored.shape[1], stored.shape[0])}
            return EmbeddedDepth(values, "depth", metric, "m" if metric else None, "dynamic-depth", meta)
    return None


def _container_item(items: list[dict[str, str]], uri: str, file_bytes: bytes, what: str) -> bytes:
    if not items:
        raise ImageFileError(f"{what}: Dynamic Depth map {uri!r} but no Container:Directory")
    try:
        lengths = [(int(i.get("Length", "0")), int(i.get("Padding", "0"))) for i in items[1:]]
    except ValueError:
        raise ImageFileError(f"{what}: Container item Length/Padding is not an integer") from None
    if any(n < 0 or p < 0 for n, p in lengths):
        raise ImageFileError(f"{what}: negative Container item Length/Padding")
    start = len(file_bytes) - sum(n + p for n, p in lengths)
    if start < 0:
        raise ImageFileError(f"{what}: Container items are longer than the file (truncated?)")
    for item, (n, p) in zip(items[1:], lengths):
        if item.get("DataURI", "").strip() == uri:
            return file_bytes[start:start + n]
        start += n + p
    raise ImageFileError(f"{what}: Dynamic Depth map {uri!r} names no Container item")
