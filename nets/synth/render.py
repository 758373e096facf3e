"""Ray casting and shading of one synthetic scene: exact depth, plausible colour.

:func:`render` casts one ray per pixel (the nearest hit over all primitives; each
primitive only tests the pixels inside its projected bounding box), looks up textured
albedo, shades it (Lambert under a sun or point lights with ray-cast shadows, a
sky/ground ambient term, contact darkening where objects stand on the ground), adds
distance haze, fills misses with the sky (and an optional skyline backdrop) at infinite
depth, and maps the linear result to 8-bit sRGB with auto exposure and sensor noise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .camera import Camera
from .primitives import AxisPlane
from .textures import TextureBank

__all__ = ["Material", "Sun", "PointLight", "Sky", "Scene", "render"]


@dataclass
class Material:
    """Surface colour: texture ``tex`` (``-1`` = plain) times ``tint``.

    ``scale``: metres per texture tile; ``offset``: tile offset; ``desat``: blend towards
    the texture's grey (0 = photo colours, 1 = grey; roads, concrete).
    """

    tex: int
    tint: tuple[float, float, float]
    scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)
    desat: float = 0.0


@dataclass
class Sun:
    direction: tuple[float, float, float]  # unit vector towards the sun
    colour: tuple[float, float, float]


@dataclass
class PointLight:
    position: tuple[float, float, float]
    colour: tuple[float, float, float]
    reach: float = 3.0  # intensity falls as 1 / (1 + (dist / reach)^2)


@dataclass
class Sky:
    """Sky at infinity: gradient, sun glow, perspective clouds, optional skyline backdrop."""

    zenith: tuple[float, float, float]
    horizon: tuple[float, float, float]
    clouds: float = 0.0                       # cloud cover 0..1
    cloud_seed: int = 0
    skyline_tex: int = -1                     # backdrop texture; -1 = none
    skyline_height: np.ndarray | None = None  # (K,) elevation (radians) of the backdrop per azimuth bin
    skyline_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass
class Scene:
    camera: Camera
    prims: list
    materials: list
    sun: Sun | None = None
    lights: list = field(default_factory=list)
    ambient_sky: tuple[float, float, float] = (0.3, 0.33, 0.38)
    ambient_ground: tuple[float, float, float] = (0.12, 0.11, 0.1)
    sky: Sky | None = None
    haze: tuple[float, tuple[float, float, float]] | None = None  # (extinction per metre, colour)
    footprints: list = field(default_factory=list)  # (cx, cz, radius) of objects standing on the floor plane
    exposure: float = 1.0
    noise: float = 0.01
    kind: str = ""


def _screen_rect(cam: Camera, bounds) -> tuple[int, int, int, int] | None:
    """Pixel rectangle ``(r0, r1, c0, c1)`` holding the box's projection; None = off screen."""
    if bounds is None:
        return 0, cam.height, 0, cam.width
    lo, hi = bounds
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    col, row, z = cam.project(corners)
    if np.any(z <= 1e-3):  # straddles the camera plane: test every pixel
        if np.all(z <= 1e-3):
            return None
        return 0, cam.height, 0, cam.width
    c0, c1 = int(np.floor(col.min())) - 1, int(np.ceil(col.max())) + 1
    r0, r1 = int(np.floor(row.min())) - 1, int(np.ceil(row.max())) + 1
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, cam.width), min(r1, cam.height)
    if c0 >= c1 or r0 >= r1:
        return None
    return r0, r1, c0, c1


def _cast(scene: Scene, d):
    cam = scene.camera
    o = tuple(np.float32(v) for v in cam.position)
    tbuf = np.full((cam.height, cam.width), np.inf, np.float32)
    ibuf = np.full((cam.height, cam.width), -1, np.int32)
    for k, prim in enumerate(scene.prims):
        rect = _screen_rect(cam, prim.bounds())
        if rect is None:
            continue
        r0, r1, c0, c1 = rect
        sub = tuple(a[r0:r1, c0:c1] for a in d)
        t = prim.intersect(o, sub)
        tb = tbuf[r0:r1, c0:c1]
        closer = t < tb
        tb[closer] = t[closer]
        ibuf[r0:r1, c0:c1][closer] = k
    return tbuf, ibuf


def _shadowed(scene: Scene, p, towards, t_max) -> np.ndarray:
    """True where the segment ``p + s · towards``, ``EPS < s < t_max``, hits a shadow caster."""
    blocked = np.zeros(p[0].shape, bool)
    tl = np.sqrt(towards[0] ** 2 + towards[1] ** 2 + towards[2] ** 2)
    for prim in scene.prims:
        b = prim.bounds()
        if b is None or not prim.casts_shadow:
            continue
        c = 0.5 * (b[0] + b[1])
        rad = 0.5 * float(np.linalg.norm(b[1] - b[0]))
        # Cheap cull: the ray must pass within the bounding sphere, ahead of the point.
        vx, vy, vz = np.float32(c[0]) - p[0], np.float32(c[1]) - p[1], np.float32(c[2]) - p[2]
        proj = (vx * towards[0] + vy * towards[1] + vz * towards[2]) / tl
        dist2 = vx * vx + vy * vy + vz * vz - proj * proj
        cand = np.nonzero(~blocked & (proj > -rad) & (dist2 < np.float32(rad * rad)))[0]
        if cand.size == 0:
            continue
        tw = tuple(a[cand] if np.ndim(a) else a for a in towards)
        tm = t_max[cand] if np.ndim(t_max) else t_max
        t = prim.intersect(tuple(a[cand] for a in p), tw)
        blocked[cand[t < tm]] = True
    return blocked


