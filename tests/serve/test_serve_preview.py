"""The web app's preview pipeline: a downscaled proxy whose blur matches the full-resolution render."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import pybokeh
from pybokeh.lens import resample
from pybokeh.serve.preview import PROXY_MAX_PIXELS, Pace, Scene, Settings, normalised_disparity, proxy_size

from _serve_scene import BACKGROUND_XY, SUBJECT, SUBJECT_XY, gradient_energy, scene


def _smooth_scene(h: int = 600, w: int = 900):
    """A photo with detail coarser than the proxy's pixels (so downscaling loses nothing) and a depth ramp with a
    near box: what the preview can reproduce exactly."""
    yy, xx = np.mgrid[0:h, 0:w]
    photo = np.stack([128 + 90 * np.sin(xx / 23.0) * np.cos(yy / 31.0),
                      128 + 90 * np.sin(yy / 17.0 + 1.0),
                      128 + 90 * np.cos((xx + yy) / 29.0)], axis=2)
    disparity = (0.2 + 0.4 * yy / h).astype(np.float32)
    disparity[150:420, 300:600] = 0.9
    return np.round(photo).astype(np.uint8), disparity


def test_proxy_size_keeps_aspect_and_budget():
    assert proxy_size((3024, 4032)) == (866, 1154)
    h, w = proxy_size((3024, 4032))
    assert h * w <= PROXY_MAX_PIXELS and abs(w / h - 4032 / 3024) < 0.01
    assert proxy_size((400, 640)) == (400, 640)  # small photos are their own proxy
    assert proxy_size((10, 100_000), 1000) == (1, 1000)  # a side never shrinks below 1 px; the budget holds


@pytest.mark.parametrize("f_number, level", [(1.0, 0), (1.8, 0), (4.0, 0), (1.8, 1), (1.8, 2)])
def test_proxy_coc_is_the_full_coc_scaled(f_number, level):
    # The whole point of the proxy settings: every CoC on the proxy is the full-size CoC at that place times the
    # size ratio, although render() normalises the proxy's (narrower) disparity range again.
    photo, disparity = _smooth_scene()
    disparity[0, 0], disparity[-1, -1] = 0.0, 1.0  # lone extreme pixels that the proxy averages away
    full = normalised_disparity(disparity, photo.shape[:2])
    s = Scene(photo, full, proxy_pixels=120_000)
    s.set_level(level)
    assert s.proxy_shape[0] * s.proxy_shape[1] <= 120_000 / 2 ** level
    d = s.proxy_disparity
    assert d.max() - d.min() < 0.99  # the proxy's range really is narrower: the mapping is exercised
    scale = math.hypot(*s.proxy_shape) / math.hypot(*s.shape)
    focus, k_full = s.focus_value((450, 300)), s.strength(f_number)

    def both(band: float) -> tuple[np.ndarray, np.ndarray]:
        fp, bp, kp = s.proxy_lens(focus, band, k_full)
        coc_proxy = pybokeh.coc_map(d, fp, max_blur=kp, focus_range=bp)
        # The full-size CoC taken down to the proxy the way the proxy's map was (linear maps commute with it).
        coc_full = pybokeh.coc_map(full, focus, max_blur=k_full, focus_range=band)
        return coc_proxy, s_resize(coc_full) * scale

    def s_resize(values: np.ndarray) -> np.ndarray:  # full size -> level 0 -> this level, as the scene does
        return resample(resample(values, s._shapes[0], "coc"), s.proxy_shape, "coc")

    # No sharp band: the CoC is linear in disparity, so equal everywhere up to the resampler's rounding (PIL's
    # float resize is linear only to about 1e-4; a wrong mapping is off by whole percents).
    got, expected = both(0.0)
    assert np.abs(got - expected).max() < 1e-3 * k_full
    # A sharp band clips the CoC, which does not commute with averaging across the band's edges: compare away
    # from the depth edges (where a proxy pixel's footprint holds both sides).
    got, expected = both(0.1)
    pad = np.pad(d, 2, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(pad, (5, 5))
    smooth = windows.max(axis=(2, 3)) - windows.min(axis=(2, 3)) < 0.05
    smooth[:3], smooth[-3:], smooth[:, :3], smooth[:, -3:] = False, False, False, False  # the lone corner pixels
    assert smooth.mean() > 0.8
    assert np.abs(got - expected)[smooth].max() < 1e-3 * k_full


def test_preview_matches_the_downscaled_full_render():
    photo, disparity = _smooth_scene()
    s = Scene(photo, normalised_disparity(disparity, photo.shape[:2]), proxy_pixels=140_000)
    settings = Settings((450, 280), f_number=1.4, blades=6, rotation_deg=10, focus_range=0.05)
    preview = s.render_preview(settings).astype(np.float64)
    ph, pw = s.proxy_shape
    full_small = np.asarray(Image.fromarray(s.render_full(settings)).resize((pw, ph), Image.LANCZOS), np.float64)
    err = np.abs(preview - full_small).mean()
    # Without the size scaling the proxy's blur discs would cover 1/scale times more of the frame.
    wrong = pybokeh.render(s.proxy, s.proxy_disparity, s.proxy_lens(s.focus_value((450, 280)), 0.05, 1)[0],
                           max_blur=s.strength(1.4) * (s.proxy_disparity.max() - s.proxy_disparity.min()),
                           focus_range=0.05, blades=6, rotation_deg=10).astype(np.float64)
    wrong_err = np.abs(wrong - full_small).mean()
    assert err < 2.0, err
    assert wrong_err > 3 * err, (err, wrong_err)


def test_click_sharpens_the_clicked_plane():
    photo, disparity = scene()
    s = Scene(photo, normalised_disparity(disparity, photo.shape[:2]))
    on_subject = s.render_preview(Settings(SUBJECT_XY))
    on_background = s.render_preview(Settings(BACKGROUND_XY))
    original_subject = gradient_energy(photo, SUBJECT_XY, 40)
    assert gradient_energy(on_subject, SUBJECT_XY, 40) > 0.9 * original_subject
    assert gradient_energy(on_subject, SUBJECT_XY, 40) > 4 * gradient_energy(on_subject, BACKGROUND_XY, 40)
    assert gradient_energy(on_background, BACKGROUND_XY, 40) > 4 * gradient_energy(on_background, SUBJECT_XY, 40)


def test_a_focus_value_overrides_the_pixel():
    photo, disparity = scene()
    s = Scene(photo, normalised_disparity(disparity, photo.shape[:2]))
    chosen = Settings.parse({"x": BACKGROUND_XY[0], "y": BACKGROUND_XY[1], "focus": 1.0}, s.shape)
    assert s.focus_of(chosen) == 1.0
    assert s.focus_of(Settings.parse({"x": BACKGROUND_XY[0], "y": BACKGROUND_XY[1]}, s.shape)) == 0.0
    np.testing.assert_array_equal(s.render_preview(chosen), s.render_preview(Settings(SUBJECT_XY)))


def test_focus_value_is_the_full_resolution_median_under_the_pixel():
    photo, disparity = scene()
    s = Scene(photo, normalised_disparity(disparity, photo.shape[:2]), proxy_pixels=20_000)
    assert s.focus_value(SUBJECT_XY) == pytest.approx(1.0)
    assert s.focus_value(BACKGROUND_XY) == pytest.approx(0.0)
    x0 = SUBJECT[0]
    # On the subject's edge the window is half subject, half background: the median picks one, never a blend.
    assert s.focus_value((x0, 200)) in (pytest.approx(0.0), pytest.approx(1.0))


def test_deep_photos_keep_their_dtype_and_the_proxy_is_float():
    photo, disparity = _smooth_scene(300, 450)
    deep = photo.astype(np.uint16) * 257
    s = Scene(deep, normalised_disparity(disparity, deep.shape[:2]), proxy_pixels=30_000)
    assert s.proxy.dtype == np.float32 and 0.0 <= s.proxy.min() and s.proxy.max() <= 1.0
    out = s.render_full(Settings((200, 150)))
    assert out.dtype == np.uint16 and out.shape == deep.shape
    assert s.render_preview(Settings((200, 150))).dtype == np.float32


def test_normalised_disparity_inverts_depth_and_fills_invalid():
    depth = np.array([[1.0, 2.0], [4.0, np.nan]], np.float32)
    d = normalised_disparity(depth, (2, 2), "depth")
    assert d[0, 0] == pytest.approx(1.0) and d[1, 0] == pytest.approx(0.0)  # nearest 1, farthest 0
    assert np.isfinite(d).all() and 0.0 <= d.min() and d.max() <= 1.0
    assert normalised_disparity(np.full((3, 3), 7, np.uint8), (3, 3)).max() == 0.0  # flat map: no blur
    with pytest.raises(ValueError, match="aspect ratio"):
        normalised_disparity(np.zeros((10, 10)), (10, 30))
    with pytest.raises(ValueError, match="2-D"):
        normalised_disparity(np.zeros((2, 2, 3)), (2, 2))
    with pytest.raises(ValueError, match="kind"):
        normalised_disparity(np.zeros((2, 2)), (2, 2), "metres")


@pytest.mark.parametrize("data, error, match", [
    ({"y": 3}, ValueError, "x is required"),
    ({"x": 700, "y": 3}, ValueError, "x must lie in"),
    ({"x": 1, "y": 3, "blades": 2}, ValueError, "blades must be 0"),
    ({"x": 1, "y": 3, "blades": 5.5}, ValueError, "blades must be 0"),
    ({"x": 1, "y": 3, "f_number": 0}, ValueError, "f_number must lie in"),
    ({"x": 1, "y": 3, "f_number": "2"}, TypeError, "f_number must be a number"),
    ({"x": 1, "y": 3, "highlight_boost": True}, TypeError, "highlight_boost must be a number"),
    ({"x": 1, "y": 3, "focus_range": 1.5}, ValueError, "focus_range must lie in"),
    ({"x": float("nan"), "y": 3}, ValueError, "x"),
    ({"x": 1, "y": 3, "focus": 1.2}, ValueError, "focus must lie in"),
    ([1, 2], TypeError, "JSON object"),
])
def test_settings_reject_bad_values_naming_the_field(data, error, match):
    with pytest.raises(error, match=match):
        Settings.parse(data, (400, 640))


def test_scene_without_depth_says_so():
    photo, _ = scene()
    s = Scene(photo)
    with pytest.raises(ValueError, match="no depth"):
        s.render_preview(Settings(SUBJECT_XY))
    assert s.depth_view().shape == s.proxy_shape


def test_pace_steps_down_when_slow_and_up_when_there_is_room():
    pace = Pace(0.2)
    assert pace.next_level(0, 3, 0.25) == 1 and pace.next_level(1, 3, 0.25) == 2
    assert pace.next_level(2, 3, 0.9) == 2  # the smallest level is the floor
    assert pace.next_level(2, 3, 0.1) == 2  # twice the pixels would take about 0.2 s: stay
    assert pace.next_level(2, 3, 0.05) == 1 and pace.next_level(0, 3, 0.01) == 0
    assert Pace(None).next_level(2, 3, 5.0) == 0
    with pytest.raises(ValueError, match="preview target"):
        Pace(0)


def test_levels_halve_the_pixels_and_keep_the_aspect():
    photo, disparity = _smooth_scene(900, 1350)
    s = Scene(photo, normalised_disparity(disparity, photo.shape[:2]), proxy_pixels=400_000)
    areas = []
    for level in range(s.levels):
        s.set_level(level)
        h, w = s.proxy_shape
        assert s.proxy.shape[:2] == (h, w) == s.proxy_disparity.shape and abs(w / h - 1.5) < 0.01
        areas.append(h * w)
    assert areas[0] <= 400_000 and areas[1] == pytest.approx(areas[0] / 2, rel=0.01)
    assert areas[2] == pytest.approx(areas[0] / 4, rel=0.01)
    s.set_level(7)
    assert s.level == s.levels - 1
    assert s.largest_proxy().shape[0] * s.largest_proxy().shape[1] == areas[0]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("gamma", [None, 1.8])
def test_proxies_keep_the_light_of_detail_finer_than_their_pixels(dtype, gamma):
    """A 1-px black/white checkerboard shrunk to the proxy is half the light, as the full render's
    blur sees it: code 0.5 ** (1 / 1.8) under a gamma-1.8 profile, sRGB's 0.735 without one; not
    the 0.5 of averaged code values (which would dim the preview's small lights)."""
    from _batch_files import gamma_curve, icc_profile

    from pybokeh import icc

    curve = None if gamma is None else icc.transfer_curve(icc_profile(gamma_curve(gamma)))
    top = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    photo = np.repeat((np.indices((600, 800)).sum(0) % 2)[..., None], 3, axis=2) * top
    s = Scene(photo.astype(dtype), proxy_pixels=60_000, curve=curve)
    proxy = s.largest_proxy().astype(np.float64) / (255.0 if dtype == np.uint8 else 1.0)
    expected = 0.5 ** (1 / 1.8) if gamma else float(pybokeh.color.linear_to_srgb(np.float32(0.5)))
    assert s.proxy_shape[0] < 600 and abs(proxy.mean() - expected) < 0.01, proxy.mean()
