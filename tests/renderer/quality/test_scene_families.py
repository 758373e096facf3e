"""The scene families of issue 10: their reference is exact, they hold what they claim,
and ``pybokeh.render`` with default settings beats the plain disk scatter on each.

The first part checks the harness (planar layers, per-pixel depth order, depth
delivered as 8-bit JPEG disparity, what each family draws).  The second part scores
the renderer on small scenes of every family (``QUALITY_SIZE``, ``QUALITY_SEEDS``);
``bench/quality_scenes.py`` prints the same comparison on more and larger scenes.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

import scenes as S
from scenes import reference as R

#: Frame (width, height) and seeds of the quality scenes of every family.
QUALITY_SIZE = (128, 96)
QUALITY_SEEDS = (0, 1, 2)
#: Issue 10: pybokeh may trail the plain scatter on no scene by more than this (dB) ...
WITHIN_DB = 0.3
#: ... must beat it on each family's mean by at least this (dB) ...
FAMILY_MARGIN_DB = 0.5
#: ... and, the founders' target, on every scene by at least this (dB).
SCENE_MARGIN_DB = 0.5


# ------------------------------------------------------------ planar layers


def _textured_canvas(rng, ch, cw, lights=True):
    rgba = np.ones((ch, cw, 4))
    rgba[..., :3] = S._texture(rng, ch, cw)
    if lights:
        for _ in range(6):
            y, x = rng.integers(10, ch - 10), rng.integers(10, cw - 10)
            rgba[y, x, :3] += 30.0
    return rgba.astype(np.float32)


def _plane_scene(slope, size=(48, 64), pad=16, depth=2.0, focus=3.0, k=16.0, transparent_border=0):
    """One textured plane with HDR dots, anchored at the frame centre; the lens makes
    the CoC ``k (z_f / z - 1)`` px (f = 50 mm, f/2, sensor solved)."""
    rng = np.random.default_rng(7)
    h, w = size
    rgba = _textured_canvas(rng, h + 2 * pad, w + 2 * pad)
    if transparent_border:
        b = transparent_border
        rgba[:b], rgba[-b:], rgba[:, :b], rgba[:, -b:] = 0, 0, 0, 0
    layer = S.Layer(depth, rgba, "plane", slope=slope, anchor=(w / 2, h / 2))
    sensor = w * 50.0**2 / (2 * 2.0 * (focus * 1000 - 50.0)) / k
    return S.Scene([layer], h, w, pad, focus, 2.0, 50.0, sensor)


@pytest.mark.parametrize("slope", [(0.0, 0.004), (0.003, 0.0), (0.002, -0.003)])
def test_planar_view_paths_agree(slope):
    """The row-wise fast paths (depth varying along y, or along x through the transpose)
    and the general per-pixel path read the same plane identically."""
    scene = _plane_scene(slope)
    views = R._Views(scene)
    layer = scene.layers[0]
    d, _, size = R.aperture_samples(0, 0.0, 1.0 / scene.max_coc)
    for k in (0, len(d) // 3, len(d) - 1):
        fast, q_fast = views.view(0, d[k][0], d[k][1], size[k])
        general, q_general = R._planar_view(views.flat[0], views.planes[0].shape[1:], layer, scene, d[k][0],
                                            d[k][1], size[k])
        np.testing.assert_allclose(fast, general, rtol=1e-5, atol=2e-6)
        np.testing.assert_allclose(np.broadcast_to(q_fast, q_general.shape), q_general, rtol=1e-12)


def test_nearly_fronto_plane_matches_the_shifted_layer():
    """A plane with a negligible slope renders like the fronto-parallel layer (separable,
    exact shift path) at the same depth."""
    flat = _plane_scene((0.0, 0.0))
    tilted = _plane_scene((1e-12, 1e-12))  # takes the general per-pixel path
    assert tilted.layers[0].is_planar_slanted and not flat.layers[0].is_planar_slanted
    np.testing.assert_allclose(S.render_reference_linear(tilted), S.render_reference_linear(flat), rtol=1e-4,
                               atol=1e-5)


def test_tilted_plane_conserves_energy():
    """Unoccluded and inside the frame, a plane's energy is conserved: the map u -> u + d r(u)
    stretches areas by 1 + G.d, which averages to 1 over a symmetric aperture."""
    scene = _plane_scene((0.0008, 0.0015), size=(80, 96), pad=16, transparent_border=34)
    assert scene.max_coc > 5 and scene.pad + scene.max_coc + 2 < 34
    ref = S.render_reference_linear(scene).astype(np.float64).sum(axis=(0, 1))
    pin = S.pinhole_linear(scene).astype(np.float64).sum(axis=(0, 1))
    np.testing.assert_allclose(ref, pin, rtol=2e-4)


def _brute_force(scene, pixels, n=20_000, seed=0):
    """Plain Monte Carlo over a uniform disk aperture, independent of the reference's
    algebra: the point seen by pixel p on a plane solves u = p - d r(u) (fixed-point
    iteration); surfaces are sorted by the depth they show on each ray."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-1, 1, (4 * n, 2))
    d = pts[(pts ** 2).sum(1) <= 1][:n]
    py, px = (a.astype(np.float64) for a in pixels)
    cols, qs, alphas = [], [], []
    for layer in scene.layers:
        ux = np.broadcast_to(px, (len(d), len(px))).copy()
        uy = np.broadcast_to(py, (len(d), len(py))).copy()
        for _ in range(30):
            r = scene.coc_of_inverse_depth(layer.inverse_depth(ux, uy))
            ux, uy = px[None] - d[:, :1] * r, py[None] - d[:, 1:] * r
        canvas = layer.rgba.astype(np.float64)
        x, y = ux + scene.pad, uy + scene.pad
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = (x - x0)[..., None], (y - y0)[..., None]
        inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < canvas.shape[1]) & (y0 + 1 < canvas.shape[0])
        x0, y0 = np.clip(x0, 0, canvas.shape[1] - 2), np.clip(y0, 0, canvas.shape[0] - 2)
        rgba = ((canvas[y0, x0] * (1 - fx) + canvas[y0, x0 + 1] * fx) * (1 - fy)
                + (canvas[y0 + 1, x0] * (1 - fx) + canvas[y0 + 1, x0 + 1] * fx) * fy) * inside[..., None]
        cols.append(rgba[..., :3])
        alphas.append(rgba[..., 3])
        qs.append(layer.inverse_depth(ux, uy))
    order = np.argsort(-np.stack(qs), axis=0, kind="stable")
    color = np.zeros(cols[0].shape)
    trans = np.ones(alphas[0].shape)
    cols, alphas = np.stack(cols), np.stack(alphas)
    for k in range(len(scene.layers)):
        sel = order[k]
        a = np.take_along_axis(alphas, sel[None], 0)[0]
        c = np.take_along_axis(cols, sel[None, ..., None], 0)[0]
        color += trans[..., None] * c
        trans *= 1 - a
    return color.mean(axis=0), color.std(axis=0) / math.sqrt(len(d))


