"""A comparison case: what the renderer is given, what it should produce, the baselines.

The renderer sees only what a user would have: the 8-bit sRGB pinhole photo (HDR
radiance clipped like a camera) and a depth map.  By default the depth map is the
exact metric depth of the surface dominating each pixel (float32 metres, rendered
with ``depth_kind="depth"`` and the scene's lens).  A scene whose ``delivery`` is
``{"kind": "disparity8", "jpeg_quality": q}`` hands over what phones and monocular
estimators produce instead: disparity (1/z) normalised over the frame to 0..255,
rounded to 8 bits and, unless ``q`` is None, JPEG-compressed at quality ``q``; it is
rendered with ``depth_kind="disparity"`` and the ``focus`` / ``max_blur`` that make
the renderer's CoC of the *exact* codes equal the thin-lens CoC.  The reference
always uses the true depth; the baselines get the CoC of the delivered map, as the
renderer does; the edge band comes from the true surfaces.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .baselines import disk_scatter, gaussian_stack
from .metrics import edge_band
from .model import Scene
from .reference import DEFAULT_CELL_PX, coc_map, depth_map, pinhole_photo, render_reference, surface_map


@dataclass
class Case:
    """Everything one comparison needs, computed from a scene."""

    scene: Scene
    photo: np.ndarray  # uint8 (H, W, 3): what the renderer sees
    depth: np.ndarray  # (H, W) what the renderer sees: float32 metres, or uint8 disparity codes
    coc: np.ndarray  # float32 (H, W) signed px, the CoC of ``depth`` (what the baselines get)
    band: np.ndarray  # bool (H, W) edge band (true surfaces, true CoC)
    reference: np.ndarray  # uint8 (H, W, 3)
    baselines: dict  # name -> uint8 (H, W, 3)
    render_kwargs: dict = field(default_factory=dict)  # pybokeh.render keywords besides image, depth
    true_depth: np.ndarray | None = None  # float32 (H, W) metres


def deliver_depth(scene: Scene, depth: np.ndarray):
    """``(map, render_kwargs, coc)``: the depth as the renderer receives it (see module doc)."""
    kind = scene.delivery.get("kind", "metric")
    if kind == "metric":
        return depth, scene.render_kwargs(), scene.coc(depth).astype(np.float32)
    if kind != "disparity8":
        raise ValueError(f"unknown depth delivery {kind!r}")
    q = np.where(np.isfinite(depth), 1.0 / depth.astype(np.float64), 0.0)
    q_lo, q_hi = float(q.min()), float(q.max())
    codes = np.clip(np.round(255.0 * (q - q_lo) / (q_hi - q_lo)), 0, 255).astype(np.uint8)
    quality = scene.delivery.get("jpeg_quality")
    if quality is not None:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(codes, mode="L").save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        codes = np.asarray(Image.open(buf).convert("L"), dtype=np.uint8).copy()
    a_coef, _ = scene.coc_affine
    px_per_code = a_coef * (q_hi - q_lo) / 255.0
    focus_code = 255.0 * (1.0 / scene.focus_m - q_lo) / (q_hi - q_lo)
    lo, hi = float(codes.min()), float(codes.max())
    # pybokeh takes the focus as normalised disparity: 0 at the map's farthest code, 1 at its nearest.
    kwargs = dict(focus=(focus_code - lo) / (hi - lo), depth_kind="disparity", max_blur=px_per_code * (hi - lo),
                  blades=scene.blades, rotation_deg=scene.rotation_deg)
    coc = (px_per_code * (codes.astype(np.float64) - focus_code)).astype(np.float32)
    return codes, kwargs, coc


def make_case(scene: Scene, cell_px: float = DEFAULT_CELL_PX, reference: np.ndarray | None = None,
              baselines: dict | None = None) -> Case:
    """Photo, delivered depth, CoC, edge band, reference and both baselines of ``scene``
    (``reference`` / ``baselines`` may be passed in from a cache)."""
    photo = pinhole_photo(scene)
    depth = depth_map(scene)
    delivered, kwargs, coc = deliver_depth(scene, depth)
    surfaces = surface_map(scene) if scene.has_slanted_layers else None
    band = edge_band(depth, coc_map(scene, depth), surfaces)
    if reference is None:
        reference = render_reference(scene, cell_px)
    if baselines is None:
        baselines = {"gaussian": gaussian_stack(photo, coc), "scatter": disk_scatter(photo, coc)}
    return Case(scene=scene, photo=photo, depth=delivered, coc=coc, band=band, reference=reference,
                baselines=baselines, render_kwargs=kwargs, true_depth=depth)


# ------------------------------------------------------------------------ cache


def _source_digest() -> str:
    h = hashlib.sha256()
    for p in sorted(Path(__file__).resolve().parent.glob("*.py")):
        if p.name == "__init__.py":  # re-exports only
            continue
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$PYBOKEH_SUITE_CACHE`` or ``~/.cache/pybokeh/suite``."""
    env = os.environ.get("PYBOKEH_SUITE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pybokeh" / "suite"


def cached_case(scene: Scene, key: dict, cell_px: float = DEFAULT_CELL_PX, cache_dir: Path | None = None) -> Case:
    """``make_case`` with the reference and baselines stored on disk.

    They depend only on the scene, so they are keyed by ``key`` (the generator's
    arguments), ``cell_px`` and a digest of this package's source: editing any
    generator, the reference or a baseline invalidates every entry.
    """
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    text = json.dumps({**key, "cell_px": cell_px, "src": _source_digest()}, sort_keys=True)
    path = cache_dir / (hashlib.sha256(text.encode()).hexdigest()[:24] + ".npz")
    if path.exists():
        try:
            with np.load(path) as z:
                return make_case(scene, cell_px, reference=z["reference"],
                                 baselines={"gaussian": z["gaussian"], "scatter": z["scatter"]})
        except (OSError, ValueError, KeyError):
            pass  # unreadable entry: recompute and overwrite
    case = make_case(scene, cell_px)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, reference=case.reference, **case.baselines)
    os.replace(tmp, path)
    return case
