"""Reader for pybokeh's RGB-D layout (``shared/data/rgbd``).

::

    <root>/splits.json          {"items": [{source, id, rgb, depth, split}, ...]}
    <root>/<source>/rgb/NNNN.jpg|png
    <root>/<source>/depth/NNNN.png   uint16 millimetres, 0 = invalid
"""
from __future__ import annotations

import json
from pathlib import Path

from .frame import Frame

__all__ = ["read_rgbd", "is_rgbd_layout"]


def is_rgbd_layout(root: str | Path) -> bool:
    return (Path(root) / "splits.json").is_file()


def read_rgbd(root: str | Path) -> list[Frame]:
    """All frames listed in ``<root>/splits.json`` (split ``train`` or ``eval``)."""
    root = Path(root)
    path = root / "splits.json"
    if not path.is_file():
        raise FileNotFoundError(f"{root} has no splits.json: not an rgbd layout directory")
    items = json.loads(path.read_text())
    items = items["items"] if isinstance(items, dict) else items
    frames = []
    for k, it in enumerate(items):
        try:
            frames.append(Frame(source=str(it["source"]), name=str(it["id"]), split=str(it["split"]),
                                rgb_path=str(root / it["rgb"]), depth_path=str(root / it["depth"]),
                                depth_scale=0.001))
        except KeyError as exc:
            raise ValueError(f"{path}: item {k} lacks key {exc}") from None
    return frames