def _sky_colour(sky: Sky, sun: Sun | None, d) -> np.ndarray:
    dx, dy, dz = d
    n = np.sqrt(dx * dx + dy * dy + dz * dz)
    ex, ey, ez = dx / n, dy / n, dz / n
    w = np.sqrt(np.clip(ey, 0, 1))[:, None]
    col = np.asarray(sky.horizon, np.float32) * (1 - w) + np.asarray(sky.zenith, np.float32) * w
    if sky.clouds > 0:
        rng = np.random.default_rng(sky.cloud_seed)
        grid = rng.random((12, 12)).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            cu, cv = ex / np.maximum(ey, 0.03), ez / np.maximum(ey, 0.03)  # clouds on a plane overhead
        fu, fv = np.mod(cu * 1.5, 12.0), np.mod(cv * 1.5, 12.0)
        iu, iv = fu.astype(np.int64) % 12, fv.astype(np.int64) % 12
        au, av = fu - np.floor(fu), fv - np.floor(fv)
        au, av = au * au * (3 - 2 * au), av * av * (3 - 2 * av)
        val = (grid[iv, iu] * (1 - au) + grid[iv, (iu + 1) % 12] * au) * (1 - av) + \
              (grid[(iv + 1) % 12, iu] * (1 - au) + grid[(iv + 1) % 12, (iu + 1) % 12] * au) * av
        cover = np.clip((val - (1 - sky.clouds)) * 3, 0, 1) * np.clip(ey * 8, 0, 1)
        bright = np.float32(0.9) * np.asarray(sky.horizon, np.float32).mean() + 0.25
        col = col * (1 - cover[:, None]) + bright * cover[:, None]
    if sun is not None:
        cos = np.clip(ex * sun.direction[0] + ey * sun.direction[1] + ez * sun.direction[2], 0, 1)
        col = col + np.asarray(sun.colour, np.float32) * (0.15 * cos ** 8 + 2.0 * cos ** 400)[:, None]
    return col.astype(np.float32)


def _skyline(scene: Scene, bank: TextureBank, d, col: np.ndarray) -> np.ndarray:
    sky = scene.sky
    dx, dy, dz = d
    az = np.arctan2(dz, dx)
    el = np.arctan2(dy, np.sqrt(dx * dx + dz * dz))
    k = sky.skyline_height.size
    top = sky.skyline_height[((az + np.pi) / (2 * np.pi) * k).astype(np.int64) % k]
    inside = (el >= -0.02) & (el < top)
    if inside.any():
        u = az[inside] * 3.0
        v = el[inside] * 3.0
        tex = bank.sample(np.full(u.size, sky.skyline_tex), u, v, np.full(u.size, 8.0 / bank.size))
        tex = tex * np.asarray(sky.skyline_tint, np.float32)
        if scene.haze is not None:  # the backdrop is far: mostly haze
            tex = 0.35 * tex + 0.65 * np.asarray(scene.haze[1], np.float32)
        col = col.copy()
        col[inside] = tex
    return col


