"""Shared helpers for the tests/nets/test_nets_*.py files: tiny data sets in the published layouts."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import REPO, shared_data_dir

#: ``../shared/data`` beside the checkout, or where it would be (the tests that need it skip).
SHARED_DATA = (shared_data_dir() or REPO.parent / "shared" / "data").resolve()


def synthetic_frame(rng: np.random.Generator, h: int, w: int, holes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A learnable RGB-D pair: a tilted plane with a nearer box; colour follows depth.

    Returns uint8 ``(h, w, 3)`` and uint16 millimetres ``(h, w)`` (0 = hole).
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(-0.5, 0.5, size=2)
    depth = 2.0 + a * (xx / w - 0.5) + 1.0 * (yy / h)          # floor-like gradient, metres
    y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
    y1, x1 = y0 + rng.integers(h // 4, h // 2), x0 + rng.integers(w // 4, w // 2)
    depth[y0:y1, x0:x1] = 0.8 + 0.2 * b                          # a nearer object
    shade = (1.0 / depth - 0.25) / 1.1                               # nearer = brighter
    rgb = np.stack([shade, 0.6 * shade + 0.2 * (xx / w), 1.0 - shade], -1)
    rgb = np.clip(rgb * 255 + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)
    mm = np.rint(depth * 1000).astype(np.uint16)
    if holes:
        mm[rng.random((h, w)) < 0.05] = 0
    return rgb, mm


def make_rgbd_layout(root: Path, n_train: int = 6, n_eval: int = 2, h: int = 48, w: int = 64, seed: int = 0) -> Path:
    """Write an rgbd-layout data set (splits.json + <source>/rgb + <source>/depth)."""
    rng = np.random.default_rng(seed)
    items = []
    for k in range(n_train + n_eval):
        source = "scene_a" if k < n_train - 2 else ("scene_b" if k < n_train else "scene_eval")
        split = "train" if k < n_train else "eval"
        rgb, mm = synthetic_frame(rng, h, w)
        (root / source / "rgb").mkdir(parents=True, exist_ok=True)
        (root / source / "depth").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(root / source / "rgb" / f"{k:04d}.png")
        Image.fromarray(mm).save(root / source / "depth" / f"{k:04d}.png")
        items.append({"source": source, "id": f"{k:04d}", "rgb": f"{source}/rgb/{k:04d}.png",
                      "depth": f"{source}/depth/{k:04d}.png", "split": split})
    (root / "splits.json").write_text(json.dumps({"items": items}))
    return root