def test_receding_reference_matches_brute_force_monte_carlo():
    """Ground, wall and a standing subject in per-pixel depth order, at pixels near their
    junctions: the reference agrees with independent ray sampling."""
    scene = next(sc for seed in range(20)
                 for sc in [S.family_scene("receding", seed, height=48, width=64, max_coc_range=(6.0, 8.0))]
                 if "wall" in sc.info and not S.layers_in_fixed_order(sc))
    scene = replace(scene, blades=0)
    for layer in scene.layers:  # no lights: low variance
        np.minimum(layer.rgba[..., :3], layer.rgba[..., 3:], out=layer.rgba[..., :3])
    ids = S.surface_map(scene)
    band = S.edge_band(S.depth_map(scene), S.coc_map(scene), ids)
    ys, xs = np.nonzero(band)
    pick = np.random.default_rng(1).choice(len(ys), 40, replace=False)
    brute, stderr = _brute_force(scene, (ys[pick], xs[pick]))
    ref = S.render_reference_linear(scene)[ys[pick], xs[pick]]
    assert np.all(np.abs(ref - brute) <= 5 * stderr + 3e-3), np.abs(ref - brute).max()
    assert np.abs(ref - brute).max() < 0.01


def test_depth_and_surface_maps_follow_the_nearer_plane():
    scene = next(sc for seed in range(20) for sc in [S.family_scene("receding", seed, height=48, width=64)]
                 if "wall" in sc.info)
    ids, depth = S.surface_map(scene), S.depth_map(scene)
    roles = [layer.role for layer in scene.layers]
    g, w = roles.index("ground"), roles.index("wall")
    yy, xx = np.mgrid[0 : scene.height, 0 : scene.width]
    qg = scene.layers[g].inverse_depth(xx, yy)
    qw = scene.layers[w].inverse_depth(xx, yy)
    p = scene.pad
    opaque = (scene.layers[g].rgba[p:-p, p:-p, 3] == 1) & (scene.layers[w].rgba[p:-p, p:-p, 3] == 1)
    both = opaque & ((ids == g) | (ids == w))
    assert both.sum() > 20 and (both & (ids == g)).any() and (both & (ids == w)).any()
    assert np.all(ids[both & (qg > qw)] == g) and np.all(ids[both & (qw > qg)] == w)
    on_ground = ids == g
    np.testing.assert_allclose(depth[on_ground], 1.0 / qg[on_ground], rtol=1e-6)


