"""No seams, blocks or islands from the way a depth map is quantised or noisy.

Each scene is built from one mechanism that made real photos fail (issue 10):

1. 8-bit depth: splats of each pixel's own radius do not tile where the radius
   steps by a depth level (coverage ~1 - dr / 2r beside the step), and the
   deficit showed what lies behind (a bright sky through a dark cap brim, as
   lines along every depth contour).  A layer's alpha now comes from splats of
   one radius (``coverage_radius`` in bokeh_math.h).
2. Depth noise at an object's rim: a lone pixel farther than the background
   beside it used to supply the whole fill of the background's uncovered part,
   switched on and off at the cells of the farthest-content pyramid (a
   rectangular block).  The fill now weighs each cell by how much of it is
   farther content and blends continuously (``far_content``).
3. A boosted highlight as fill material: its colour, multiplied for its bokeh
   disc, used to paint sharp-edged white islands wherever it was the farthest
   content nearby.  The fill now takes colours with the boost undone
   (``far_colour``).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from pybokeh import Aperture
from pybokeh.highlights import highlight_gain_map
from pybokeh.renderer.dispatch import get_backend

DEPTH_LEVEL_PX = 0.24   # CoC step of one 8-bit depth level at the default max_blur on a 12 MP photo
BACKENDS = ["cpp", "numba", "cuda_emu"]


def render_with(backend: str, image: np.ndarray, coc: np.ndarray, gain: np.ndarray | None = None) -> np.ndarray:
    aperture = Aperture(0)
    if backend == "cuda_emu":
        from pybokeh import _cuda_emu

        luts, extents = aperture.kernel_tables()
        return _cuda_emu.render(image, coc, aperture.blades, luts, extents, gain).astype(int)
    return get_backend(backend)[1](image, coc, aperture, gain, 2).astype(int)


def quantised(coc: np.ndarray, rng, noise: bool = True) -> np.ndarray:
    """The CoC an 8-bit depth map gives: whole depth levels, +-1 level of noise (JPEG)."""
    levels = np.round(coc / DEPTH_LEVEL_PX)
    if noise:
        levels += rng.integers(-1, 2, coc.shape)
    return (levels * DEPTH_LEVEL_PX).astype(np.float32)


def brim_scene(rng):
    """A dark, slightly textured surface whose CoC ramps from -2 to -5 px down the rows (through three
    layers), under a bright far band (the sky, CoC -30) whose blur reaches over it."""
    h, w = 96, 128
    image = np.empty((h, w, 3), np.uint8)
    image[...] = (35, 35, 45)
    image = np.clip(image.astype(int) + rng.integers(-6, 7, (h, w, 1)), 0, 255).astype(np.uint8)
    image[:24] = (200, 225, 245)
    y = np.arange(h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    coc = (-2.0 - 3.0 * (y - 24) / (h - 24)).astype(np.float32)
    coc[:24] = -30.0
    return image, coc


@pytest.mark.parametrize("backend", BACKENDS + ["numpy"])
def test_quantised_depth_lets_nothing_through_a_surface(backend):
    rng = np.random.default_rng(3)
    image, coc = brim_scene(rng)
    stepped = coc.copy()
    stepped[24:] = quantised(coc[24:], rng)
    smooth, steps = render_with(backend, image, coc), render_with(backend, image, stepped)
    surface = (slice(34, 96), slice(8, 120))     # the dark surface, past the sky's edge
    # The sky used to show through by up to 49 levels along the depth
    # contours; what remains is the blur's own response to +-1 level of depth
    # noise on a textured surface (the float render's neighbours differ by 2).
    assert np.abs(steps - smooth)[surface].max() <= 5
    assert np.abs(np.diff(steps[surface], axis=0)).max() <= 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_quantised_ramp_through_focus_renders_like_the_float_ramp(backend):
    rng = np.random.default_rng(1)
    h, w = 64, 96
    texture = gaussian_filter(rng.random((h, w, 3)), (2, 2, 0))
    image = ((texture - texture.min()) / (texture.max() - texture.min()) * 255).astype(np.uint8)
    x = np.arange(w, dtype=np.float32)[None, :] * np.ones((h, 1), np.float32)
    coc = (-1.0 + 7.0 * x / (w - 1)).astype(np.float32)      # behind, through focus, in front
    diff = np.abs(render_with(backend, image, quantised(coc, rng)) - render_with(backend, image, coc)).max(axis=2)
    # Where the blur is a pixel or two, +-1 level changes the blur itself by
    # up to half a pixel; the flips between a sharp and a blurred layer that
    # made sparkling contours (33 levels) are gone.
    assert diff.max() <= 10
    assert diff[np.abs(coc) >= 2.0].max() <= 5


def rim_noise_scene():
    """A far background (CoC -12) beside a nearer dark object (CoC -3), one rim pixel of the object with a
    depth farther than the background (-20): depth noise at a silhouette."""
    h, w = 160, 96
    image = np.empty((h, w, 3), np.uint8)
    image[...] = (200, 120, 40)
    coc = np.full((h, w), -12.0, np.float32)
    image[:, :32] = (20, 30, 60)
    coc[:, :32] = -3.0
    noisy = coc.copy()
    noisy[40, 31] = -20.0
    return image, coc, noisy


@pytest.mark.parametrize("backend", BACKENDS + ["numpy"])
def test_a_lone_farther_pixel_makes_no_block(backend):
    image, clean, noisy = rim_noise_scene()
    a, b = render_with(backend, image, noisy), render_with(backend, image, clean)
    background = (slice(None), slice(34, None))
    # It used to fill a 64-row block beside the object with its dark colour (34 levels, sharp-edged).
    assert np.abs(a - b)[background].max() <= 3
    assert np.abs(np.diff(a[background], axis=0)).max() <= 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_boosted_highlight_is_no_fill_material(backend):
    h, w = 128, 160
    yy, xx = np.mgrid[:h, :w]
    image = np.full((h, w, 3), 40, np.uint8)
    coc = np.full((h, w), -6.0, np.float32)                  # background, blurred (boosting fully ramped in)
    foreground = np.hypot(yy - 64, xx - 60) < 30
    image[foreground] = (90, 60, 50)
    coc[foreground] = 16.0                                   # a blurred foreground disc
    clipped, unclipped = image.copy(), image.copy()
    clipped[64, 94] = 255                                    # a clipped pixel just outside the foreground:
    unclipped[64, 94] = 250                                  # boosted, or not
    a = render_with(backend, clipped, coc, highlight_gain_map(clipped, 16.0, coc))
    b = render_with(backend, unclipped, coc, highlight_gain_map(unclipped, 16.0, coc))
    assert highlight_gain_map(clipped, 16.0, coc)[64, 94] > 10.0
    # Its own bokeh disc is brighter; nothing else is (it used to paint the
    # uncovered rim of the foreground white: 45 levels).
    beyond_disc = np.hypot(yy - 64, xx - 94) > 8
    assert np.abs(a - b)[beyond_disc].max() <= 2
    assert (a - b)[~beyond_disc].max() > 20