def render(scene: Scene, bank: TextureBank, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Render ``scene``.

    Returns
    -------
    rgb : numpy.ndarray
        ``(H, W, 3)`` uint8 sRGB.
    depth : numpy.ndarray
        ``(H, W)`` float32 depth along the optical axis in metres; ``inf`` = sky/backdrop.
    """
    cam = scene.camera
    d = cam.rays()
    tbuf, ibuf = _cast(scene, d)
    flat_t, flat_i = tbuf.ravel(), ibuf.ravel()
    dflat = tuple(a.ravel() for a in d)
    hit = np.nonzero(flat_i >= 0)[0]
    miss = np.nonzero(flat_i < 0)[0]
    out = np.zeros((flat_t.size, 3), np.float32)

    # ---------------------------------------------------------------- surfaces
    t = flat_t[hit]
    dh = tuple(a[hit] for a in dflat)
    p = tuple(np.float32(cam.position[k]) + t * dh[k] for k in range(3))
    n = [np.zeros_like(t) for _ in range(3)]
    uv = [np.zeros_like(t) for _ in range(2)]
    mat = np.zeros(t.size, np.int64)
    ids = flat_i[hit]
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(len(scene.prims) + 1))
    for k, prim in enumerate(scene.prims):
        sel = order[bounds[k]:bounds[k + 1]]
        if sel.size == 0:
            continue
        nx, ny, nz, u, v = prim.surface(p[0][sel], p[1][sel], p[2][sel])
        n[0][sel], n[1][sel], n[2][sel] = nx, ny, nz
        uv[0][sel], uv[1][sel] = u, v
        mat[sel] = prim.mat
    dlen = np.sqrt(dh[0] ** 2 + dh[1] ** 2 + dh[2] ** 2)
    cos_view = np.abs(n[0] * dh[0] + n[1] * dh[1] + n[2] * dh[2]) / dlen
    footprint_m = t * dlen / np.float32(cam.focal) / np.maximum(cos_view, 0.15)

    # ---------------------------------------------------------------- albedo
    albedo = np.empty((t.size, 3), np.float32)
    tex_of = np.array([m.tex for m in scene.materials])
    scale_of = np.array([m.scale for m in scene.materials], np.float32)
    off_of = np.array([m.offset for m in scene.materials], np.float32)
    tint_of = np.array([m.tint for m in scene.materials], np.float32)
    desat_of = np.array([m.desat for m in scene.materials], np.float32)
    textured = tex_of[mat] >= 0
    ti = np.nonzero(textured)[0]
    if ti.size:
        m = mat[ti]
        s = scale_of[m]
        albedo[ti] = bank.sample(tex_of[m], uv[0][ti] / s + off_of[m, 0], uv[1][ti] / s + off_of[m, 1],
                                 footprint_m[ti] / s)
        grey = albedo[ti].mean(axis=1, keepdims=True)
        a = desat_of[m][:, None]
        albedo[ti] = albedo[ti] * (1 - a) + grey * a
    pi = np.nonzero(~textured)[0]
    if pi.size:
        albedo[pi] = 1.0
    albedo *= tint_of[mat]

    # ---------------------------------------------------------------- light
    ny01 = 0.5 + 0.5 * n[1]
    light = np.asarray(scene.ambient_sky, np.float32) * ny01[:, None] + \
        np.asarray(scene.ambient_ground, np.float32) * (1 - ny01)[:, None]
    if scene.footprints:  # contact darkening on the floor around standing objects
        is_floor = np.array([isinstance(q, AxisPlane) and q.axis == 1 and q.sign > 0 for q in scene.prims])
        fi = np.nonzero(is_floor[ids])[0]
        if fi.size:
            occl = np.ones(fi.size, np.float32)
            for cx, cz, r in scene.footprints:
                dist = np.sqrt((p[0][fi] - np.float32(cx)) ** 2 + (p[2][fi] - np.float32(cz)) ** 2) - np.float32(r)
                occl *= 1 - 0.55 * np.exp(-(np.maximum(dist, 0) / np.float32(0.6 * r + 0.05)) ** 2)
            light[fi] *= occl[:, None]
    if scene.sun is not None:
        L = scene.sun.direction
        lam = np.maximum(n[0] * L[0] + n[1] * L[1] + n[2] * L[2], 0)
        lit = np.nonzero(lam > 0)[0]
        if lit.size:
            blocked = _shadowed(scene, tuple(a[lit] for a in p), tuple(np.float32(x) for x in L), np.float32(1e5))
            lam[lit[blocked]] = 0
        light += np.asarray(scene.sun.colour, np.float32) * lam[:, None]
    for pl in scene.lights:
        to = tuple(np.float32(pl.position[k]) - p[k] for k in range(3))
        dist = np.sqrt(to[0] ** 2 + to[1] ** 2 + to[2] ** 2)
        lam = np.maximum((n[0] * to[0] + n[1] * to[1] + n[2] * to[2]) / dist, 0)
        lit = np.nonzero(lam > 0)[0]
        if lit.size:
            blocked = _shadowed(scene, tuple(a[lit] for a in p), tuple(a[lit] for a in to), np.float32(1.0))
            lam[lit[blocked]] *= 0.1
        lam = lam / (1 + (dist / np.float32(pl.reach)) ** 2)
        light += np.asarray(pl.colour, np.float32) * lam[:, None]
    colour = albedo * light
    if scene.haze is not None:
        beta, hcol = scene.haze
        trans = np.exp(-np.float32(beta) * t * dlen)[:, None]
        colour = colour * trans + np.asarray(hcol, np.float32) * (1 - trans)
    out[hit] = colour

    # ---------------------------------------------------------------- sky (depth = inf)
    if miss.size:
        dm = tuple(a[miss] for a in dflat)
        if scene.sky is not None:
            col = _sky_colour(scene.sky, scene.sun, dm)
            if scene.sky.skyline_tex >= 0 and scene.sky.skyline_height is not None:
                col = _skyline(scene, bank, dm, col)
        else:
            col = np.full((miss.size, 3), 0.5, np.float32)
        out[miss] = col

    # ---------------------------------------------------------------- camera response
    lum = out @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    gain = np.float32(scene.exposure * 0.2 / max(float(np.median(lum)), 1e-4))
    img = 1.0 - np.exp(-out * gain * 1.6)  # soft shoulder instead of hard clipping
    img = img ** np.float32(1 / 2.2)
    if scene.noise > 0:
        img = img + rng.normal(0, scene.noise, img.shape).astype(np.float32)
    rgb = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8).reshape(cam.height, cam.width, 3)
    return rgb, tbuf
