"""RGB-D data set readers: pybokeh's rgbd layout, DIML indoor, NYU Depth v2.

Each reader returns a list of :class:`Frame` (split ``train`` or ``eval``);
:func:`open_frames` picks the reader from the directory's layout.
"""
from __future__ import annotations

from pathlib import Path

from .diml import is_diml_layout, read_diml_indoor
from .frame import Frame
from .nyu import is_nyu_layout, read_nyu_depth_v2
from .rgbd import is_rgbd_layout, read_rgbd

__all__ = ["Frame", "open_frames", "read_rgbd", "read_diml_indoor", "read_nyu_depth_v2", "LAYOUTS"]

LAYOUTS = ("auto", "rgbd", "diml", "nyu")


def open_frames(root: str | Path, layout: str = "auto") -> list[Frame]:
    """Frames of the data set at ``root``.

    Parameters
    ----------
    root : path
        Data set directory.
    layout : {"auto", "rgbd", "diml", "nyu"}
        ``auto`` detects: ``splits.json`` → rgbd, ``nyu_depth_v2_labeled.mat`` → nyu,
        ``{train,test}/{LR,HR}/*/color/*_c.png`` → diml (LR).
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if not root.exists():
        raise FileNotFoundError(f"data directory {root} does not exist")
    if layout == "auto":
        if is_rgbd_layout(root):
            layout = "rgbd"
        elif is_nyu_layout(root):
            layout = "nyu"
        elif is_diml_layout(root):
            layout = "diml"
        else:
            raise ValueError(f"{root}: unknown data layout (expected splits.json, nyu_depth_v2_labeled.mat "
                             f"or DIML train/LR/<scene>/color/); pass layout explicitly")
    reader = {"rgbd": read_rgbd, "diml": read_diml_indoor, "nyu": read_nyu_depth_v2}[layout]
    return reader(root)
