"""What every reader of image files shares: the error it raises and the EXIF orientations.

A module of its own so that :mod:`pybokeh.io` (photos, depth maps, outputs) and
:mod:`pybokeh.phone` (the depth phones embed, which reads the photo through io)
both import it without importing each other.  Both names are also reachable as
``pybokeh.io.ImageFileError`` and through io's readers.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ImageFileError", "ORIENTATIONS"]


class ImageFileError(ValueError):
    """A file could not be read or written as an image."""


#: The EXIF orientations (tag 274) as operations on an H×W(×C) array, as
#: ``PIL.ImageOps.exif_transpose`` applies them to the photo (1, absent here: as stored).
ORIENTATIONS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
