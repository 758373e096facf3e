"""Random scene layouts: open ground, streets, rooms, table-tops, close-ups and desks, with people.

Every layout is drawn from a ``numpy.random.Generator``, so a scene is a pure function
of its seed.  Sizes are physical (metres) and drawn around real ones: people 1.5-1.95 m
tall with human proportions, rooms 2.3-3.5 m high, cars 4.5 m long, cups 10 cm.  What a
network can learn from them is the monocular cues of real photos:

* ground contact — objects stand on the ground, with contact shadows: the row where an
  object meets the ground tells its distance;
* occlusion — nearer objects hide farther ones, with exact depth steps at their edges;
* perspective — the ground plane recedes to the horizon; equal objects shrink with
  distance; the camera's height, pitch, roll and field of view vary;
* texture gradient — ground, walls and facades carry photo textures of fixed physical
  size, so texture gets finer (and blurs, through mip-mapping) with distance;
* sky at infinity — the sky and a distant skyline backdrop have infinite depth (zero
  disparity);
* haze — outdoors, colour fades towards the haze colour with distance.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .camera import Camera
from .primitives import AxisPlane, Box, Cylinder, Sphere
from .render import Material, PointLight, Scene, Sky, Sun
from .textures import TextureBank

__all__ = ["KINDS", "KIND_WEIGHTS", "parse_kind_weights", "random_scene", "figure"]

KINDS = ("outdoor", "street", "room", "tabletop", "closeup", "desk")
#: Default share of each of :data:`KINDS` in a pool (``closeup`` and ``desk`` came later: 0 keeps
#: the pools drawn before them frame for frame; ask for them with ``--synth-kinds``).
KIND_WEIGHTS = (0.3, 0.25, 0.3, 0.15, 0.0, 0.0)


def parse_kind_weights(spec: str) -> tuple[float, ...]:
    """Kind shares from ``"kind=w,kind=w,..."`` (e.g. ``"tabletop=2,room=1"``), normalised to sum 1,
    in the order of :data:`KINDS`; kinds not named get 0.

    Raises
    ------
    ValueError
        Naming ``synth_kinds`` for an unknown kind, a repeated kind, a weight that is not a finite
        number >= 0, or weights that sum to 0.
    """
    if not isinstance(spec, str):
        raise TypeError(f"synth_kinds must be a str like 'tabletop=2,room=1', got {type(spec).__name__}")
    weights = dict.fromkeys(KINDS, 0.0)
    seen = set()
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in weights or name in seen:
            raise ValueError(f"synth_kinds: {item.strip()!r} is not kind=weight with a kind of {KINDS} named once "
                             f"(got {spec!r})")
        try:
            w = float(value)
        except ValueError:
            w = float("nan")
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"synth_kinds: the weight of {name!r} must be a finite number >= 0, got {value.strip()!r}")
        weights[name], seen = w, seen | {name}
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"synth_kinds: the weights sum to 0 ({spec!r})")
    return tuple(weights[k] / total for k in KINDS)


class _Mats:
    """Material table of one scene, filled while the scene is built."""

    def __init__(self, rng: np.random.Generator, bank: TextureBank) -> None:
        self.rng, self.bank, self.list = rng, bank, []

    def add(self, scale: float, plain: float = 0.15, desat: float = 0.0, tint=None, colourful: float = 0.3) -> int:
        """A material with tiles of ``scale`` metres (drawn up to 2x larger: few mirrored repeats)."""
        rng = self.rng
        scale = scale * rng.uniform(1.0, 2.0)
        if tint is None:
            if rng.random() < colourful:  # paint, plastic, clothes: a saturated colour
                tint = _hsv(rng.random(), rng.uniform(0.3, 0.8), rng.uniform(0.5, 1.0)) * 1.4
            else:  # a colour cast around the photo's own colours
                tint = np.exp(rng.normal(0, 0.12, 3)) * rng.uniform(0.7, 1.2)
        tex = -1 if rng.random() < plain else int(rng.integers(len(self.bank)))
        if tex < 0:
            tint = np.clip(np.asarray(tint) * 0.55, 0.02, 1.0)  # plain albedo in [0, 1]
        self.list.append(Material(tex=tex, tint=tuple(float(x) for x in tint), scale=float(scale),
                                  offset=(float(rng.random()), float(rng.random())), desat=float(desat)))
        return len(self.list) - 1

    def plain(self, rgb) -> int:
        self.list.append(Material(tex=-1, tint=tuple(float(x) for x in rgb)))
        return len(self.list) - 1


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


def _deg(rng, lo, hi):
    return math.radians(rng.uniform(lo, hi))


def _clipped_normal(rng, mean, sd, lo, hi):
    return float(np.clip(rng.normal(mean, sd), lo, hi))


# ------------------------------------------------------------------ people
SKIN = ((0.93, 0.75, 0.62), (0.8, 0.58, 0.45), (0.62, 0.42, 0.3), (0.42, 0.28, 0.2), (0.28, 0.18, 0.13))


def figure(x: float, z: float, height: float, yaw: float, mats: _Mats, rng: np.random.Generator) -> list:
    """A standing person of ``height`` metres at ``(x, z)`` facing ``yaw``: legs, hips,
    torso, arms, neck and head (head ≈ 1/7.5 of the height, legs ≈ 0.47)."""
    H = height
    c, s = math.cos(yaw), math.sin(yaw)

    def at(lateral: float, forward: float = 0.0):  # body-frame offset → world (x, z)
        return x + c * lateral + s * forward, z - s * lateral + c * forward

    skin = mats.plain(np.array(SKIN[int(rng.integers(len(SKIN)))]) * rng.uniform(0.85, 1.1) * 0.7)
    hair = mats.plain(np.array([0.1, 0.07, 0.05]) * rng.uniform(0.5, 3.0))
    shirt = mats.add(scale=rng.uniform(0.2, 0.8), plain=0.3, colourful=0.6)
    trousers = mats.add(scale=rng.uniform(0.2, 0.6), plain=0.4, desat=rng.uniform(0, 1),
                        tint=np.exp(rng.normal(0, 0.2, 3)) * rng.uniform(0.25, 0.8))
    sleeves = shirt if rng.random() < 0.6 else skin
    prims = []
    for side in (-1, 1):
        lx, lz = at(side * 0.055 * H)
        prims.append(Cylinder(trousers, cx=lx, cz=lz, radius=0.052 * H, y0=0.0, y1=0.48 * H))
        ax, az = at(side * 0.165 * H)
        prims.append(Cylinder(sleeves, cx=ax, cz=az, radius=0.034 * H, y0=0.43 * H, y1=0.8 * H))
    prims.append(Box(trousers, center=(x, 0.5 * H, z), half=(0.11 * H, 0.04 * H, 0.065 * H), yaw=yaw))
    prims.append(Box(shirt, center=(x, 0.665 * H, z), half=(0.125 * H, 0.155 * H, 0.07 * H), yaw=yaw))
    prims.append(Cylinder(skin, cx=x, cz=z, radius=0.03 * H, y0=0.8 * H, y1=0.875 * H))
    prims.append(Sphere(skin, center=(x, 0.93 * H, z), radius=0.064 * H))
    if rng.random() < 0.8:
        hx, hz = at(0.0, -0.012 * H)
        prims.append(Sphere(hair, center=(hx, 0.945 * H, hz), radius=0.062 * H))
    return prims


# ------------------------------------------------------------------ placement helpers
def _ahead(cam: Camera, rng, dist: float, spread: float = 1.0) -> tuple[float, float]:
    """Ground point ``dist`` metres ahead of the camera, within the view laterally."""
    half = math.tan(0.5 * cam.hfov) * spread
    lateral = rng.uniform(-half, half) * dist
    c, s = math.cos(cam.yaw), math.sin(cam.yaw)
    fx, fz = s, c            # forward on the ground
    rx, rz = c, -s           # right on the ground
    return cam.position[0] + fx * dist + rx * lateral, cam.position[2] + fz * dist + rz * lateral


def _clear(cam: Camera, x: float, z: float, r: float, margin: float = 0.3) -> bool:
    return math.hypot(x - cam.position[0], z - cam.position[2]) > r + margin


def _occluders(cam: Camera, rng, mats: _Mats, scale: float) -> list:
    """Objects 0.15-1.2 m (× scale) from the lens at the frame's edge: a post, a box, foliage."""
    prims = []
    for _ in range(int(rng.integers(1, 3))):
        depth = rng.uniform(0.15, 1.2) * scale
        edge = int(rng.integers(4))
        u, v = rng.random(), rng.random()
        col = (u if edge < 2 else (0.0 if edge == 2 else 1.0)) * cam.width
        row = (v if edge >= 2 else (0.0 if edge == 0 else 1.0)) * cam.height
        if edge >= 2:
            row = (0.2 + 0.8 * v) * cam.height
        p = cam.unproject(col, row, depth)
        size = depth * math.tan(0.5 * cam.hfov) * rng.uniform(0.25, 0.7)
        m = mats.add(scale=size * rng.uniform(0.5, 2), plain=0.2)
        kind = rng.random()
        if kind < 0.4:
            prims.append(Cylinder(m, cx=p[0], cz=p[2], radius=0.5 * size, y0=p[1] - 4 * size, y1=p[1] + 4 * size))
        elif kind < 0.7:
            prims.append(Sphere(m, center=tuple(p), radius=size))
        else:
            prims.append(Box(m, center=tuple(p), half=(size, size * rng.uniform(0.5, 3), size), yaw=rng.uniform(0, math.pi)))
        b = prims[-1].bounds()
        if np.all(b[0] < cam.position) and np.all(cam.position < b[1]):
            prims.pop()  # would contain the camera
    return prims


