"""The CUDA algorithm through its CPU emulation, against the ``cpp`` backend.

Without a GPU the CUDA kernels cannot run, but their logic can:
``pybokeh._cuda_emu`` runs the same plan and per-thread steps
(``csrc/gpu_plan.h``, ``csrc/gpu_steps.h``) serially, so these parity tests
check the CUDA algorithm against the ``cpp`` backend on every machine.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybokeh import Aperture, _core, _cuda_emu

from cuda_checks import FINE_LIGHTS, RAMPS, assert_parity, lone_light_scene, max_diff, render_args, rim_width
from gpu_scenes import add_lights, ramp_coc, random_coc, random_image, tolerance


SCENES = [  # (height, width, max radius px, dtype, blades)
    (37, 53, 3.0, np.uint8, 0),
    (64, 80, 12.0, np.uint8, 6),
    (90, 71, 40.0, np.uint8, 0),
    (90, 71, 40.0, np.uint16, 5),
    (90, 71, 40.0, np.float32, 0),
    (61, 97, 70.0, np.uint8, 9),
    (2, 300, 20.0, np.uint8, 0),
    (150, 3, 20.0, np.float32, 3),
]


@pytest.mark.parametrize("height,width,radius,dtype,blades", SCENES)
def test_emulated_cuda_matches_cpp(height, width, radius, dtype, blades):
    rng = np.random.default_rng(height * 1000 + width)
    img = random_image(rng, height, width, dtype)
    coc = random_coc(rng, height, width, radius)
    args = render_args(img, coc, Aperture(blades, float(rng.random() * 90)))
    out = _cuda_emu.render(*args)
    assert_parity(out, _core.render(*args, 1), dtype)
    # The blur did something (the scene is not trivially in focus).
    assert max_diff(out, img) > 10 * tolerance(dtype)


@pytest.mark.parametrize("height,width,lo,hi,dtype,blades", RAMPS)
def test_emulated_cuda_matches_cpp_on_depth_ramps(height, width, lo, hi, dtype, blades):
    rng = np.random.default_rng(height * 7 + width)
    img = random_image(rng, height, width, dtype)
    args = render_args(img, ramp_coc(rng, height, width, lo, hi), Aperture(blades, 11.0))
    assert_parity(_cuda_emu.render(*args), _core.render(*args, 1), dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_emulated_cuda_matches_cpp_with_clipped_lights(dtype):
    rng = np.random.default_rng(31)
    img = add_lights(rng, random_image(rng, 70, 90, dtype), count=8)
    coc = random_coc(rng, 70, 90, 25.0)
    args = render_args(img, coc, Aperture(6))
    gain = args[-1]
    assert gain is not None and gain.max() > 6.0  # lights on random mid-grey texture: about half the boost
    boosted = _cuda_emu.render(*args)
    assert_parity(boosted, _core.render(*args, 1), dtype)
    # The gain map is applied: without it the lights' discs are much dimmer.
    plain = _cuda_emu.render(*args[:-1], None)
    assert_parity(plain, _core.render(*args[:-1], None, 1), dtype)
    assert boosted.astype(np.float64).sum() > plain.astype(np.float64).sum() * 1.02


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    height=st.integers(1, 80),
    width=st.integers(1, 100),
    radius=st.sampled_from([0.7, 2.0, 6.0, 15.0, 40.0, 90.0]),
    kind=st.sampled_from(["photo", "ramp", "noise"]),
    blades=st.sampled_from([0, 3, 4, 5, 6, 8, 11, 16]),
    rotation=st.floats(-180, 180),
    boost=st.sampled_from([0.0, 2.0, 16.0, 100.0]),
    lights=st.booleans(),
    budget=st.sampled_from([0, 4096, 65536]),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
)
def test_emulated_cuda_matches_cpp_on_random_scenes(seed, height, width, radius, kind, blades, rotation, boost,
                                                    lights, budget, dtype):
    rng = np.random.default_rng(seed)
    img = random_image(rng, height, width, dtype)
    if lights:
        add_lights(rng, img, 4)
    if kind == "photo" and height > 1:
        coc = random_coc(rng, height, width, radius)
    elif kind == "ramp":
        coc = ramp_coc(rng, height, width, float(rng.uniform(-radius, radius)), float(rng.uniform(-radius, radius)))
    else:
        coc = rng.uniform(-radius, radius, (height, width)).astype(np.float32)
    args = render_args(img, coc, Aperture(blades, rotation), boost=boost)
    out = _cuda_emu.render(*args, 4096.0, budget)  # budget > 0: layers rendered in several groups
    ref = _core.render(*args, 1)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    # Next to lights boosted 100x, cpp's float difference markers leave residues
    # that a thinly covered pixel's colour (divided by its coverage, down to
    # 0.001) magnifies to 2/255; the GPU's fixed-point markers cancel exactly and
    # match the float64 reference there (seed 0, 52x52, radius 2, noise, 3 blades,
    # lights: emu = reference, cpp off by 2).  The bound is 2/255.
    assert max_diff(out, ref) <= tolerance(dtype) * (2.0 if boost >= 100.0 else 1.0)


def test_emulated_cuda_matches_cpp_with_strong_highlight_gain():
    # The colour fixed-point scale shrinks with the largest boost; values must not overflow.
    rng = np.random.default_rng(7)
    img = random_image(rng, 50, 60, np.uint8)
    img[10:20, 10:20] = 255
    coc = random_coc(rng, 50, 60, 15.0)
    args = render_args(img, coc, Aperture(), boost=500.0)
    assert args[-1].max() > 100.0
    assert_parity(_cuda_emu.render(*args), _core.render(*args, 1), np.uint8)


@pytest.mark.parametrize("height,width,radius,dtype,blades", FINE_LIGHTS)
def test_emulated_cuda_matches_cpp_with_fine_highlights(height, width, radius, dtype, blades):
    # Clipped single-pixel and 3x3 lights in dark surroundings, strongly boosted
    # by the gain map, at radii up to 60 px: coarse layers whose highlights keep
    # full-resolution light splats (crisp highlights), with lights near the
    # frame edges (mirrored splats).
    rng = np.random.default_rng(int(radius) * 13 + height)
    img = random_image(rng, height, width, dtype) // (16 if dtype != np.float32 else 1)
    if dtype == np.float32:
        img *= 1.0 / 16.0
    top = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    for k, (y, x) in enumerate(zip(rng.integers(0, height, 14), rng.integers(0, width, 14))):
        img[y:y + 1 + 2 * (k % 2), x:x + 1 + 2 * (k % 2)] = top
    coc = np.clip(random_coc(rng, height, width, radius), -radius, radius)
    coc = np.where(np.abs(coc) < 0.6 * radius, np.sign(coc + 1e-3) * rng.uniform(0.6, 1.0, coc.shape) * radius, coc)
    args = render_args(img, coc.astype(np.float32), Aperture(blades, 20.0), boost=400.0)
    assert args[-1].max() > 100.0
    out = _cuda_emu.render(*args)
    assert_parity(out, _core.render(*args, 1), dtype)
    # Layer groups (a small buffer budget) do not change the result.
    np.testing.assert_array_equal(_cuda_emu.render(*args, 4096.0, 4096), out)


def test_emulated_cuda_fine_highlight_discs_have_crisp_rims():
    # A lone point light at r = 40 lands in a layer splatted on a grid 8 times
    # coarser; its light keeps a full-resolution splat, so the rim of its disc
    # spans at most ~2 px (the coarse grid alone would blur it over ~2 cells).
    args = lone_light_scene(crowd=4, crowd_gain=400.0, light_gain=400.0)
    out = _cuda_emu.render(*args)
    assert_parity(out, _core.render(*args, 1), np.float32)
    assert rim_width(out) <= 2


def test_emulated_cuda_fine_highlight_budget_raises_the_threshold():
    # The crowd has more highlights than the layer may splat at full
    # resolution (fine_light_capacity: 2 * 130 * 400 / 91.5 ~ 1136): the
    # threshold rises above their brightness.  A lone light as bright as the
    # crowd then goes to the coarse grid (soft rim); one brighter than the crowd
    # (a higher fine_light_bin) still gets its crisp full-resolution splat.
    crowded_same = lone_light_scene(crowd=40, crowd_gain=400.0, light_gain=400.0)  # both bin 8
    crowded_brighter = lone_light_scene(crowd=40, crowd_gain=400.0, light_gain=1000.0)  # bin 9 vs 8
    few = lone_light_scene(crowd=30, crowd_gain=400.0, light_gain=400.0)  # 900 + 1 fit: all fine
    widths = {}
    for name, args in (("same", crowded_same), ("brighter", crowded_brighter), ("few", few)):
        out = _cuda_emu.render(*args)
        assert_parity(out, _core.render(*args, 1), np.float32)
        widths[name] = rim_width(out)
    assert widths["few"] <= 2 and widths["brighter"] <= 2, widths
    assert widths["same"] >= 5, widths  # the cap engaged: the lone light is coarse


@pytest.mark.slow
def test_emulated_cuda_matches_cpp_on_a_large_frame():
    rng = np.random.default_rng(17)
    img = random_image(rng, 600, 900, np.uint8)
    args = render_args(img, random_coc(rng, 600, 900, 64.0), Aperture(6))
    assert_parity(_cuda_emu.render(*args), _core.render(*args, 2), np.uint8)


def test_emulated_cuda_layer_groups_do_not_change_the_result():
    # A tiny buffer budget renders the layers in many groups, carrying the
    # accumulator through memory: the result must be bit-identical.
    rng = np.random.default_rng(3)
    img = random_image(rng, 70, 90, np.float32)
    coc = random_coc(rng, 70, 90, 30.0)
    args = render_args(img, coc, Aperture(7))
    one = _cuda_emu.render(*args, 4096.0, 0)
    many = _cuda_emu.render(*args, 4096.0, 4096)
    np.testing.assert_array_equal(one, many)


def test_emulated_cuda_in_focus_image_is_unchanged():
    rng = np.random.default_rng(5)
    img = random_image(rng, 20, 30, np.uint16)
    coc = (rng.random((20, 30)) - 0.5).astype(np.float32) * 0.9  # |CoC| < 0.5 everywhere
    np.testing.assert_array_equal(_cuda_emu.render(*render_args(img, coc, Aperture())), img)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("clipped", [False, True])
def test_emulated_cuda_constant_image_stays_constant(dtype, clipped):
    # Also with a clipped channel (every pixel clipped, no unclipped surroundings: an all-zero gain map).
    rng = np.random.default_rng(2)
    top = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    colour = rng.random(3) * top
    if clipped:
        colour[1] = top
    img = np.empty((40, 50, 3), dtype)
    img[...] = colour.astype(dtype) if dtype == np.float32 else np.round(colour).astype(dtype)
    for seed, radius in ((2, 25.0), (3, 4.0), (4, 60.0)):
        coc = random_coc(np.random.default_rng(seed), 40, 50, radius)
        out = _cuda_emu.render(*render_args(img, coc, Aperture(5), boost=16.0))
        assert max_diff(out, img) <= (2e-5 if dtype == np.float32 else 1)


@pytest.mark.parametrize("bad,match", [
    ("nan_coc", "coc"), ("huge_coc", "coc"), ("image_range", "image"), ("image_nan", "image"),
    ("gain_inf", "highlight_gain"), ("gain_nan", "highlight_gain"), ("gain_huge", "highlight_gain")])
def test_emulated_cuda_flags_invalid_inputs(bad, match):
    rng = np.random.default_rng(1)
    img = random_image(rng, 10, 12, np.float32)
    coc = random_coc(rng, 10, 12, 5.0)
    gain = np.zeros((10, 12), np.float32)
    if bad == "nan_coc":
        coc[3, 4] = np.nan
    elif bad == "huge_coc":
        coc[3, 4] = 5000.0
    elif bad == "image_range":
        img[1, 1, 1] = 1.5
    elif bad == "image_nan":
        img[1, 1, 1] = np.nan
    else:
        gain[2, 5] = {"gain_inf": np.inf, "gain_nan": np.nan, "gain_huge": 2.0 ** 21}[bad]
    with pytest.raises(ValueError, match=match):
        _cuda_emu.render(*render_args(img, coc, Aperture())[:-1], gain)


@pytest.mark.parametrize("bad", [-3.0, 1000.5, np.inf, np.nan])
def test_emulated_cuda_and_cpp_reject_gains_outside_their_range(bad):
    # Both compiled renderers take gains in [0, MAX_HIGHLIGHT_GAIN] only (issue 15: an inf
    # gain indexed before the fine-light histogram in cpp).
    rng = np.random.default_rng(4)
    img = random_image(rng, 30, 40, np.uint8)
    coc = random_coc(rng, 30, 40, 8.0)
    args = render_args(img, coc, Aperture())[:-1]
    gain = np.zeros((30, 40), np.float32)
    gain[3, 4] = bad
    for module in (_cuda_emu, _core):
        with pytest.raises(ValueError, match="highlight_gain"):
            module.render(*args, gain) if module is _cuda_emu else module.render(*args, gain, 1)


def test_emulated_cuda_rejects_bad_arguments():
    img = np.zeros((4, 4, 3), np.uint8)
    coc = np.zeros((4, 4), np.float32)
    luts, ext = Aperture(5).kernel_tables()
    with pytest.raises(ValueError, match="blades"):
        _cuda_emu.render(img, coc, 2, luts, ext, None)
    with pytest.raises(ValueError, match="aperture_luts"):
        _cuda_emu.render(img, coc, 5, luts[:, :10], ext, None)
    with pytest.raises(ValueError, match="aperture_extents"):
        _cuda_emu.render(img, coc, 5, luts, ext[:1], None)
    with pytest.raises(ValueError, match="aperture_extents must lie"):
        _cuda_emu.render(img, coc, 5, luts, ext * 3, None)
    with pytest.raises(ValueError, match="coc"):
        _cuda_emu.render(img, np.zeros((4, 5), np.float32), 5, luts, ext, None)
    with pytest.raises(ValueError, match="dtype"):
        _cuda_emu.render(img.astype(np.int32), coc, 5, luts, ext, None)
    with pytest.raises(ValueError, match="highlight_gain must be None or an H x W float32 array"):
        _cuda_emu.render(img, coc, 5, luts, ext, np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="highlight_gain must be None or an H x W float32 array"):
        _cuda_emu.render(img, coc, 5, luts, ext, 2.0)