@pytest.mark.parametrize("family", [f for f in S.FAMILIES if f != "layered"])
def test_family_reference_agrees_with_a_finer_grid(family):
    """Each family's reference is converged: the default aperture grid and a 2x finer,
    offset one agree (``bench/quality_scenes.py --mc`` measures the full-size scenes)."""
    scene = S.family_scene(family, 0, height=36, width=48, max_coc_range=(5.0, 7.0))
    coarse = S.render_reference(scene)
    fine = S.render_reference(scene, cell_px=S.DEFAULT_CELL_PX / 2, offset=(0.21, 0.67))
    band = S.edge_band(S.depth_map(scene), S.coc_map(scene), S.surface_map(scene))
    assert S.psnr(coarse, fine) > 55.0
    assert S.psnr(coarse, fine, band) > 55.0


# ---------------------------------------------------------------- depth8


def test_depth8_delivery_gives_the_renderer_the_thin_lens_coc_of_the_codes():
    import pybokeh

    for seed in range(4):
        scene = S.family_scene("depth8", seed, height=48, width=64)
        true_depth = S.depth_map(scene)
        codes, kwargs, coc_codes = S.deliver_depth(scene, true_depth)
        assert codes.dtype == np.uint8 and kwargs["depth_kind"] == "disparity"
        coc = pybokeh.coc_map(codes, kwargs["focus"], depth_kind="disparity", max_blur=kwargs["max_blur"])
        np.testing.assert_allclose(coc, coc_codes, atol=1e-3)  # the baselines get what the renderer computes
        true = S.coc_map(scene, true_depth)
        step = float(np.abs(np.diff(np.unique(coc_codes))).min())  # one code
        if scene.delivery["jpeg_quality"] is None:  # rounding only: within half a code
            assert np.abs(coc - true).max() <= 0.5 * step + 1e-3
        else:  # JPEG moves some pixels by more (ringing at depth edges)
            assert np.abs(coc - true).max() > 0.5 * step


# ------------------------------------------------------- what the families hold


def _photo_and_linear(scene):
    return S.pinhole_photo(scene), S.pinhole_linear(scene)


def test_families_are_deterministic():
    for name in S.FAMILIES:
        a = S.family_scene(name, 3, height=48, width=64)
        b = S.family_scene(name, 3, height=48, width=64)
        assert np.array_equal(S.pinhole_photo(a), S.pinhole_photo(b)), name
        assert [layer.depth_m for layer in a.layers] == [layer.depth_m for layer in b.layers]


def test_saturated_family_holds_saturated_surfaces_not_lights():
    for seed in range(4):
        scene = S.family_scene("saturated", seed, height=96, width=128)
        photo, lin = _photo_and_linear(scene)
        assert max(float(layer.rgba[..., :3].max()) for layer in scene.layers) < 1.6  # no light source
        clipped = photo.max(axis=2) == 255
        coloured = clipped & (photo.min(axis=2) < 128)
        assert coloured.mean() > 0.01, seed  # one channel at the clip, another far below
        assert (photo == 255).all(axis=2).mean() < 0.01


def test_clipped_family_holds_large_clipped_areas():
    levels = []
    for seed in range(6):
        scene = S.family_scene("clipped", seed, height=96, width=128)
        photo, lin = _photo_and_linear(scene)
        white = (photo >= 254).all(axis=2)
        assert white.mean() > 0.1, seed
        levels.append(scene.info["level"])
    assert min(levels) < 1.3 and max(levels) > 2.0  # just over and well over the clip