def _sunlight(rng, overcast: bool) -> tuple[Sun, tuple, tuple]:
    el, az = _deg(rng, 12, 75), rng.uniform(0, 2 * math.pi)
    direction = (math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az))
    warm = np.array([1.0, 0.95, 0.85]) * np.exp(rng.normal(0, 0.05, 3))
    sun = Sun(direction, tuple(warm * (rng.uniform(0.3, 0.8) if overcast else rng.uniform(2.0, 3.5))))
    sky_amb = np.array([0.45, 0.5, 0.6]) * (rng.uniform(1.2, 1.8) if overcast else rng.uniform(0.5, 0.9))
    ground_amb = sky_amb * rng.uniform(0.25, 0.45) * np.array([1.0, 0.95, 0.85])
    return sun, tuple(sky_amb), tuple(ground_amb)


def _sky(rng, bank: TextureBank, overcast: bool, haze_colour=None, skyline: bool = False) -> Sky:
    zen = _hsv(rng.uniform(0.55, 0.65), rng.uniform(0.3, 0.7), rng.uniform(0.5, 0.9))
    hor = np.array([0.8, 0.85, 0.9]) * rng.uniform(0.8, 1.1)
    if overcast:
        zen = hor = np.full(3, rng.uniform(0.6, 0.95))
    if haze_colour is not None:
        hor = np.asarray(haze_colour)
    heights = None
    if skyline:  # a tree line / far buildings / hills, at infinity
        k = 256
        base = rng.uniform(0.01, 0.08)
        prof = base + np.cumsum(rng.normal(0, 0.004, k)) + (rng.random(k) < 0.05) * rng.uniform(0, 0.05)
        heights = np.clip(np.convolve(np.tile(prof, 3), np.ones(5) / 5, "same")[k:2 * k], 0.0, 0.2)
    return Sky(zenith=tuple(zen), horizon=tuple(hor), clouds=float(rng.uniform(0, 0.8) if rng.random() < 0.6 else 0),
               cloud_seed=int(rng.integers(2 ** 31)), skyline_tex=int(rng.integers(len(bank))) if skyline else -1,
               skyline_height=heights, skyline_tint=tuple(np.exp(rng.normal(-0.3, 0.2, 3))))


