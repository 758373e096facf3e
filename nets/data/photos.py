"""Photos with a reference disparity map (``shared/data/photos``): pseudo ground truth.

The reference maps were predicted by other models (DPT for BokehMe, the MPIB and EBB!
projects' estimators) or rendered (the BLB scenes); see that folder's README.  They are
not measurements: scores against them say how close a model comes to those maps, which
is a comparison, not an accuracy.  Read as depth ``1 / max(d, 0.02)`` with ``d`` the map
divided by its maximum (brighter = nearer, as everywhere in pybokeh).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["PhotoPair", "read_photo_pairs", "PHOTO_PATTERNS", "DISPARITY_FLOOR"]

#: folder → (photo glob, photo path → reference disparity file name)
PHOTO_PATTERNS = {
    "mpib": ("*_all-in-focus.jpg", lambda p: p.name.replace("_all-in-focus.jpg", "_disparity.jpg")),
    "bokehme": ("inputs_*.jpg", lambda p: p.with_suffix(".png").name),
    "blb_preview": ("*_image.jpg", lambda p: p.name.replace("_image.jpg", "_disparity.jpg")),
    "ebb_pynet": ("[0-9]*.jpg", lambda p: p.stem + "_depth.png"),
}
#: Reference disparity below this (relative to the map's maximum) counts as this: depth ≤ 50×.
DISPARITY_FLOOR = 0.02


@dataclass(frozen=True)
class PhotoPair:
    """A photo and its reference disparity map (``source`` = folder, ``name`` = file name)."""

    source: str
    name: str
    photo_path: str
    reference_path: str

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, 3)`` uint8 photo at the reference map's size and ``(H, W)`` float32
        pseudo depth ``1 / max(reference / max, 0.02)`` (relative units, 1 = nearest)."""
        with Image.open(self.reference_path) as im:
            ref = np.asarray(im, np.float32)
        ref = ref[..., 0] if ref.ndim == 3 else ref
        if not ref.max() > 0:
            raise ValueError(f"{self.reference_path}: reference disparity is all zero")
        ref = ref / ref.max()
        h, w = ref.shape
        with Image.open(self.photo_path) as im:
            photo = np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR))
        return photo, (1.0 / np.maximum(ref, DISPARITY_FLOOR)).astype(np.float32)


def read_photo_pairs(root: str | Path) -> list[PhotoPair]:
    """Every photo under ``root/<folder>/`` (folders of :data:`PHOTO_PATTERNS`) that has its map."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"photo directory {root} does not exist")
    found = []
    for folder, (pattern, ref_name) in PHOTO_PATTERNS.items():
        for photo in sorted((root / folder).glob(pattern)):
            ref = photo.parent / ref_name(photo)
            if ref.is_file():
                found.append(PhotoPair(folder, photo.name, str(photo), str(ref)))
    return found
