"""Highlight boost: clipped lights in the dark get their energy back, clipped clouds hardly any."""
from __future__ import annotations

import numpy as np
import pytest

import pybokeh
from pybokeh.color import srgb_to_linear
from pybokeh.highlights import clipped_mask, highlight_gain_map


def test_no_clipping_no_boost():
    image = np.full((20, 30, 3), 254, np.uint8)
    assert highlight_gain_map(image, 16.0) is None
    assert highlight_gain_map(np.full((20, 30, 3), 255, np.uint8), 0.0) is None


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)])
def test_gain_follows_the_surroundings(dtype, top):
    image = np.zeros((60, 120, 3), dtype)
    image[:, 60:] = np.asarray(0.9 * top, dtype)      # bright right half (a cloud)
    image[30, 20] = top                                # a light in the dark
    image[30, 90, 0] = top                             # a clipped speck in the cloud (one channel)
    gain = highlight_gain_map(image, 16.0)
    assert gain.dtype == np.float32 and gain.shape == (60, 120)
    assert gain[30, 20] == pytest.approx(16.0, rel=1e-3)      # black surroundings: full boost
    assert gain[30, 90] < 1.0                                  # bright surroundings: almost none
    assert np.count_nonzero(gain) == 2                         # only clipped pixels
    np.testing.assert_array_equal(clipped_mask(image), gain > 0)


def test_boosted_light_becomes_a_bright_disc():
    image = np.full((81, 81, 3), 20, np.uint8)
    image[39:42, 39:42] = 255                          # a small clipped light
    depth = np.zeros((81, 81), np.float32)
    plain = pybokeh.render(image, depth, 1.0, max_blur=10, highlight_boost=0.0)
    boosted = pybokeh.render(image, depth, 1.0, max_blur=10)
    energy = lambda im: srgb_to_linear(im / np.float32(255)).sum()
    # Boost gives back energy (about 1 + gain times the light's) ...
    assert energy(boosted) - energy(image) > 10 * (energy(plain) - energy(image) + 1.0)
    # ... spread as a flat disc of the CoC radius (10 px), not a point.
    lum = srgb_to_linear(boosted / np.float32(255))[..., 1]
    assert lum[40, 40 + 7] > 0.5 * lum[40, 40] and lum[40, 40 + 13] < 0.05 * lum[40, 40] + 0.01


@pytest.mark.parametrize("shape", [(501, 701), (1333, 2000), (9, 2000)])
def test_sizes_not_divisible_by_the_sampling_step(shape):
    # The surroundings are sampled every few pixels; the last, partial block
    # of an odd-sized image must still have a sample.
    image = np.zeros((*shape, 3), np.uint8)
    image[-1, -1] = image[0, 0] = 255
    gain = highlight_gain_map(image, 16.0)
    assert gain[-1, -1] == pytest.approx(16.0, rel=1e-3) and gain[0, 0] == pytest.approx(16.0, rel=1e-3)
