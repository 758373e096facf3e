"""Physically exact thin-lens scenes, two baseline renderers and quality metrics.

This package is the measuring instrument for ``pybokeh.render``.  It holds no tests;
``test_reference_scenes.py`` and ``test_scene_families.py`` beside it (in
``tests/renderer/quality/``) and ``bench/quality_scenes.py`` (which puts that folder on
``sys.path``) import it as ``import scenes as S``.

Modules
-------
``model``       thin-lens CoC, planar RGBA layers (fronto-parallel or slanted), scene, aperture shape
``reference``   the exact aperture-averaged reference, the pinhole photo, depth and surface maps
``color``       sRGB <-> linear (the photo and every output are 8-bit sRGB)
``baselines``   Gaussian blur stack and plain energy-conserving disk scatter
``metrics``     PSNR, depth-edge band
``cases``       what the renderer is given (photo, delivered depth), reference, baselines; a disk cache
``shapes``      procedural textures and antialiased shapes
``layered``     the original random layered family (``random_scene``)
``families``    the scene families of issue 10 and the ``FAMILIES`` registry

Conventions: radiance is linear light, HDR (a light may be 60x the clip level); the
photo is the pinhole image clipped to [0, 1], sRGB-encoded and rounded to 8 bits as
a camera records it; the reference is the thin-lens image of the *true* radiance
averaged over the aperture, recorded the same way.
"""
from __future__ import annotations

from .baselines import disk_scatter, gaussian_stack
from .cases import Case, cached_case, default_cache_dir, deliver_depth, make_case
from .color import linear_to_srgb8, srgb8_to_linear
from .families import FAMILIES, Family, family_scene
from .layered import random_scene, single_layer_scene
from .metrics import edge_band, evaluate, psnr
from .model import Layer, Scene, aperture_polygon, coc_radius_px
from .reference import (DEFAULT_CELL_PX, aperture_samples, coc_map, depth_map, layers_in_fixed_order,
                        pinhole_linear, pinhole_photo, render_reference, render_reference_linear, surface_map)
from .shapes import _smooth_noise, _texture

__all__ = [
    "Layer",
    "Scene",
    "coc_radius_px",
    "aperture_polygon",
    "aperture_samples",
    "random_scene",
    "single_layer_scene",
    "render_reference_linear",
    "render_reference",
    "pinhole_linear",
    "pinhole_photo",
    "depth_map",
    "surface_map",
    "coc_map",
    "layers_in_fixed_order",
    "srgb8_to_linear",
    "linear_to_srgb8",
    "gaussian_stack",
    "disk_scatter",
    "psnr",
    "edge_band",
    "evaluate",
    "Case",
    "make_case",
    "cached_case",
    "default_cache_dir",
    "deliver_depth",
    "DEFAULT_CELL_PX",
    "FAMILIES",
    "Family",
    "family_scene",
]
