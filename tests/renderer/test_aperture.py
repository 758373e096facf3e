"""The aperture shape against literal geometry: vertex positions and span tables."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pybokeh import Aperture
from pybokeh.aperture import LUT_SIZE


def test_rotation_turns_the_polygon_counter_clockwise_on_screen():
    # x right, y down: at +20 degrees the top vertex of a pentagon moves left.
    top = Aperture(5, 20.0).vertices()[0]
    np.testing.assert_allclose(top, [-math.sin(math.radians(20)), -math.cos(math.radians(20))], atol=1e-12)
    np.testing.assert_allclose(Aperture(5, 0.0).vertices()[0], [0.0, -1.0], atol=1e-12)


def test_span_table_of_a_triangle_pointing_left():
    # Rotated by 90 degrees, the vertex-up triangle points left: at mid-height it spans
    # from the vertex at x = -1 to the opposite edge at x = cos(60 deg) = 1/2.
    ap = Aperture(3, 90.0)
    mid = ap.lut[LUT_SIZE // 2]
    np.testing.assert_allclose(mid, [-1.0, 0.5], atol=1e-6)
    assert ap.ext_lo == pytest.approx(-math.sqrt(3) / 2) and ap.ext_hi == pytest.approx(math.sqrt(3) / 2)
    # In front of the focus plane the shape is point-reflected: it points right.
    np.testing.assert_allclose(ap.reflected.lut[LUT_SIZE // 2], [-0.5, 1.0], atol=1e-6)