def _camera(rng, h, w, *, height, pitch, roll_sd, hfov, position_xz=(0.0, 0.0), yaw=None) -> Camera:
    return Camera(position=(float(position_xz[0]), float(height), float(position_xz[1])),
                  yaw=float(rng.uniform(0, 2 * math.pi) if yaw is None else yaw), pitch=float(pitch),
                  roll=math.radians(_clipped_normal(rng, 0, roll_sd, -12, 12)), hfov=float(hfov),
                  height=h, width=w)


# ------------------------------------------------------------------ scene kinds
def _outdoor(rng, bank, h, w) -> Scene:
    mats = _Mats(rng, bank)
    cam = _camera(rng, h, w, height=float(np.clip(1.5 * math.exp(rng.normal(0, 0.45)), 0.3, 4.0)),
                  pitch=math.radians(_clipped_normal(rng, -6, 8, -35, 20)), roll_sd=3, hfov=_deg(rng, 40, 95))
    overcast = rng.random() < 0.3
    haze = None
    if rng.random() < 0.5:
        hc = np.array([0.75, 0.8, 0.85]) * rng.uniform(0.7, 1.1)
        haze = (3.0 / rng.uniform(150, 3000), tuple(hc))
    prims = [AxisPlane(mats.add(scale=rng.uniform(0.5, 4), plain=0.05, desat=rng.uniform(0, 0.6)),
                       axis=1, pos=0.0, sign=1.0, casts_shadow=False)]
    footprints = []
    for _ in range(int(rng.integers(3, 22))):
        dist = math.exp(rng.uniform(math.log(1.5), math.log(80)))
        x, z = _ahead(cam, rng, dist, 1.3)
        kind = rng.random()
        if kind < 0.25:      # figure
            H = rng.uniform(1.5, 1.95)
            if _clear(cam, x, z, 0.3):
                prims += figure(x, z, H, rng.uniform(0, 2 * math.pi), mats, rng)
                footprints.append((x, z, 0.15 * H))
        elif kind < 0.45:    # tree: trunk and crown
            r = rng.uniform(0.08, 0.4)
            top = rng.uniform(2, 8)
            if _clear(cam, x, z, r):
                prims.append(Cylinder(mats.add(scale=rng.uniform(0.3, 1)), cx=x, cz=z, radius=r, y0=0, y1=top))
                crown = rng.uniform(1, 3.5)
                prims.append(Sphere(mats.add(scale=rng.uniform(0.5, 2), tint=np.array([0.5, 0.8, 0.4]) * rng.uniform(0.6, 1.3)),
                                    center=(x, top + 0.6 * crown, z), radius=crown))
                footprints.append((x, z, r))
        elif kind < 0.6:     # bush / boulder
            r = rng.uniform(0.2, min(1.5, max(0.3, 0.5 * dist)))
            if _clear(cam, x, z, r):
                prims.append(Sphere(mats.add(scale=rng.uniform(0.3, 1.5)), center=(x, r * rng.uniform(0.3, 1), z), radius=r))
                footprints.append((x, z, 0.8 * r))
        elif kind < 0.75:    # post / pole
            r = rng.uniform(0.03, 0.3)
            if _clear(cam, x, z, r):
                prims.append(Cylinder(mats.add(scale=rng.uniform(0.2, 1)), cx=x, cz=z, radius=r, y0=0, y1=rng.uniform(0.5, 6)))
                footprints.append((x, z, r))
        else:                # box: crate, car, hut, wall piece (no wider than half its distance)
            cap = max(0.25, 0.5 * dist)
            hx, hy, hz = rng.uniform(0.2, min(3, cap)), rng.uniform(0.2, 2.5), rng.uniform(0.2, min(3, cap))
            if _clear(cam, x, z, math.hypot(hx, hz)):
                prims.append(Box(mats.add(scale=rng.uniform(0.3, 3)), center=(x, hy, z), half=(hx, hy, hz),
                                 yaw=rng.uniform(0, math.pi)))
                footprints.append((x, z, 0.9 * min(hx, hz)))
    if rng.random() < 0.5:   # far buildings / hills
        for _ in range(int(rng.integers(2, 10))):
            dist = rng.uniform(40, 400)
            x, z = _ahead(cam, rng, dist, 1.5)
            hx, hy, hz = rng.uniform(5, 40), rng.uniform(4, 40), rng.uniform(5, 40)
            prims.append(Box(mats.add(scale=rng.uniform(3, 12)), center=(x, hy, z), half=(hx, hy, hz), yaw=rng.uniform(0, math.pi)))
    if rng.random() < 0.35:  # a portrait subject
        dist = rng.uniform(1.2, 4.0)
        x, z = _ahead(cam, rng, dist, 0.4)
        H = rng.uniform(1.5, 1.95)
        if _clear(cam, x, z, 0.35):
            prims += figure(x, z, H, cam.yaw + math.pi + rng.normal(0, 0.5), mats, rng)
            footprints.append((x, z, 0.15 * H))
    if rng.random() < 0.3:
        prims += _occluders(cam, rng, mats, 1.0)
    sun, amb_sky, amb_ground = _sunlight(rng, overcast)
    sky = _sky(rng, bank, overcast, haze[1] if haze else None, skyline=rng.random() < 0.5)
    return Scene(cam, prims, mats.list, sun=sun, ambient_sky=amb_sky, ambient_ground=amb_ground, sky=sky, haze=haze,
                 footprints=footprints, exposure=rng.uniform(0.7, 1.4), noise=rng.uniform(0, 0.02), kind="outdoor")


