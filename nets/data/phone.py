"""Photos with the depth their camera embedded (``shared/data/phone``): device depth.

Phones and depth cameras store a depth or disparity map beside the photo (iPhone
Portrait HEIC/JPEG: TrueDepth or dual-camera disparity; Google Lens Blur: multi-view
stereo; Intel R200 XDM: active stereo), read here with :mod:`pybokeh.phone`.  These are
the captures pybokeh is for (portraits, pets, things near the lens), but the maps are the
devices' own measurements or estimates at their own resolution, not ground truth, and
several are relative (unknown scale, an Apple "relative" map possibly an unknown shift
of disparity too, which only the disparity alignment removes).  Read as depth relative
to the nearest valid pixel (1 = nearest), photo and map shrunk to the map's stored
resolution (at most :data:`LONG_SIDE` pixels on the long side).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["PhonePair", "read_phone_pairs", "LONG_SIDE", "SUFFIXES"]

#: Longest side, in pixels, of the photo and map scored (the devices store 472-2048 px maps).
LONG_SIDE = 640
SUFFIXES = (".jpg", ".jpeg", ".heic", ".heif")


@dataclass(frozen=True)
class PhonePair:
    """A photo file with embedded depth (``source`` = its format, ``name`` = file name)."""

    source: str
    name: str
    path: str

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, 3)`` uint8 photo and ``(H, W)`` float32 depth relative to its nearest
        valid pixel (0 = invalid), both at the map's stored resolution or :data:`LONG_SIDE`."""
        from pybokeh.phone import read_photo_with_depth
        from pybokeh.serve.preview import to_uint8

        found = read_photo_with_depth(self.path)
        if found.depth is None:
            raise ValueError(f"{self.path}: no embedded depth")
        photo = to_uint8(found.image)  # 16-bit photos are scored like the 8-bit ones
        values = found.depth.astype(np.float64)
        valid = np.isfinite(values) & (values > 0)
        if found.valid is not None:  # holes the reader filled (for rendering) are not scored
            valid &= found.valid
        # Inverse depth: what the registration resampled in, and what shrinks without bias at edges.
        inverse = np.where(valid, values if found.kind == "disparity" else 1.0 / np.where(valid, values, 1.0), 0.0)
        h, w = values.shape
        stored = max(found.metadata.get("stored_size", (w, h)))
        scale = min(1.0, min(LONG_SIDE, stored) / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        if size != (w, h):
            photo = np.asarray(Image.fromarray(photo).resize(size, Image.BOX))
            weight = np.asarray(Image.fromarray(valid.astype(np.float32)).resize(size, Image.BOX), np.float64)
            total = np.asarray(Image.fromarray(inverse.astype(np.float32)).resize(size, Image.BOX), np.float64)
            # Mean inverse depth over the valid pixels of each box; boxes mostly invalid stay invalid.
            inverse = np.where(weight > 0.5, total / np.maximum(weight, 1e-12), 0.0)
        valid = inverse > 0
        if not valid.any():
            raise ValueError(f"{self.path}: embedded depth has no valid pixel")
        depth = np.where(valid, 1.0 / np.where(valid, inverse, 1.0), 0.0)
        return np.ascontiguousarray(photo), (depth / depth[valid].min()).astype(np.float32)


def read_phone_pairs(root: str | Path) -> list[PhonePair]:
    """Every photo file directly in ``root`` that embeds depth pybokeh can read, sorted by name.

    Files without depth are left out, and so are HEIC files when the ``heif`` extra
    (pillow-heif) is missing.  A file whose depth metadata is malformed raises
    ``ValueError`` (its one-line message names the file).
    """
    import importlib.util

    from pybokeh.imagefile import ImageFileError
    from pybokeh.phone import heif, read_embedded_depth

    can_read_heif = importlib.util.find_spec("pillow_heif") is not None
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"phone photo directory {root} does not exist")
    found = []
    for path in sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file()):
        if heif.is_heif(path) and not can_read_heif:
            continue
        try:
            embedded = read_embedded_depth(path)
        except ImageFileError as exc:
            raise ValueError(str(exc)) from None
        if embedded is not None:
            found.append(PhonePair(embedded.source, path.name, str(path)))
    return found
