"""Reader for the DIML/CVL RGB-D indoor data as published (the indoor sample set).

::

    <root>/{train,test}/{LR,HR}/<NN. Scene>/color/<stem>_c.png
    <root>/{train,test}/{LR,HR}/<NN. Scene>/depth_filled/<stem>_depth_filled.png   uint16 mm

``<root>`` may also be a folder holding ``indoor/`` with that structure.  ``test``
maps to the ``eval`` split; the scene folder is the frame's source.  LR frames are
512×288 (Kinect v2 colour downsampled), HR 1344×756.
"""
from __future__ import annotations

from pathlib import Path

from .frame import Frame

__all__ = ["read_diml_indoor", "is_diml_layout"]

_SPLITS = {"train": "train", "test": "eval"}


def _base(root: Path) -> Path:
    if (root / "indoor").is_dir() and not (root / "train").is_dir() and not (root / "test").is_dir():
        return root / "indoor"
    return root


def is_diml_layout(root: str | Path) -> bool:
    base = _base(Path(root))
    return any(base.glob("t*/*/*/color/*_c.png"))


def read_diml_indoor(root: str | Path, resolution: str = "LR", depth_dir: str = "depth_filled") -> list[Frame]:
    """Frames of the ``resolution`` (``"LR"`` or ``"HR"``) variant, train and test.

    A colour image without its depth file is an error (the layout is broken), not a skip.
    """
    if resolution not in ("LR", "HR"):
        raise ValueError(f"resolution must be 'LR' or 'HR', got {resolution!r}")
    base = _base(Path(root))
    frames = []
    for folder, split in _SPLITS.items():
        for rgb in sorted((base / folder / resolution).glob("*/color/*_c.png")):
            scene = rgb.parent.parent
            stem = rgb.name[: -len("_c.png")]
            depth = scene / depth_dir / f"{stem}_{depth_dir}.png"
            if not depth.is_file():
                raise FileNotFoundError(f"DIML: {rgb} has no depth file {depth}")
            frames.append(Frame(source=scene.name, name=stem, split=split, rgb_path=str(rgb),
                                depth_path=str(depth), depth_scale=0.001))
    if not frames:
        raise FileNotFoundError(f"{root}: no DIML indoor frames under {{train,test}}/{resolution}/*/color/*_c.png")
    return frames