def _street(rng, bank, h, w) -> Scene:
    mats = _Mats(rng, bank)
    along = rng.random() < 0.6
    yaw = rng.normal(0, math.radians(15)) + (math.pi if rng.random() < 0.5 else 0.0) if along else rng.uniform(0, 2 * math.pi)
    half_road = rng.uniform(3.5, 10)
    cam = _camera(rng, h, w, height=rng.uniform(1.3, 2.2), pitch=math.radians(_clipped_normal(rng, -2, 4, -15, 10)),
                  roll_sd=1.5, hfov=_deg(rng, 50, 110), position_xz=(rng.uniform(-0.6, 0.6) * half_road, 0.0), yaw=yaw)
    overcast = rng.random() < 0.4
    haze = (3.0 / rng.uniform(200, 2000), tuple(np.array([0.78, 0.8, 0.84]) * rng.uniform(0.7, 1.1))) if rng.random() < 0.4 else None
    prims = [AxisPlane(mats.add(scale=rng.uniform(1, 5), plain=0.1, desat=rng.uniform(0.5, 1.0),
                                tint=np.full(3, rng.uniform(0.5, 1.0))), axis=1, pos=0.0, sign=1.0, casts_shadow=False)]
    footprints = []
    for side in (-1, 1):
        walk = rng.uniform(1.5, 5)
        front = side * (half_road + walk)
        z = rng.uniform(-80, -40)
        while z < 300:
            width = rng.uniform(6, 30)
            if rng.random() > 0.15:
                depth = rng.uniform(8, 25)
                hy = rng.uniform(2, 18)
                prims.append(Box(mats.add(scale=rng.uniform(2, 8), plain=0.2), center=(front + side * depth, hy, z + width / 2),
                                 half=(depth, hy, width / 2)))
            z += width + (rng.uniform(1, 10) if rng.random() < 0.3 else 0.0)
        for _ in range(int(rng.integers(0, 8))):  # parked cars
            cz = rng.uniform(-30, 80)
            cx = side * (half_road - rng.uniform(0.9, 1.3))
            body = mats.add(scale=2.0, plain=0.6, colourful=0.7)
            prims.append(Box(body, center=(cx, 0.6, cz), half=(0.9, 0.38, 2.25), yaw=rng.normal(0, 0.05)))
            prims.append(Box(mats.plain(np.array([0.1, 0.12, 0.15]) * rng.uniform(0.5, 2)), center=(cx, 1.2, cz - 0.2),
                             half=(0.8, 0.25, 1.2), yaw=0.0))
            footprints.append((cx, cz, 0.9))
        for _ in range(int(rng.integers(0, 8))):  # trees, poles
            tz = rng.uniform(-20, 120)
            tx = side * (half_road + rng.uniform(0.3, walk - 0.2))
            r = rng.uniform(0.05, 0.3)
            top = rng.uniform(3, 8)
            prims.append(Cylinder(mats.add(scale=0.5), cx=tx, cz=tz, radius=r, y0=0, y1=top))
            if rng.random() < 0.6:
                crown = rng.uniform(1, 3)
                prims.append(Sphere(mats.add(scale=1.0, tint=np.array([0.5, 0.8, 0.4]) * rng.uniform(0.6, 1.3)),
                                    center=(tx, top + 0.5 * crown, tz), radius=crown))
            footprints.append((tx, tz, r))
        for _ in range(int(rng.integers(0, 5))):  # pedestrians
            fz = rng.uniform(2, 60)
            fx = side * (half_road + rng.uniform(0.3, walk))
            if _clear(cam, fx, fz, 0.3):
                H = rng.uniform(1.5, 1.95)
                prims += figure(fx, fz, H, rng.uniform(0, 2 * math.pi), mats, rng)
                footprints.append((fx, fz, 0.15 * H))
    if rng.random() < 0.2:
        prims += _occluders(cam, rng, mats, 1.0)
    sun, amb_sky, amb_ground = _sunlight(rng, overcast)
    sky = _sky(rng, bank, overcast, haze[1] if haze else None, skyline=rng.random() < 0.3)
    return Scene(cam, prims, mats.list, sun=sun, ambient_sky=amb_sky, ambient_ground=amb_ground, sky=sky, haze=haze,
                 footprints=footprints, exposure=rng.uniform(0.7, 1.4), noise=rng.uniform(0, 0.02), kind="street")


