"""One frame of NYU Depth v2's labeled ``.mat`` file (MATLAB v7.3, read with ``h5py``).

Separate from :mod:`.nyu` (the data set reader) so that :class:`.frame.Frame`
can load a frame without importing the reader that creates frames.
"""
from __future__ import annotations

import numpy as np

__all__ = ["import_h5py", "load_labeled_frame"]


def import_h5py():
    """The ``h5py`` module, or ImportError saying how to install it."""
    try:
        import h5py
    except ModuleNotFoundError:
        raise ImportError("reading NYU Depth v2 needs h5py: pip install h5py") from None
    return h5py


def load_labeled_frame(path: str, index: int, depth_key: str = "depths") -> tuple[np.ndarray, np.ndarray]:
    """Frame ``index`` (0-based) as ``(H, W, 3)`` uint8 and ``(H, W)`` float32 metres."""
    h5py = import_h5py()
    with h5py.File(path, "r") as f:
        # HDF5 stores MATLAB's column-major arrays with reversed axes: (N, 3, W, H).
        rgb = np.ascontiguousarray(np.asarray(f["images"][index]).transpose(2, 1, 0))
        depth = np.ascontiguousarray(np.asarray(f[depth_key][index], dtype=np.float32).T)
    return rgb.astype(np.uint8), depth
