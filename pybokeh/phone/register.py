"""Registering an embedded map to the photo as displayed: orientation, framing, size."""
from __future__ import annotations

import numpy as np

from ..imagefile import ORIENTATIONS, ImageFileError
from ..lens import fill_invalid, resample

#: Aspect ratios within this relative difference are taken as the same framing
#: (sensor maps are often a few pixels off, e.g. XDM 472×352 for a 2965×2254 photo).
SAME_FRAMING = 0.05
#: Up to this relative difference the map is centre-cropped to the photo's aspect
#: ratio first (a photo cropped from the sensor frame the map covers).
MAX_CROP = 0.25


def register(values: np.ndarray, kind: str, orientation: int, photo_hw: tuple[int, int],
             what: str) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The map turned like the photo, cropped to its framing and resampled to its size.

    Parameters
    ----------
    values : numpy.ndarray
        ``(h, w)`` float32 map in the frame of the photo's stored pixels; NaN = invalid.
    kind : {"disparity", "depth"}
        Resampling happens in inverse depth (disparity), where depth is linear
        between the pixels of a tilted plane.
    orientation : int
        EXIF orientation (1–8) the photo reader applied to the stored pixels.
    photo_hw : (H, W)
        Size of the displayed photo.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray or None, dict)
        ``(H, W)`` float32 map in the same kind and units (invalid samples filled
        from their neighbours, see :func:`pybokeh.lens.fill_invalid`); ``(H, W)`` bool,
        True where the map comes mostly from valid samples (their share in the
        bilinear resampling at least one half), or None when every sample is valid;
        and notes on what was done.
    """
    notes: dict = {"orientation": orientation}
    turned = ORIENTATIONS[orientation](values) if orientation in ORIENTATIONS else values
    h, w = turned.shape
    ph, pw = photo_hw
    ratio = (w / h) / (pw / ph)
    if abs(ratio - 1.0) > SAME_FRAMING:
        if abs(ratio - 1.0) > MAX_CROP and abs(1.0 / ratio - 1.0) > MAX_CROP:
            raise ImageFileError(f"{what}: the embedded map ({w}×{h}) does not match the photo's framing "
                                 f"({pw}×{ph}); cannot register it")
        if ratio > 1:  # map wider than the photo: keep the central columns
            keep = max(1, round(h * pw / ph))
            x0 = (w - keep) // 2
            turned = turned[:, x0:x0 + keep]
            notes["cropped"] = f"central {keep} of {w} columns"
        else:
            keep = max(1, round(w * ph / pw))
            y0 = (h - keep) // 2
            turned = turned[y0:y0 + keep]
            notes["cropped"] = f"central {keep} of {h} rows"
    if kind == "depth":
        valid = np.isfinite(turned) & (turned > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse = np.where(valid, 1.0 / np.where(valid, turned, 1.0), 0.0).astype(np.float32)
    else:
        valid = np.isfinite(turned) & (turned >= 0)
        inverse = np.where(valid, turned, 0.0).astype(np.float32)
    notes["invalid_fraction"] = float(1.0 - valid.mean())
    if not valid.any():
        raise ImageFileError(f"{what}: the embedded map has no valid sample")
    registered_valid = None
    if not valid.all():
        share = resample(np.ascontiguousarray(valid, np.float32), (ph, pw), what)
        registered_valid = share >= 0.5
    inverse = fill_invalid(inverse, valid, what)
    inverse = resample(np.ascontiguousarray(inverse), (ph, pw), what)
    if kind == "depth":
        with np.errstate(divide="ignore"):
            out = np.where(inverse > 0, 1.0 / np.maximum(inverse, np.float32(1e-30)), np.inf).astype(np.float32)
        return out, registered_valid, notes
    return inverse.astype(np.float32, copy=False), registered_valid, notes
