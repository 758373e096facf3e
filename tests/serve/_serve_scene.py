"""A small scene for the web app's tests: a textured subject in front of a textured far background.

The photo carries its depth the way an Android phone stores it (GDepth in the
extended XMP), so the app's embedded-depth path is what the tests drive.  Both
planes have the same fine texture, so how sharp a region renders is measured by
its local gradient energy alone.
"""
from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

from _phone_files import gdepth_jpeg, png_bytes

WIDTH, HEIGHT = 640, 400
#: The subject: a box in the middle (x0, y0, x1, y1), end exclusive.
SUBJECT = (230, 110, 410, 330)
#: Where a user clicks the subject, and a patch of far background away from it.
SUBJECT_XY = (320, 220)
BACKGROUND_XY = (80, 70)


def scene(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """``(photo, disparity)``: uint8 H×W×3 and uint8 H×W (255 = the subject, 40 = the background)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 216, size=(HEIGHT // 4, WIDTH // 4, 3), dtype=np.uint8)
    photo = np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)  # 4-px blocks: fine detail the blur removes
    x0, y0, x1, y1 = SUBJECT
    photo[y0:y1, x0:x1] = photo[y0:y1, x0:x1] // 2 + np.array([100, 60, 20], np.uint8)  # a warmer subject
    disparity = np.full((HEIGHT, WIDTH), 40, np.uint8)
    disparity[y0:y1, x0:x1] = 255
    return photo, disparity


def photo_with_depth(seed: int = 7) -> bytes:
    """The scene as a JPEG with a GDepth map (RangeInverse, stored 0 = Near, 255 = Far).

    Near 1, Far 10: the subject (stored 0) is at 1, the background (stored 215) at about 4.2.
    """
    photo, disparity = scene(seed)
    return gdepth_jpeg(photo, png_bytes(255 - disparity), near=1.0, far=10.0)


def gradient_energy(image: np.ndarray, xy: tuple[int, int], radius: int) -> float:
    """Mean squared horizontal and vertical differences of the grey image in a square around ``xy``."""
    grey = np.asarray(image, np.float64)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    x, y = xy
    patch = grey[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1]
    return float((np.diff(patch, axis=0) ** 2).mean() + (np.diff(patch, axis=1) ** 2).mean())


def unavailable(reason: str) -> None:
    """Skip, saying why, on a developer's machine; fail in CI (``CI`` set), where everything must run."""
    if os.environ.get("CI"):
        pytest.fail(f"this test must run in CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def need(module: str, reason: str):
    """Import ``module``, or :func:`unavailable` with ``reason``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        unavailable(reason)
