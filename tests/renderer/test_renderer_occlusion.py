"""Occlusion: what separates a lens renderer from a blur filter.

1. an in-focus subject stays sharp, with no halo: background colour never bleeds into it;
2. a blurred foreground spreads semi-transparently over the sharp background
   behind it (partial occlusion) instead of being cut at its silhouette;
3. the background next to a sharp subject is blurred from background colours
   only: the subject's colour does not leak out into it.
"""
from __future__ import annotations

import numpy as np
import pytest

import pybokeh
from pybokeh.color import srgb_to_linear

BACKENDS = ["cpp", "numba"]


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return np.hypot(yy - centre[0], xx - centre[1]) <= radius


def _stripes(shape, a, b, period=4):
    img = np.empty((*shape, 3), np.uint8)
    img[...] = a
    img[:, (np.arange(shape[1]) // period) % 2 == 1] = b
    return img


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("blades", [0, 6])
def test_sharp_subject_has_no_halo(backend, blades):
    shape = (96, 128)
    image = _stripes(shape, (220, 30, 30), (30, 220, 30))       # busy red/green background
    subject = _disk(shape, (48, 64), 22)
    image[subject] = (40, 60, 200)                             # blue subject
    disparity = np.where(subject, 0.9, 0.1).astype(np.float32)
    out = pybokeh.render(image, disparity, 1.0, max_blur=30, blades=blades, backend=backend)  # 1 = the nearest
    np.testing.assert_array_equal(out[subject], image[subject])
    # ... while the background around it really is blurred (stripes gone).
    ring = _disk(shape, (48, 64), 40) & ~_disk(shape, (48, 64), 30)
    assert out[ring].astype(float).std(axis=0).max() < 0.3 * image[ring].astype(float).std(axis=0).max()


@pytest.mark.parametrize("backend", BACKENDS)
def test_background_next_to_subject_keeps_its_own_colour(backend):
    shape = (96, 128)
    image = np.zeros((*shape, 3), np.uint8)
    image[...] = (30, 200, 30)                                 # green background
    subject = _disk(shape, (48, 64), 20)
    image[subject] = (250, 250, 250)                           # white subject, in focus
    disparity = np.where(subject, 1.0, 0.0).astype(np.float32)
    out = pybokeh.render(image, disparity, 1.0, max_blur=25, backend=backend, highlight_boost=0.0)
    # Just outside the subject the background is still pure background: no
    # white glow (a plain blur would mix them there).
    ring = _disk(shape, (48, 64), 24) & ~_disk(shape, (48, 64), 21)
    assert np.abs(out[ring].astype(int) - (30, 200, 30)).max() <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_blurred_foreground_spreads_over_sharp_background(backend):
    shape = (96, 128)
    rng = np.random.default_rng(0)
    image = (rng.random((*shape, 3)) * 120).astype(np.uint8)   # dark textured background
    radius = 12.0
    fg = _disk(shape, (48, 64), 18)
    image[fg] = (255, 230, 200)                                # bright foreground object
    disparity = np.where(fg, 1.0, 0.0).astype(np.float32)
    out = pybokeh.render(image, disparity, 0.0, max_blur=radius, backend=backend, highlight_boost=0.0)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    dist = np.hypot(yy - 48, xx - 64) - 18                      # distance outside the silhouette
    lum_in, lum_out = srgb_to_linear(image).mean(axis=2), srgb_to_linear(out).mean(axis=2)
    # Outside the silhouette, within the blur radius: brightened by the foreground ...
    near = (dist > 1) & (dist < radius - 3)
    assert (lum_out[near] > lum_in[near] + 0.05).mean() > 0.95
    # ... the more, the closer to the silhouette (semi-transparent falloff) ...
    bands = [lum_out[(dist > d) & (dist <= d + 2)].mean() - lum_in[(dist > d) & (dist <= d + 2)].mean()
             for d in (1, 4, 7)]
    assert bands[0] > bands[1] > bands[2] > 0
    # ... and beyond the blur radius the sharp background is untouched.
    far = dist > radius + 2
    np.testing.assert_array_equal(out[far], image[far])
