"""Procedural RGB-D scenes (pybokeh.nets.synth): exact depth, cues, determinism, pool."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pybokeh.nets.synth import Camera, SynthPool, TextureBank, render, synth_frame
from pybokeh.nets.synth.primitives import AxisPlane, Box, Cylinder, Sphere
from pybokeh.nets.synth.render import Material, PointLight, Scene, Sky, Sun
from pybokeh.nets.synth.scenes import KIND_WEIGHTS, KINDS, _Mats, figure, parse_kind_weights, random_scene


@pytest.fixture(scope="module")
def bank():
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 255, (40, 60, 3), dtype=np.uint8) for _ in range(3)]
    return TextureBank(photos, 8, np.random.default_rng(1), size=16)


def _scene(cam, prims, mats=None, **kw):
    mats = mats or [Material(tex=-1, tint=(0.5, 0.5, 0.5))]
    return Scene(cam, prims, mats, noise=0.0, **kw)


def test_ground_plane_depth_is_exact_for_a_pitched_camera(bank):
    h_cam, pitch, f_hfov = 1.6, math.radians(-12), math.radians(70)
    cam = Camera((0.3, h_cam, -2.0), yaw=0.7, pitch=pitch, roll=0.0, hfov=f_hfov, height=48, width=64)
    _, depth = render(_scene(cam, [AxisPlane(0)], sky=Sky((0.3, 0.4, 0.8), (0.8, 0.8, 0.8))), bank,
                      np.random.default_rng(0))
    f = 0.5 * 64 / math.tan(0.5 * f_hfov)
    y = -(np.arange(48) + 0.5 - 24) / f                     # camera-frame ray height per row (z = 1)
    down = -(y * math.cos(pitch) + math.sin(pitch))          # world downward component of that ray
    expect = np.where(down > 0, h_cam / np.where(down > 0, down, 1), np.inf)
    np.testing.assert_allclose(depth, np.repeat(expect[:, None], 64, 1), rtol=2e-5)
    assert np.isinf(depth[0]).all() and np.isfinite(depth[-1]).all()  # sky at infinity above the horizon


def test_primitive_depths_and_occlusion_are_exact(bank):
    cam = Camera((0.0, 1.0, 0.0), yaw=0.0, pitch=0.0, roll=0.0, hfov=math.radians(60), height=33, width=33)
    sphere = Sphere(0, center=(0.0, 1.0, 5.0), radius=1.0)
    _, depth = render(_scene(cam, [sphere]), bank, np.random.default_rng(0))
    assert depth[16, 16] == pytest.approx(4.0, rel=1e-5)       # centre pixel: distance - radius
    assert np.isinf(depth[0, 0])
    # A box in front hides the sphere where they overlap; depth there is the box's front face.
    box = Box(0, center=(0.0, 1.0, 3.0), half=(0.3, 0.3, 0.5))
    cyl = Cylinder(0, cx=0.0, cz=8.0, radius=0.5, y0=0.0, y1=3.0)
    _, d2 = render(_scene(cam, [cyl, sphere, box]), bank, np.random.default_rng(0))
    assert d2[16, 16] == pytest.approx(2.5, rel=1e-5)
    f = 0.5 * 33 / math.tan(math.radians(30))
    col = 16 + int(0.6 / 4.0 * f) + 1                            # beside the box, still on the sphere
    assert 4.0 < d2[16, col] < 5.0
    # The cylinder behind the sphere shows above it: its front surface at z = 7.5.
    row = 16 - int(1.6 / 7.5 * f)
    assert d2[row, 16] == pytest.approx(7.5, rel=1e-4)


def test_turned_box_and_cylinder_caps(bank):
    cam = Camera((0.0, 3.0, 0.0), yaw=0.0, pitch=-math.pi / 2 + 1e-6, roll=0.0, hfov=math.radians(40),
                 height=21, width=21)
    cyl = Cylinder(0, cx=0.0, cz=0.0, radius=0.5, y0=0.0, y1=1.0)   # seen from straight above: its top cap
    _, d = render(_scene(cam, [AxisPlane(0), cyl]), bank, np.random.default_rng(0))
    assert d[10, 10] == pytest.approx(2.0, rel=1e-4) and d[0, 0] == pytest.approx(3.0, rel=1e-3)
    box = Box(0, center=(0.0, 0.5, 0.0), half=(0.2, 0.5, 0.6), yaw=math.radians(30))
    lo, hi = box.bounds()
    assert hi[0] == pytest.approx(0.2 * math.cos(math.radians(30)) + 0.6 * math.sin(math.radians(30)))
    o = (np.float32(0.0), np.float32(5.0), np.float32(0.0))
    t = box.intersect(o, (np.zeros(1, np.float32), -np.ones(1, np.float32), np.zeros(1, np.float32)))
    assert t[0] == pytest.approx(4.0)
    nx, ny, nz, _, _ = box.surface(np.float32([0.0]), np.float32([1.0]), np.float32([0.0]))
    assert (nx[0], ny[0], nz[0]) == (0.0, 1.0, 0.0)
    # A side face's normal turns with the box.
    p = np.float32([0.2 * math.cos(math.radians(30))]), np.float32([0.5]), np.float32([-0.2 * math.sin(math.radians(30))])
    nx, ny, nz, _, _ = box.surface(*p)
    assert nx[0] == pytest.approx(math.cos(math.radians(30)), abs=1e-5) and nz[0] == pytest.approx(-math.sin(math.radians(30)), abs=1e-5)


def test_contact_shadow_and_haze_are_depth_cues(bank):
    cam = Camera((0.0, 1.5, 0.0), yaw=0.0, pitch=math.radians(-20), roll=0.0, hfov=math.radians(60), height=64, width=64)
    plain = [Material(tex=-1, tint=(0.6, 0.6, 0.6))]
    ball = Sphere(0, center=(0.0, 0.4, 4.0), radius=0.4)
    lit = dict(ambient_sky=(0.5, 0.5, 0.5), ambient_ground=(0.5, 0.5, 0.5))
    img_free, _ = render(_scene(cam, [AxisPlane(0, casts_shadow=False), ball], plain, **lit), bank, np.random.default_rng(0))
    img_contact, d = render(_scene(cam, [AxisPlane(0, casts_shadow=False), ball], plain, footprints=[(0.0, 4.0, 0.3)], **lit),
                            bank, np.random.default_rng(0))
    col, row, _ = cam.project(np.array([[0.5, 0.0, 4.0], [1.6, 0.0, 4.0]]))
    near, far = (int(row[0]), int(col[0])), (int(row[1]), int(col[1]))
    # Darker right beside the contact, relative to open ground (auto exposure moves both alike).
    assert img_contact[near].mean() / img_contact[far].mean() < img_free[near].mean() / img_free[far].mean() - 0.08
    # Sun shadow: with the sun low on the left, the ground right of the ball is darker than left of it.
    sun = Sun((-math.cos(math.radians(40)), math.sin(math.radians(40)), 0.0), (2.0, 2.0, 2.0))
    img_sun, _ = render(_scene(cam, [AxisPlane(0, casts_shadow=False), ball], plain, sun=sun), bank, np.random.default_rng(0))
    c, r, _ = cam.project(np.array([[0.7, 0.0, 4.0], [-0.7, 0.0, 4.0]]))
    assert img_sun[int(r[0]), int(c[0])].mean() < img_sun[int(r[1]), int(c[1])].mean() - 20
    # Haze: with a black ground, colour grows towards the haze colour with distance.
    black = [Material(tex=-1, tint=(0.0, 0.0, 0.0))]
    img_h, dh = render(_scene(cam, [AxisPlane(0)], black, haze=(0.05, (0.8, 0.8, 0.8)), sky=Sky((0.8,) * 3, (0.8,) * 3)),
                       bank, np.random.default_rng(0))
    ground = np.isfinite(dh[:, 32])
    v = img_h[:, 32].mean(1)[ground]
    assert np.all(np.diff(v.astype(int)) <= 1) and v[0] > v[-1] + 50  # top rows (far) brighter than bottom (near)


def test_point_light_falls_off_and_casts_shadows(bank):
    cam = Camera((0.0, 1.5, 0.0), yaw=0.0, pitch=math.radians(-35), roll=0.0, hfov=math.radians(60), height=48, width=48)
    plain = [Material(tex=-1, tint=(0.7, 0.7, 0.7))]
    box = Box(0, center=(0.0, 0.25, 3.0), half=(0.25, 0.25, 0.25))
    light = PointLight((0.0, 2.0, 4.5), (3.0, 3.0, 3.0), reach=2.0)   # behind the box: shadow towards us
    img, _ = render(_scene(cam, [AxisPlane(0, casts_shadow=False), box], plain, lights=[light],
                           ambient_sky=(0.05,) * 3, ambient_ground=(0.05,) * 3), bank, np.random.default_rng(0))
    c, r, _ = cam.project(np.array([[0.0, 0.0, 2.5], [0.9, 0.0, 2.5], [0.9, 0.0, 4.5]]))
    behind, beside, under_light = (img[int(r[k]), int(c[k])].mean() for k in range(3))
    assert behind < beside - 15 and beside < under_light


def test_figures_have_human_proportions(bank):
    rng = np.random.default_rng(3)
    mats = _Mats(rng, bank)
    prims = figure(2.0, 5.0, 1.8, 0.4, mats, rng)
    lo = np.min([p.bounds()[0] for p in prims], 0)
    hi = np.max([p.bounds()[1] for p in prims], 0)
    assert lo[1] == 0.0 and hi[1] == pytest.approx(1.8, abs=0.03)          # stands on the ground, 1.8 m tall
    width = max(hi[0] - lo[0], hi[2] - lo[2])
    assert 0.3 < width < 0.75                                                # shoulders, not a blob
    head = [p for p in prims if isinstance(p, Sphere)][0]
    assert 1.8 / 8.5 < 2 * head.radius < 1.8 / 6.5                          # ~1/7.5 of the height
    legs = [p for p in prims if isinstance(p, Cylinder) and p.y0 == 0.0]
    assert len(legs) == 2 and all(0.42 < p.y1 / 1.8 < 0.52 for p in legs)


def test_texture_bank_only_holds_the_photos_colours():
    photos = [np.full((30, 40, 3), (200, 40, 10), np.uint8), np.full((50, 20, 3), (10, 90, 250), np.uint8)]
    bank = TextureBank(photos, 12, np.random.default_rng(0), size=8)
    lin = np.array([[200, 40, 10], [10, 90, 250]], np.float32) / 255.0
    lin = lin ** 2.2
    for tex in bank.levels[0]:
        assert any(np.allclose(tex, c, atol=1e-5) for c in lin)
    assert len(bank.levels) == 4 and bank.levels[-1].shape[1:3] == (1, 1)
    np.testing.assert_allclose(bank.levels[-1][:, 0, 0], bank.levels[0].mean(axis=(1, 2)), rtol=1e-5)
    with pytest.raises(ValueError, match="photo"):
        TextureBank([np.zeros((4, 4, 3), np.uint8)], 2, np.random.default_rng(0))


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_valid_deterministic_frames(bank, kind):
    a = synth_frame(np.random.default_rng([11, 3]), bank, shape=(40, 56), kind=kind)
    b = synth_frame(np.random.default_rng([11, 3]), bank, shape=(40, 56), kind=kind)
    c = synth_frame(np.random.default_rng([11, 4]), bank, shape=(40, 56), kind=kind)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    rgb, depth, k = a
    assert k == kind and rgb.shape == (40, 56, 3) and rgb.dtype == np.uint8 and depth.dtype == np.float32
    assert np.all(depth > 0) and not np.isnan(depth).any()
    if kind in ("room", "tabletop"):  # closed: every ray hits a surface
        assert np.isfinite(depth).all() and depth.max() < 15
    assert rgb.std() > 3  # not a blank image


def test_pool_is_a_pure_function_of_its_settings_and_caches(tmp_path, bank):
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 255, (40, 60, 3), dtype=np.uint8) for _ in range(3)]
    pool = SynthPool.build(5, seed=2, short_side=24, texture_photos=photos, cache_dir=tmp_path)
    files = list(tmp_path.glob("synth_*.npz"))
    assert len(files) == 1 and len(pool) == 5 and min(pool.rgb[0].shape[:2]) == 24
    again = SynthPool.build(5, seed=2, short_side=24, texture_photos=photos, cache_dir=tmp_path)
    for x, y in zip(pool.rgb + pool.depth, again.rgb + again.depth):
        np.testing.assert_array_equal(x, y)
    assert all(d.dtype == np.float16 and (d > 0).all() for d in pool.depth)
    assert pool.sources == [f"synthetic/{k}" for k in pool.kinds] and pool.sparse == [False] * 5
    other = SynthPool.build(5, seed=2, short_side=24, texture_photos=photos[:2], cache_dir=tmp_path)
    assert len(list(tmp_path.glob("synth_*.npz"))) == 2  # other texture photos: another pool, another file
    assert any(not np.array_equal(x, y) for x, y in zip(pool.rgb, other.rgb))


def test_kind_weights_choose_the_pool_mix_and_its_cache_file(tmp_path):
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 255, (40, 60, 3), dtype=np.uint8) for _ in range(3)]
    table = parse_kind_weights("tabletop=1")
    assert table == (0.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    assert parse_kind_weights("room=3, tabletop=1")[2:] == (0.75, 0.25, 0.0, 0.0)
    pool = SynthPool.build(6, seed=2, short_side=24, texture_photos=photos, cache_dir=tmp_path, kind_weights=table)
    assert pool.kinds == ["tabletop"] * 6
    default = SynthPool.build(6, seed=2, short_side=24, texture_photos=photos, cache_dir=tmp_path)
    assert len(set(default.kinds)) > 1 and len(list(tmp_path.glob("synth_*.npz"))) == 2
    # The default mix spelled out is the default pool (same cache file, same frames).
    same = SynthPool.build(6, seed=2, short_side=24, texture_photos=photos, cache_dir=tmp_path,
                           kind_weights=KIND_WEIGHTS)
    assert same.kinds == default.kinds and len(list(tmp_path.glob("synth_*.npz"))) == 2
    # closeup and desk were added later with weight 0: the default pools did not change.
    assert "closeup" not in default.kinds and "desk" not in default.kinds


def test_closeups_put_one_subject_near_a_narrow_lens(bank):
    near = 0
    for seed in range(10):
        scene = random_scene(np.random.default_rng([5, seed]), bank, 60, 80, "closeup")
        assert scene.kind == "closeup" and 25 <= math.degrees(scene.camera.hfov) <= 55  # a 2x lens, a telephoto
        rgb, depth, kind = synth_frame(np.random.default_rng([5, seed]), bank, shape=(60, 80), kind="closeup")
        # The subject (0.4-3 m away, plus its size) fills part of the centre.
        near += bool(np.percentile(depth[15:45, 25:55], 10) < 3.6)
    assert near >= 8, near


def test_desks_show_the_floor_farther_below_the_table_edge(bank):
    """The cue "lower is nearer" gets wrong: past a table's near edge the floor, lower in the
    frame, is farther than the top just above it."""
    steps = 0
    for seed in range(10):
        scene = random_scene(np.random.default_rng([6, seed]), bank, 60, 80, "desk")
        assert scene.kind == "desk" and -65 <= math.degrees(scene.camera.pitch) <= -25  # looking down at it
        _, depth, _ = synth_frame(np.random.default_rng([6, seed]), bank, shape=(60, 80), kind="desk")
        assert np.all(np.isfinite(depth)) and np.percentile(depth, 10) < 2.0  # indoors, the top close
        # An edge across a third of the width, not an object's underside (table-tops: 1 frame of 10).
        steps += bool(np.mean((depth[1:] > 1.3 * depth[:-1]).any(axis=0)) > 1 / 3)
    assert steps >= 7, steps


@pytest.mark.parametrize("spec", ["tabletop", "lake=1", "room=-1", "room=nan", "room=x", "room=0",
                                  "room=1,room=2"])
def test_kind_weights_reject_bad_specs(spec):
    with pytest.raises(ValueError, match="synth_kinds"):
        parse_kind_weights(spec)
