"""Reader for NYU Depth v2 as published: ``nyu_depth_v2_labeled.mat`` + ``splits.mat``.

The labeled file is MATLAB v7.3 (HDF5; read with ``h5py``), 1449 frames:
``images`` (MATLAB 480×640×3×N uint8), ``depths`` (480×640×N float32 metres, in-painted)
and ``rawDepths`` (same, 0 = no return); ``scenes`` names each frame's scene.
``splits.mat`` (MATLAB v5; read with ``scipy.io``) holds the standard 1-based
``trainNdxs`` (795) and ``testNdxs`` (654).  Needs ``pip install h5py scipy``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .frame import Frame
from .nyu_labeled import import_h5py, load_labeled_frame

__all__ = ["read_nyu_depth_v2", "is_nyu_layout", "load_labeled_frame", "LABELED_NAME", "SPLITS_NAME"]

LABELED_NAME = "nyu_depth_v2_labeled.mat"
SPLITS_NAME = "splits.mat"


def is_nyu_layout(root: str | Path) -> bool:
    root = Path(root)
    return root.name == LABELED_NAME or (root / LABELED_NAME).is_file()


def _read_splits(path: Path, n: int) -> dict[int, str]:
    try:
        from scipy.io import loadmat
    except ModuleNotFoundError:
        raise ImportError("reading NYU Depth v2's splits.mat needs scipy: pip install scipy") from None
    mat = loadmat(str(path))
    split = {}
    for key, name in (("trainNdxs", "train"), ("testNdxs", "eval")):
        if key not in mat:
            raise ValueError(f"{path} lacks {key}")
        for i in np.asarray(mat[key]).ravel().astype(np.int64):
            if not 1 <= i <= n:
                raise ValueError(f"{path}: {key} index {i} outside 1..{n}")
            split[int(i) - 1] = name
    return split


def _scene_names(f, n: int) -> list[str]:
    """Scene name per frame from the ``scenes`` cell array (HDF5 object references)."""
    if "scenes" not in f:
        return ["nyu_depth_v2"] * n
    refs = np.asarray(f["scenes"]).ravel()
    names = []
    for ref in refs[:n]:
        chars = np.asarray(f[ref]).ravel()
        names.append("".join(chr(int(c)) for c in chars))
    return names


def read_nyu_depth_v2(root: str | Path, depth_key: str = "depths") -> list[Frame]:
    """Frames of the labeled set with the standard split.

    Parameters
    ----------
    root : path
        Folder holding ``nyu_depth_v2_labeled.mat`` and ``splits.mat`` (or the
        ``.mat`` itself, with ``splits.mat`` beside it).
    depth_key : {"depths", "rawDepths"}
        In-painted depth (the usual ground truth) or the raw sensor depth with holes.
    """
    if depth_key not in ("depths", "rawDepths"):
        raise ValueError(f"depth_key must be 'depths' or 'rawDepths', got {depth_key!r}")
    h5py = import_h5py()
    root = Path(root)
    labeled = root if root.name == LABELED_NAME else root / LABELED_NAME
    splits = labeled.parent / SPLITS_NAME
    if not labeled.is_file():
        raise FileNotFoundError(f"{labeled} not found")
    if not splits.is_file():
        raise FileNotFoundError(f"{splits} not found: the standard NYU Depth v2 split comes with the data set")
    with h5py.File(labeled, "r") as f:
        for key in ("images", depth_key):
            if key not in f:
                raise ValueError(f"{labeled} lacks the {key!r} array")
        n = f["images"].shape[0]
        if f[depth_key].shape[0] != n:
            raise ValueError(f"{labeled}: {n} images but {f[depth_key].shape[0]} depth maps")
        scenes = _scene_names(f, n)
    split = _read_splits(splits, n)
    return [Frame(source=scenes[i], name=f"{i + 1:04d}", split=split[i], mat_path=str(labeled),
                  mat_index=i, mat_depth_key=depth_key)
            for i in range(n) if i in split]