def _room(rng, bank, h, w, *, tabletop: bool = False) -> Scene:
    mats = _Mats(rng, bank)
    if tabletop:  # the "floor" is a table top; small things on it, walls 0.8-3 m away
        sx, sz, sy = rng.uniform(1.6, 6), rng.uniform(1.6, 6), rng.uniform(1.5, 2.5)
        cam_h = rng.uniform(0.25, 0.9)
        pitch = _deg(rng, -70, -20)
        hfov = _deg(rng, 45, 75)
    else:
        sx, sz, sy = rng.uniform(3, 9), rng.uniform(3, 12), rng.uniform(2.3, 3.5)
        cam_h = rng.uniform(0.8, 1.9)
        pitch = math.radians(_clipped_normal(rng, -10, 10, -45, 20))
        hfov = _deg(rng, 45, 90)
    margin = 0.4
    cx, cz = rng.uniform(-sx / 2 + margin, sx / 2 - margin), rng.uniform(-sz / 2 + margin, sz / 2 - margin)
    # Look towards a point of the room at least 40 % of its size away, not into the nearest wall.
    for _ in range(20):
        tx, tz = rng.uniform(-sx / 2, sx / 2), rng.uniform(-sz / 2, sz / 2)
        if math.hypot(tx - cx, tz - cz) > 0.4 * max(sx, sz):
            break
    yaw = math.atan2(tx - cx, tz - cz) + rng.normal(0, 0.2)
    cam = _camera(rng, h, w, height=cam_h, pitch=pitch, roll_sd=3, hfov=hfov, position_xz=(cx, cz), yaw=yaw)
    wall = mats.add(scale=rng.uniform(1.0, 3) * (0.5 if tabletop else 1), plain=0.4, colourful=0.2)
    wall2 = wall if rng.random() < 0.6 else mats.add(scale=rng.uniform(1.0, 3), plain=0.4, colourful=0.2)
    floor = mats.add(scale=rng.uniform(0.3, 2) * (0.5 if tabletop else 1), plain=0.1)
    ceiling = mats.add(scale=2.0, plain=0.7, colourful=0.05)
    prims = [AxisPlane(floor, axis=1, pos=0.0, sign=1.0, casts_shadow=False),
             AxisPlane(ceiling, axis=1, pos=sy, sign=-1.0, casts_shadow=False),
             AxisPlane(wall, axis=0, pos=-sx / 2, sign=1.0, casts_shadow=False),
             AxisPlane(wall, axis=0, pos=sx / 2, sign=-1.0, casts_shadow=False),
             AxisPlane(wall2, axis=2, pos=-sz / 2, sign=1.0, casts_shadow=False),
             AxisPlane(wall2, axis=2, pos=sz / 2, sign=-1.0, casts_shadow=False)]
    footprints = []
    unit = 0.12 if tabletop else 1.0   # object size scale
    near, far = (0.15, 1.5) if tabletop else (0.8, 8.0)

    def inside(x, z, r):
        return abs(x) + r < sx / 2 and abs(z) + r < sz / 2

    def spot():  # a floor point inside the room, in front of the camera (log-uniform distance)
        for _ in range(12):
            x, z = _ahead(cam, rng, math.exp(rng.uniform(math.log(near), math.log(far))), 1.3)
            if abs(x) < sx / 2 - 0.05 and abs(z) < sz / 2 - 0.05:
                return x, z
        return rng.uniform(-sx / 2, sx / 2), rng.uniform(-sz / 2, sz / 2)

    for _ in range(int(rng.integers(4, 18))):
        x, z = spot()
        kind = rng.random()
        if not tabletop and kind < 0.15:
            H = rng.uniform(1.5, 1.95)
            if inside(x, z, 0.3) and _clear(cam, x, z, 0.3):
                prims += figure(x, z, H, rng.uniform(0, 2 * math.pi), mats, rng)
                footprints.append((x, z, 0.15 * H))
        elif kind < 0.55:   # box: cabinet, table block, bed, book, carton
            hx, hy, hz = (rng.uniform(0.1, 1.2) * unit, rng.uniform(0.1, 1.0) * unit, rng.uniform(0.1, 1.2) * unit)
            r = math.hypot(hx, hz)
            if inside(x, z, r) and _clear(cam, x, z, r, 0.1 * unit + 0.05):
                lift = rng.uniform(0.3, 0.8) if (not tabletop and rng.random() < 0.2) else 0.0  # a table top on legs
                m = mats.add(scale=rng.uniform(0.2, 1.5) * unit)
                box = Box(m, center=(x, lift + hy, z), half=(hx, hy, hz), yaw=rng.uniform(0, math.pi))
                prims.append(box)
                if lift > 0:
                    for sxn, szn in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
                        lx = x + math.cos(box.yaw) * sxn * hx * 0.85 + math.sin(box.yaw) * szn * hz * 0.85
                        lz = z - math.sin(box.yaw) * sxn * hx * 0.85 + math.cos(box.yaw) * szn * hz * 0.85
                        prims.append(Cylinder(m, cx=lx, cz=lz, radius=0.03, y0=0, y1=lift))
                footprints.append((x, z, 0.9 * min(hx, hz)))
        elif kind < 0.8:    # cylinder: lamp, bin, cup, bottle
            r, hh = rng.uniform(0.1, 0.4) * unit, rng.uniform(0.2, 1.6) * unit
            if inside(x, z, r) and _clear(cam, x, z, r, 0.05):
                prims.append(Cylinder(mats.add(scale=rng.uniform(0.1, 0.6) * unit), cx=x, cz=z, radius=r, y0=0, y1=hh))
                footprints.append((x, z, r))
        else:               # sphere: ball, fruit
            r = rng.uniform(0.08, 0.4) * unit
            if inside(x, z, r) and _clear(cam, x, z, r, 0.05):
                prims.append(Sphere(mats.add(scale=rng.uniform(0.1, 0.6) * unit), center=(x, r, z), radius=r))
                footprints.append((x, z, 0.7 * r))
    if not tabletop and rng.random() < 0.3:  # a portrait subject
        x, z = _ahead(cam, rng, rng.uniform(1.0, 3.0), 0.4)
        if inside(x, z, 0.3) and _clear(cam, x, z, 0.35):
            H = rng.uniform(1.5, 1.95)
            prims += figure(x, z, H, cam.yaw + math.pi + rng.normal(0, 0.5), mats, rng)
            footprints.append((x, z, 0.15 * H))
    if rng.random() < 0.3:
        prims += _occluders(cam, rng, mats, 0.4 if tabletop else 1.0)
    lights = []
    for _ in range(int(rng.integers(1, 3))):
        lp = (rng.uniform(-sx / 2 + 0.3, sx / 2 - 0.3), sy - rng.uniform(0.2, 0.8), rng.uniform(-sz / 2 + 0.3, sz / 2 - 0.3))
        lights.append(PointLight(lp, tuple(np.array([1.0, 0.92, 0.8]) * np.exp(rng.normal(0, 0.08, 3)) * rng.uniform(0.8, 2.0)),
                                 reach=rng.uniform(1.5, 4.0)))
    amb = np.array([0.3, 0.3, 0.3]) * np.exp(rng.normal(0, 0.08, 3)) * rng.uniform(0.3, 0.8)
    return Scene(cam, prims, mats.list, lights=lights, ambient_sky=tuple(amb), ambient_ground=tuple(amb * 0.6),
                 footprints=footprints, exposure=rng.uniform(0.7, 1.4), noise=rng.uniform(0.003, 0.025),
                 kind="tabletop" if tabletop else "room")