def test_lights_family_holds_white_and_coloured_hdr_lights():
    brightest, coloured = [], 0
    for seed in range(4):
        scene = S.family_scene("lights", seed, height=96, width=128)
        photo, lin = _photo_and_linear(scene)
        n_clipped = (photo == 255).sum(axis=2)
        brightest.append(max(float(layer.rgba[..., :3].min(axis=2).max()) for layer in scene.layers))
        # Coloured lights: recorded clipped in one or two channels, true colour far from white.
        hue = lin.max(axis=2) / np.maximum(lin.min(axis=2), 1e-6)
        coloured += int((((n_clipped == 1) | (n_clipped == 2)) & (lin.max(axis=2) > 1.5) & (hue > 3)).sum() > 0)
        assert scene.info["fairy"] >= 3
    assert min(brightest) > 5.0 and max(brightest) > 30.0 and coloured == 4  # white lights far over the clip


def test_strands_family_puts_thin_strands_within_three_pixels_of_focus():
    for seed in range(4):
        scene = S.family_scene("strands", seed, height=96, width=128)
        strands = [i for i, layer in enumerate(scene.layers) if layer.role == "strands"]
        assert strands
        for i in strands:
            r = scene.layer_coc_range(i)[0]
            assert 0.1 < abs(r) <= 3.0
            a = scene.layers[i].rgba[..., 3]
            assert ((a > 0) & (a < 1)).sum() > 0.5 * (a > 0).sum()  # thin: mostly partial coverage


def test_receding_family_planes_cross_the_focus_plane():
    crossing = 0
    for seed in range(4):
        scene = S.family_scene("receding", seed, height=96, width=128)
        ground = [i for i, layer in enumerate(scene.layers) if layer.role == "ground"][0]
        lo, hi = scene.layer_coc_range(ground)
        assert hi - lo > 5.0  # a continuous surface spanning many blur levels
        crossing += lo < 0 < hi
    assert crossing == 4


# ------------------------------------------------------------ the renderer


@pytest.fixture(scope="module")
def family_scores():
    """``{family: {seed: {method: (whole, band)}}}`` with pybokeh's default settings."""
    import pybokeh

    width, height = QUALITY_SIZE
    out = {}
    for name in S.FAMILIES:
        out[name] = {}
        for seed in QUALITY_SEEDS:
            case = S.make_case(S.family_scene(name, seed, height=height, width=width))
            img = pybokeh.render(case.photo, case.depth, **case.render_kwargs)
            out[name][seed] = S.evaluate(case.reference, {"pybokeh": img, **case.baselines}, case.band)
    return out


def _margins(scores):
    return np.array([[s["pybokeh"][i] - s["scatter"][i] for i in (0, 1)] for s in scores.values()])


# family -> reason, where the default renderer still misses a target (128x96, 3 seeds).
_RECEDING = "issue 10: halo and block around a subject standing on receding ground (renderer defect)"
_TRAILS_TODAY: dict[str, str] = {}
_MISSES_TODAY = {**_TRAILS_TODAY, "strands": "issue 10: strands within 0.5 dB of the scatter on one scene",
                 "receding": _RECEDING}


def _params(fails: dict):
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=fails[name])) if name in fails
            else name for name in S.FAMILIES]


@pytest.mark.slow
@pytest.mark.parametrize("family", _params({}))
def test_pybokeh_beats_scatter_on_the_family_mean(family_scores, family):
    margin = _margins(family_scores[family]).mean(axis=0)
    assert np.all(margin >= FAMILY_MARGIN_DB), (family, margin, family_scores[family])


@pytest.mark.slow
@pytest.mark.parametrize("family", _params(_TRAILS_TODAY))
def test_pybokeh_trails_scatter_on_no_scene(family_scores, family):
    worst = _margins(family_scores[family]).min(axis=0)
    assert np.all(worst >= -WITHIN_DB), (family, worst, family_scores[family])


@pytest.mark.slow
@pytest.mark.parametrize("family", _params(_MISSES_TODAY))
def test_pybokeh_beats_scatter_on_every_scene(family_scores, family):
    worst = _margins(family_scores[family]).min(axis=0)
    assert np.all(worst >= SCENE_MARGIN_DB), (family, worst, family_scores[family])