def _closeup(rng, bank, h, w) -> Scene:
    """A portrait-mode photo: one subject 0.4-3 m from a camera with a narrow field of view
    (25-55 degrees: a phone's 2x lens, a short telephoto) near the subject's height, in front of
    an outdoor scene (70 %) or a room: a person from 1 m, else a thing on a stand or a plant
    (sphere, box or cylinder) filling a fifth to two thirds of the frame width."""
    base = _outdoor(rng, bank, h, w) if rng.random() < 0.7 else _room(rng, bank, h, w)
    mats = _Mats(rng, bank)
    mats.list = base.materials
    hfov = _deg(rng, 25, 55)
    dist = math.exp(rng.uniform(math.log(0.4), math.log(3.0)))
    person = dist >= 1.0 and rng.random() < 0.5
    height = rng.uniform(1.3, 1.7) if person else float(np.clip(base.camera.position[1], 0.3, 1.8))
    cam = dataclasses.replace(base.camera, hfov=hfov, pitch=math.radians(_clipped_normal(rng, -3, 5, -20, 12)),
                              position=(base.camera.position[0], height, base.camera.position[2]))
    x, z = _ahead(cam, rng, dist, 0.3)
    prims, footprints = list(base.prims), list(base.footprints)
    if person:
        H = rng.uniform(1.5, 1.95)
        prims += figure(x, z, H, cam.yaw + math.pi + rng.normal(0, 0.4), mats, rng)
        footprints.append((x, z, 0.15 * H))
    else:
        size = dist * math.tan(0.5 * hfov) * rng.uniform(0.1, 0.33)  # half-width
        top = max(size, height + rng.normal(0, 0.5 * size))          # its centre, near the lens's height
        m = mats.add(scale=size * rng.uniform(0.3, 1.5), plain=0.2, colourful=0.5)
        kind = rng.random()
        if kind < 0.4:   # a plant or a flower: stem and crown
            prims.append(Cylinder(mats.add(scale=0.3, tint=np.array([0.4, 0.7, 0.3])), cx=x, cz=z,
                                  radius=0.08 * size, y0=0.0, y1=top))
            prims.append(Sphere(m, center=(x, top, z), radius=size))
        elif kind < 0.7:  # a thing on a stand
            prims.append(Cylinder(mats.add(scale=0.5, plain=0.5), cx=x, cz=z, radius=0.15 * size, y0=0.0, y1=top - size))
            prims.append(Box(m, center=(x, top, z), half=(size, size * rng.uniform(0.5, 1.5), size * rng.uniform(0.5, 1.0)),
                             yaw=rng.uniform(0, math.pi)))
        else:             # a bottle, a cup, a post
            prims.append(Cylinder(m, cx=x, cz=z, radius=size * rng.uniform(0.3, 1.0), y0=0.0, y1=top + size))
        footprints.append((x, z, 0.5 * size))
    return dataclasses.replace(base, camera=cam, prims=prims, materials=mats.list, footprints=footprints,
                               kind="closeup")


def _desk(rng, bank, h, w) -> Scene:
    """A table seen from above in a room: a top 0.4-0.8 m high on legs, its centre 0.3-2.7 m ahead of the
    lens, with a few small things on it (cups, boxes, fruit), the floor visible past its edges.

    Unlike ``tabletop`` (where the table is the whole floor), the table's edge is a depth step:
    the floor just below it in the frame is farther than the top, against "lower is nearer"."""
    base = _room(rng, bank, h, w)
    mats = _Mats(rng, bank)
    mats.list = base.materials
    top_h = rng.uniform(0.4, 0.8)
    cam_h = top_h + rng.uniform(0.3, 1.0)                      # sitting or standing over it
    pitch = _deg(rng, -65, -25)
    cam = dataclasses.replace(base.camera, hfov=_deg(rng, 45, 75), pitch=pitch,
                              position=(base.camera.position[0], cam_h, base.camera.position[2]))
    # Centre the table near or past where the optical axis meets its top, so its near edge shows.
    reach = float(np.clip((cam_h - top_h) / math.tan(-pitch), 0.35, 1.5)) * rng.uniform(0.9, 1.8)
    x, z = _ahead(cam, rng, reach, 0.25)
    hx, hz, thick = rng.uniform(0.25, 0.8), rng.uniform(0.2, 0.5), rng.uniform(0.01, 0.03)
    yaw = cam.yaw + rng.normal(0, 0.35) + (math.pi / 2 if rng.random() < 0.5 else 0.0)
    c, s = math.cos(yaw), math.sin(yaw)

    def world(lx, lz):  # table-local (x, z) to world, as Box turns by yaw
        return x + c * lx + s * lz, z - s * lx + c * lz

    wood = mats.add(scale=rng.uniform(0.3, 1.2), plain=0.3, colourful=0.15)
    prims = [p for p in base.prims if not _overlaps(p, x, z, max(hx, hz) + 0.1, top_h + 0.1)]
    prims.append(Box(wood, center=(x, top_h - thick, z), half=(hx, thick, hz), yaw=yaw))
    for sxn, szn in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
        lx, lz = world(sxn * hx * 0.9, szn * hz * 0.9)
        prims.append(Cylinder(wood, cx=lx, cz=lz, radius=rng.uniform(0.015, 0.035), y0=0.0, y1=top_h - 2 * thick))
    # Floor shadows: the table's own (objects on its top cast none on the floor).
    footprints = [f for f in base.footprints if math.hypot(f[0] - x, f[1] - z) > max(hx, hz) + 0.1]
    footprints.append((x, z, 0.8 * min(hx, hz)))
    for _ in range(int(rng.integers(2, 9))):
        ox, oz = world(rng.uniform(-0.85, 0.85) * hx, rng.uniform(-0.85, 0.85) * hz)
        size = rng.uniform(0.025, 0.12)
        m = mats.add(scale=rng.uniform(0.05, 0.3), colourful=0.5)
        kind = rng.random()
        if kind < 0.4:    # cup, bottle, can
            prims.append(Cylinder(m, cx=ox, cz=oz, radius=size * rng.uniform(0.4, 0.8), y0=top_h,
                                  y1=top_h + size * rng.uniform(1.0, 3.5)))
        elif kind < 0.75:  # box, book, phone
            hy = size * rng.uniform(0.1, 1.0)
            prims.append(Box(m, center=(ox, top_h + hy, oz), half=(size, hy, size * rng.uniform(0.4, 1.2)),
                             yaw=rng.uniform(0, math.pi)))
        else:             # fruit, ball
            prims.append(Sphere(m, center=(ox, top_h + size * 0.6, oz), radius=size * 0.6))
    return dataclasses.replace(base, camera=cam, prims=prims, materials=mats.list, footprints=footprints,
                               kind="desk")


def _overlaps(prim, x: float, z: float, r: float, below: float) -> bool:
    """Whether ``prim`` (a room's object, not its floor, walls or ceiling) reaches within ``r``
    of ``(x, z)`` lower than ``below`` metres: it would stand inside the table."""
    if isinstance(prim, AxisPlane):
        return False
    lo, hi = prim.bounds()
    return lo[1] < below and lo[0] < x + r and hi[0] > x - r and lo[2] < z + r and hi[2] > z - r


def random_scene(rng: np.random.Generator, bank: TextureBank, height: int, width: int, kind: str | None = None,
                 kind_weights: tuple[float, ...] | None = None) -> Scene:
    """A random scene of ``kind`` (default: drawn with ``kind_weights``, one per :data:`KINDS`,
    default :data:`KIND_WEIGHTS`) for an ``height`` × ``width`` image."""
    if kind is None:
        kind = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS if kind_weights is None else kind_weights))]
    if kind == "outdoor":
        return _outdoor(rng, bank, height, width)
    if kind == "street":
        return _street(rng, bank, height, width)
    if kind == "room":
        return _room(rng, bank, height, width)
    if kind == "tabletop":
        return _room(rng, bank, height, width, tabletop=True)
    if kind == "closeup":
        return _closeup(rng, bank, height, width)
    if kind == "desk":
        return _desk(rng, bank, height, width)
    raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
