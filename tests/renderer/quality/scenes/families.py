"""Scene families: the content real photos hold and the renderer must get right.

Every family is a seeded generator ``gen(seed, height, width, max_coc_range) ->
Scene`` (deterministic per seed) of physically exact scenes: planar layers with
HDR linear radiance, seen by a thin lens; the photo is what a camera records (the
pinhole image clipped at 1.0, sRGB, 8 bits).  A radiance over 1.0 is recorded as
1.0 in the photo but blurs with its true energy in the reference.

``layered``     the original random layered scenes (textured shapes over a background
                with white-ish HDR point lights 4-60x the clip), ``layered.random_scene``.
``saturated``   saturated colour fields and gradients (one channel at or just over the
                clip: yellow / magenta / green / orange gradients, a red jacket, saturated
                objects).  Surfaces, not lights: the brightest channel's true radiance is
                0.8-1.35x the clip level.
``clipped``     large clipped areas: an over-exposed sky (1.02-4x the clip in its dimmest
                channel) behind a horizon, dark branches, poles and wires, or a white wall
                (1.02-2x) with windows;
                a subject that may wear a white shirt over the clip.
``lights``      true HDR lights in dark or mid-bright surroundings: white lights 1.5-60x
                the clip, coloured lights clipped in one or two channels (sodium, red,
                green, blue, amber, magenta; the camera records a whitened colour),
                fairy-light strings (clusters of small lights 3-9 px apart), lamps
                2-5 px wide; on the background and on a mid layer; focus on the subject,
                the mid layer or the lights themselves.
``strands``     thin strands (hair, wires; 0.3-1.2 px wide, partially covering their
                pixels) on layers whose |CoC| is 0.15-3 px, around an in-focus head,
                against a dark or a bright (possibly clipped) background; rim-lit strands
                reach 0.5-2x the clip, dark ones 0.02-0.15.
``receding``    continuous surfaces receding through focus: a textured ground plane
                (tiles in perspective) from 0.8-2.5 m at the frame bottom to the horizon,
                a wall plane receding sideways, a far background and sky; a subject
                standing on the ground; per-pixel depth order between the planes.
``depth8``      scenes of the other families whose depth reaches the renderer as 8-bit
                disparity, mostly JPEG-compressed (quality 75-95); half of them receding.

Physical assumptions common to all: surfaces are opaque (alpha is coverage only:
antialiased edges and strands thinner than a pixel), Lambertian-free of view
dependence (a surface shows the same radiance to every aperture point), no
atmosphere; the lens is a thin lens with a disk or regular-polygon aperture,
focal length 35-200 mm and a full-frame or APS-C sensor, f-number solved for the
drawn largest |CoC| (the range each family draws from is ``Family.max_coc_range``).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from .layered import choose_lens, random_scene
from .model import Layer, Scene
from .shapes import _add_shape, _alpha_from_sdf, _blob_sdf, _ellipse_sdf, _rect_sdf, _smooth_noise, _texture


#: Saturated linear colours: the brightest channel is 1, another near 0.
SATURATED = {
    "yellow": (1.0, 0.72, 0.02),
    "magenta": (1.0, 0.03, 0.75),
    "green": (0.08, 1.0, 0.05),
    "red": (1.0, 0.04, 0.03),
    "orange": (1.0, 0.3, 0.01),
    "cyan": (0.02, 0.75, 1.0),
    "blue": (0.05, 0.2, 1.0),
    "purple": (0.45, 0.03, 1.0),
}
#: Colours of coloured lights (linear, brightest channel 1).
LIGHT_COLORS = {
    "sodium": (1.0, 0.5, 0.12),
    "red": (1.0, 0.1, 0.06),
    "green": (0.12, 1.0, 0.3),
    "blue": (0.2, 0.45, 1.0),
    "amber": (1.0, 0.7, 0.2),
    "magenta": (1.0, 0.15, 0.8),
}
_WARM_WHITE = (1.0, 0.86, 0.62)


# ---------------------------------------------------------------- helpers


class _Canvas:
    """Canvas geometry: frame (h, w) padded by ``pad``; coordinates are canvas pixels."""

    def __init__(self, h: int, w: int, pad: int):
        self.h, self.w, self.pad = h, w, pad
        self.ch, self.cw = h + 2 * pad, w + 2 * pad
        self.yy, self.xx = np.mgrid[0 : self.ch, 0 : self.cw].astype(np.float64)

    def fx(self, u: float) -> float:
        """Canvas x of the frame fraction u (0 = left edge, 1 = right edge)."""
        return self.pad + u * self.w

    def fy(self, v: float) -> float:
        return self.pad + v * self.h

    def empty(self) -> np.ndarray:
        return np.zeros((self.ch, self.cw, 4))

    def opaque(self, rgb) -> np.ndarray:
        rgba = np.ones((self.ch, self.cw, 4))
        rgba[..., :3] = rgb
        return rgba


def _window(c: _Canvas, x0, x1, y0, y1):
    """Canvas slices of the box [x0, x1] x [y0, y1] (clipped)."""
    xs = slice(max(int(math.floor(x0)), 0), min(int(math.ceil(x1)) + 1, c.cw))
    ys = slice(max(int(math.floor(y0)), 0), min(int(math.ceil(y1)) + 1, c.ch))
    return ys, xs


def _add_light(c: _Canvas, rgba: np.ndarray, cx: float, cy: float, radius: float, radiance) -> None:
    """An emitting disc of ``radius`` px (antialiased): adds radiance where it covers,
    and makes the layer opaque there (a light on a transparent layer is an object)."""
    ys, xs = _window(c, cx - radius - 2, cx + radius + 2, cy - radius - 2, cy + radius + 2)
    cov = _alpha_from_sdf(np.hypot(c.xx[ys, xs] - cx, c.yy[ys, xs] - cy) - radius)
    sub = rgba[ys, xs]
    a = cov[..., None]
    # Over: the light's own (premultiplied) radiance in front of what the layer had there.
    sub[..., :3] = np.asarray(radiance, np.float64) * a + sub[..., :3] * (1 - a)
    sub[..., 3:] = a + sub[..., 3:] * (1 - a)


def _polyline_sdf(c: _Canvas, pts: np.ndarray, half_width: float):
    """(ys, xs, sdf) of a polyline of ``pts`` (n, 2) within its bounding box."""
    m = half_width + 2.0
    ys, xs = _window(c, pts[:, 0].min() - m, pts[:, 0].max() + m, pts[:, 1].min() - m, pts[:, 1].max() + m)
    xx, yy = c.xx[ys, xs], c.yy[ys, xs]
    sdf = np.full(xx.shape, np.inf)
    for p0, p1 in zip(pts[:-1], pts[1:]):
        d = p1 - p0
        t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / max(d @ d, 1e-12), 0, 1)
        sdf = np.minimum(sdf, np.hypot(xx - p0[0] - t * d[0], yy - p0[1] - t * d[1]))
    return ys, xs, sdf - half_width


def _add_strand(c: _Canvas, rgba: np.ndarray, pts: np.ndarray, half_width: float, radiance) -> None:
    """A thin strand along ``pts``: coverage from the exact distance (a strand thinner
    than a pixel covers it partially), composited over the layer."""
    if pts[:, 0].max() < -5 or pts[:, 0].min() > c.cw + 5 or pts[:, 1].max() < -5 or pts[:, 1].min() > c.ch + 5:
        return
    ys, xs, sdf = _polyline_sdf(c, pts, half_width)
    if sdf.size == 0:
        return
    # Coverage of a pixel (a 1-px box across the strand) by a strip of width 2 hw:
    # 1-D overlap of [dist - 1/2, dist + 1/2] with [-hw, hw]; 2 hw on the axis of a
    # strand thinner than a pixel, the usual 1-px ramp for wider ones.
    dist = sdf + half_width
    a = np.clip(np.minimum(dist + 0.5, half_width) - np.maximum(dist - 0.5, -half_width), 0.0, 1.0)[..., None]
    sub = rgba[ys, xs]
    sub[..., :3] = np.asarray(radiance, np.float64) * a + sub[..., :3] * (1 - a)
    sub[..., 3:] = a + sub[..., 3:] * (1 - a)


def _bezier(p0, p1, p2, n: int = 24) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t * t * np.asarray(p2)


def _grain(rng, c: _Canvas, amount: float = 0.15) -> np.ndarray:
    """Multiplicative fine grain (ch, cw, 1) around 1."""
    return 1.0 + amount * (_smooth_noise(rng, c.ch, c.cw, 2.0, octaves=1)[..., None] - 0.5)


def _blades(rng) -> tuple[int, float]:
    blades = int(rng.choice((0, 0, 0, 6, 8)))
    return blades, (float(rng.uniform(0, 360.0 / blades)) if blades else 0.0)


def _log_uniform(rng, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(math.log(lo), math.log(hi))))


def _finish(rng, c: _Canvas, layers: list[Layer], focus_m: float, r_target: float, seed: int, family: str,
            focus_role: str, info: dict | None = None) -> Scene:
    """Pick the lens for the drawn largest |CoC| and assemble the scene."""
    qf = 1.0 / focus_m
    spread = 0.0
    for layer in layers:
        if layer.is_planar_slanted:
            ys, xs = np.nonzero(layer.rgba[..., 3] > 0)
            q = layer.inverse_depth(xs, ys, c.pad)
            spread = max(spread, float(np.abs(q / qf - 1.0).max()))
        else:
            spread = max(spread, abs((1.0 / layer.depth_m) / qf - 1.0))
    f_number, focal, sensor = choose_lens(rng, focus_m, spread, r_target, c.w)
    blades, rotation = _blades(rng)
    layers = [Layer(layer.depth_m, layer.rgba.astype(np.float32), layer.role, layer.slope, layer.anchor)
              for layer in layers]
    scene = Scene(layers=layers, height=c.h, width=c.w, pad=c.pad, focus_m=float(focus_m),
                  f_number=float(f_number), focal_length_mm=float(focal), sensor_width_mm=float(sensor),
                  blades=blades, rotation_deg=rotation, seed=seed, focus_role=focus_role, family=family)
    scene.info = {"n_layers": len(layers), "max_coc": scene.max_coc, **(info or {})}
    return scene


def _k_of(focus_m: float, f_number: float, focal: float, sensor: float, width: int) -> float:
    """CoC scale k: r = k (z_f / z - 1)."""
    return focal * focal / (2.0 * f_number * (focus_m * 1000.0 - focal)) / (sensor / width)


def _person(rng, c: _Canvas, rgba: np.ndarray, cx: float, head_y: float, head_r: float, skin, clothes,
            feet_y: float | None = None) -> None:
    """Head, neck and torso (textured ``clothes`` (ch, cw, 3)), down to ``feet_y`` or the canvas bottom."""
    bottom = c.ch + 2 if feet_y is None else feet_y
    top = head_y + 0.8 * head_r
    torso = _rect_sdf(c.xx, c.yy, cx, (top + bottom) / 2, rng.uniform(1.4, 2.1) * head_r, (bottom - top) / 2,
                      0.0, round_px=0.7 * head_r)
    head = _ellipse_sdf(c.xx, c.yy, cx, head_y, head_r * rng.uniform(0.8, 0.92), head_r)
    neck = _rect_sdf(c.xx, c.yy, cx, head_y + head_r, 0.4 * head_r, 0.6 * head_r)
    _add_shape(rgba, _alpha_from_sdf(torso), clothes)
    _add_shape(rgba, _alpha_from_sdf(np.minimum(head, neck)), skin)


def _skin(rng, c: _Canvas, level: float = 1.0) -> np.ndarray:
    base = np.array([0.55, 0.33, 0.22]) * rng.uniform(0.3, 1.0) * level
    shade = 0.75 + 0.4 * _smooth_noise(rng, c.ch, c.cw, rng.uniform(6, 16))
    return base * shade[..., None] * _grain(rng, c, 0.08)


# ----------------------------------------------------------------- saturated


def saturated_scene(seed: int, height: int = 192, width: int = 256, max_coc_range=(6.0, 20.0)) -> Scene:
    """Saturated colour fields and gradients; no light sources (see the module doc)."""
    rng = np.random.default_rng((seed, _tag("saturated")))
    r_target = float(rng.uniform(*max_coc_range))
    c = _Canvas(height, width, int(math.ceil(r_target)) + 4)
    names = list(SATURATED)

    def sat_field(exposure_lo=0.8, exposure_hi=1.35):
        """A gradient through 2-3 saturated colours, shaded, brightest channel near the clip."""
        picks = [np.array(SATURATED[names[i]]) for i in rng.choice(len(names), int(rng.integers(2, 4)), False)]
        ang = rng.uniform(0, 2 * math.pi)
        u = c.xx * math.cos(ang) + c.yy * math.sin(ang)
        t = (u - u.min()) / max(u.max() - u.min(), 1e-9) * (len(picks) - 1)
        k = np.clip(np.floor(t).astype(int), 0, len(picks) - 2)
        f = (t - k)[..., None]
        col = np.stack(picks)
        rgb = col[k] * (1 - f) + col[k + 1] * f
        exposure = rng.uniform(exposure_lo, exposure_hi)
        shade = 0.8 + 0.25 * _smooth_noise(rng, c.ch, c.cw, rng.uniform(10, 40))
        return rgb * exposure * shade[..., None] * _grain(rng, c, 0.1)

    z_bg = _log_uniform(rng, 4.0, 15.0)
    z_subject = _log_uniform(rng, 1.2, min(3.0, z_bg / 1.5))
    layers = [Layer(z_bg, c.opaque(sat_field()), "background")]
    if rng.random() < 0.6:  # saturated objects (flowers, balloons, signs) between
        z_mid = _log_uniform(rng, z_subject * 1.3, z_bg / 1.3)
        mid = c.empty()
        for _ in range(int(rng.integers(2, 6))):
            name = names[int(rng.integers(len(names)))]
            col = np.array(SATURATED[name]) * rng.uniform(0.8, 1.3)
            tex = col * (0.75 + 0.3 * _smooth_noise(rng, c.ch, c.cw, rng.uniform(4, 12)))[..., None]
            cx, cy = c.fx(rng.uniform(0.05, 0.95)), c.fy(rng.uniform(0.05, 0.95))
            sdf = (_blob_sdf(rng, c.xx, c.yy, cx, cy, rng.uniform(0.06, 0.18) * height) if rng.random() < 0.6
                   else _rect_sdf(c.xx, c.yy, cx, cy, rng.uniform(0.05, 0.2) * width, rng.uniform(0.04, 0.15) * height,
                                  rng.uniform(0, math.pi)))
            _add_shape(mid, _alpha_from_sdf(sdf), tex)
        layers.append(Layer(z_mid, mid, "mid"))
    subject = c.empty()
    jacket = np.array(SATURATED[rng.choice(["red", "yellow", "green", "magenta", "orange", "blue"])])
    folds = 0.6 + 0.45 * _smooth_noise(rng, c.ch, c.cw, rng.uniform(5, 14))
    clothes = jacket * rng.uniform(0.85, 1.35) * folds[..., None] * _grain(rng, c, 0.1)
    _person(rng, c, subject, c.fx(rng.uniform(0.3, 0.7)), c.fy(rng.uniform(0.25, 0.45)),
            rng.uniform(0.1, 0.15) * height, _skin(rng, c), clothes)
    layers.append(Layer(z_subject, subject, "subject"))
    if rng.random() < 0.5:  # out-of-focus saturated foliage in front
        z_fg = _log_uniform(rng, 0.5, z_subject / 1.4)
        fg = c.empty()
        leaf = np.array(SATURATED[rng.choice(["green", "yellow", "magenta"])])
        for _ in range(int(rng.integers(1, 3))):
            cx = c.fx(float(rng.choice([0.0, 1.0])))
            sdf = _blob_sdf(rng, c.xx, c.yy, cx, c.fy(rng.uniform(0, 1)), rng.uniform(0.1, 0.3) * height)
            tex = leaf * rng.uniform(0.8, 1.3) * (0.7 + 0.35 * _smooth_noise(rng, c.ch, c.cw, 5.0))[..., None]
            _add_shape(fg, _alpha_from_sdf(sdf), tex)
        layers.append(Layer(z_fg, fg, "foreground"))
    u = rng.random()
    focus_idx = next(i for i, layer in enumerate(layers) if layer.role == "subject") if u < 0.55 else (
        0 if u < 0.8 else int(rng.integers(len(layers))))
    return _finish(rng, c, layers, layers[focus_idx].depth_m, r_target, seed, "saturated", layers[focus_idx].role)


# ------------------------------------------------------------------- clipped


def clipped_scene(seed: int, height: int = 192, width: int = 256, max_coc_range=(6.0, 22.0)) -> Scene:
    """Large clipped areas: over-exposed sky or a white wall (see the module doc)."""
    rng = np.random.default_rng((seed, _tag("clipped")))
    r_target = float(rng.uniform(*max_coc_range))
    c = _Canvas(height, width, int(math.ceil(r_target)) + 4)
    z_bg = _log_uniform(rng, 8.0, 30.0)
    wall = rng.random() < 0.4
    bg = c.opaque(_texture(rng, c.ch, c.cw) * rng.uniform(0.2, 0.6))
    if wall:
        level = _log_uniform(rng, 1.02, 2.0)  # the wall's dimmest channel, darkest spot
        tint = np.array([1.0, rng.uniform(0.93, 1.0), rng.uniform(0.85, 1.0)])
        wall_rgb = tint * (0.92 + 0.1 * _smooth_noise(rng, c.ch, c.cw, 40.0))[..., None]
        floor_y = c.fy(rng.uniform(0.75, 0.95))
        _add_shape(bg, np.clip(floor_y - c.yy + 0.5, 0, 1), wall_rgb * (level / wall_rgb.min()))
        for _ in range(int(rng.integers(1, 5))):  # windows / doors / pictures
            sdf = _rect_sdf(c.xx, c.yy, c.fx(rng.uniform(0.05, 0.95)), c.fy(rng.uniform(0.1, 0.7)),
                            rng.uniform(0.04, 0.12) * width, rng.uniform(0.05, 0.18) * height)
            _add_shape(bg, _alpha_from_sdf(sdf), _texture(rng, c.ch, c.cw) * rng.uniform(0.05, 0.5))
        info = {"clipped": "wall", "level": level}
    else:
        level = _log_uniform(rng, 1.02, 4.0)  # the sky's dimmest channel at its darkest (lowest) point
        sky = np.array([rng.uniform(0.85, 1.0), rng.uniform(0.92, 1.0), 1.0]) * (
            1.0 - 0.12 * (c.yy - c.pad) / height)[..., None]
        horizon = c.fy(rng.uniform(0.35, 0.7)) + 0.12 * height * (_smooth_noise(rng, 1, c.cw, 25.0)[0] - 0.5)
        _add_shape(bg, np.clip(horizon[None, :] - c.yy + 0.5, 0, 1), sky * (level / sky.min()))
        info = {"clipped": "sky", "level": level}
    layers = [Layer(z_bg, bg, "background")]
    z_subject = _log_uniform(rng, 1.5, 4.0)
    if rng.random() < 0.75:  # dark branches, poles and wires in front of the bright area
        z_mid = _log_uniform(rng, z_subject * 1.3, z_bg / 1.3)
        mid = c.empty()
        for _ in range(int(rng.integers(2, 6))):
            if rng.random() < 0.6:  # a branch or pole rising from below
                x0 = c.fx(rng.uniform(-0.1, 1.1))
                pts = _bezier((x0, c.fy(1.1)), (x0 + rng.uniform(-0.3, 0.3) * width, c.fy(rng.uniform(0.4, 0.8))),
                              (x0 + rng.uniform(-0.5, 0.5) * width, c.fy(rng.uniform(-0.1, 0.5))))
            else:  # a sagging wire across the frame
                y0 = c.fy(rng.uniform(0.0, 0.6))
                pts = _bezier((c.fx(-0.1), y0), (c.fx(rng.uniform(0.3, 0.7)), y0 + rng.uniform(0.0, 0.3) * height),
                              (c.fx(1.1), y0 + rng.uniform(-0.2, 0.2) * height), 40)
            col = np.array([0.03, 0.025, 0.02]) * rng.uniform(0.5, 3.0)
            _add_strand(c, mid, pts, rng.uniform(0.5, 4.0), col)
        layers.append(Layer(z_mid, mid, "mid"))
    subject = c.empty()
    shirt = _texture(rng, c.ch, c.cw)
    if rng.random() < 0.5:  # a white shirt over the clip
        shirt = np.array([1.0, 1.0, 0.97]) * _log_uniform(rng, 0.9, 1.5) * (
            0.85 + 0.2 * _smooth_noise(rng, c.ch, c.cw, 8.0))[..., None]
    _person(rng, c, subject, c.fx(rng.uniform(0.25, 0.75)), c.fy(rng.uniform(0.3, 0.5)),
            rng.uniform(0.09, 0.14) * height, _skin(rng, c), shirt)
    layers.append(Layer(z_subject, subject, "subject"))
    u = rng.random()
    focus_idx = len(layers) - 1 if u < 0.5 else (0 if u < 0.75 else int(rng.integers(len(layers))))
    return _finish(rng, c, layers, layers[focus_idx].depth_m, r_target, seed, "clipped", layers[focus_idx].role, info)


# -------------------------------------------------------------------- lights


def _light_color(rng):
    """(colour name, radiance scale) of a coloured light clipped in one or two channels."""
    name = list(LIGHT_COLORS)[int(rng.integers(len(LIGHT_COLORS)))]
    col = np.array(LIGHT_COLORS[name])
    second = np.sort(col)[-2]
    if rng.random() < 0.5:  # one channel clipped: the second-brightest stays under the clip
        intensity = _log_uniform(rng, 1.2, max(1.3, min(0.95 / second, 30.0)))
    else:  # two channels clipped
        lo = max(1.5, 1.1 / second)
        intensity = _log_uniform(rng, lo, max(3.0 * lo, 40.0))
    return col * intensity


def _fairy_string(rng, c: _Canvas, rgba: np.ndarray, multicolour: bool) -> int:
    """A sagging string of small lights; returns how many it holds."""
    x0, x1 = c.fx(rng.uniform(-0.1, 0.5)), c.fx(rng.uniform(0.5, 1.1))
    y0, y1 = c.fy(rng.uniform(0.05, 0.6)), c.fy(rng.uniform(0.05, 0.6))
    sag = rng.uniform(0.05, 0.25) * c.h
    spacing = rng.uniform(3.0, 9.0)
    n = max(3, int(math.hypot(x1 - x0, y1 - y0) / spacing))
    t = np.linspace(0, 1, n)
    xs = x0 + (x1 - x0) * t
    ys = y0 + (y1 - y0) * t + 4 * sag * t * (1 - t)
    base = _log_uniform(rng, 2.0, 20.0)
    for x, y in zip(xs, ys):
        col = np.array(LIGHT_COLORS[list(LIGHT_COLORS)[int(rng.integers(len(LIGHT_COLORS)))]]) if multicolour \
            else np.array(_WARM_WHITE)
        _add_light(c, rgba, x + rng.normal(0, 0.3), y + rng.normal(0, 0.3), rng.uniform(0.4, 1.0),
                   col * base * rng.uniform(0.7, 1.3))
    return n


def lights_scene(seed: int, height: int = 192, width: int = 256, max_coc_range=(6.0, 25.0)) -> Scene:
    """HDR lights: white, coloured, fairy strings, lamps (see the module doc)."""
    rng = np.random.default_rng((seed, _tag("lights")))
    r_target = float(rng.uniform(*max_coc_range))
    c = _Canvas(height, width, int(math.ceil(r_target)) + 4)
    dark = rng.random() < 0.5
    surround = rng.uniform(0.004, 0.05) if dark else rng.uniform(0.1, 0.45)
    z_bg = _log_uniform(rng, 6.0, 30.0)
    bg = c.opaque(_texture(rng, c.ch, c.cw) / 0.85 * surround)
    n_white = int(rng.integers(3, 11))
    for _ in range(n_white):
        tint = np.array([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.7, 1.0)])
        _add_light(c, bg, c.fx(rng.uniform(-0.05, 1.05)), c.fy(rng.uniform(-0.05, 1.05)), rng.uniform(0.4, 1.5),
                   tint * _log_uniform(rng, 1.5, 60.0))
    n_col = int(rng.integers(2, 9))
    for _ in range(n_col):
        _add_light(c, bg, c.fx(rng.uniform(-0.05, 1.05)), c.fy(rng.uniform(-0.05, 1.05)), rng.uniform(0.4, 1.5),
                   _light_color(rng))
    n_fairy = 0
    for _ in range(int(rng.integers(1, 3))):
        n_fairy += _fairy_string(rng, c, bg, rng.random() < 0.4)
    for _ in range(int(rng.integers(0, 3))):  # lamps
        _add_light(c, bg, c.fx(rng.uniform(0.05, 0.95)), c.fy(rng.uniform(0.05, 0.7)), rng.uniform(2.0, 5.0),
                   np.array(_WARM_WHITE) * _log_uniform(rng, 1.5, 8.0))
    layers = [Layer(z_bg, bg, "background")]
    z_subject = _log_uniform(rng, 1.0, 3.0)
    if rng.random() < 0.5:  # a mid layer: a building with lit windows, or more fairy lights
        z_mid = _log_uniform(rng, z_subject * 1.4, z_bg / 1.4)
        mid = c.empty()
        if rng.random() < 0.5:
            bx, bw = c.fx(rng.uniform(0.0, 0.6)), rng.uniform(0.2, 0.45) * width
            top = c.fy(rng.uniform(0.1, 0.5))
            sdf = _rect_sdf(c.xx, c.yy, bx + bw / 2, (top + c.ch) / 2, bw / 2, (c.ch - top) / 2)
            _add_shape(mid, _alpha_from_sdf(sdf), _texture(rng, c.ch, c.cw) / 0.85 * surround * 1.5)
            for wy in np.arange(top + 5, c.ch - 4, rng.uniform(7, 14)):
                for wx in np.arange(bx + 4, bx + bw - 4, rng.uniform(6, 12)):
                    if rng.random() < 0.35:
                        _add_light(c, mid, wx, wy, rng.uniform(1.0, 2.5),
                                   np.array(_WARM_WHITE) * _log_uniform(rng, 1.2, 6.0))
        else:
            n_fairy += _fairy_string(rng, c, mid, rng.random() < 0.5)
        layers.append(Layer(z_mid, mid, "mid"))
    subject = c.empty()
    clothes = _texture(rng, c.ch, c.cw) * (0.4 if dark else 1.0)
    _person(rng, c, subject, c.fx(rng.uniform(0.2, 0.8)), c.fy(rng.uniform(0.3, 0.5)),
            rng.uniform(0.09, 0.15) * height, _skin(rng, c, 0.6 if dark else 1.0), clothes)
    layers.append(Layer(z_subject, subject, "subject"))
    u = rng.random()
    focus_idx = len(layers) - 1 if u < 0.55 else (0 if u < 0.8 else int(rng.integers(len(layers))))
    info = {"surround": "dark" if dark else "mid", "white": n_white, "coloured": n_col, "fairy": n_fairy}
    return _finish(rng, c, layers, layers[focus_idx].depth_m, r_target, seed, "lights", layers[focus_idx].role, info)


# ------------------------------------------------------------------- strands


def strands_scene(seed: int, height: int = 192, width: int = 256, max_coc_range=(8.0, 25.0)) -> Scene:
    """Thin strands (hair, wires) within 3 px of focus around an in-focus head."""
    rng = np.random.default_rng((seed, _tag("strands")))
    r_target = float(rng.uniform(*max_coc_range))
    c = _Canvas(height, width, int(math.ceil(r_target)) + 4)
    dark = rng.random() < 0.5
    z_bg = _log_uniform(rng, 4.0, 20.0)
    if dark:
        bg_rgb = _texture(rng, c.ch, c.cw) / 0.85 * rng.uniform(0.005, 0.06)
    else:
        bg_rgb = _texture(rng, c.ch, c.cw) * 0.4 + rng.uniform(0.3, 0.7)
        if rng.random() < 0.4:  # bright sky just over the clip
            bg_rgb = bg_rgb / bg_rgb.max() * rng.uniform(1.0, 1.5)
    bg = c.opaque(bg_rgb)
    z_subject = _log_uniform(rng, 0.8, min(3.0, z_bg / 2.0))
    # The lens first (the head is in focus, the background at r_target), then the strand
    # layers at the depths giving their drawn CoC.
    focus_m = z_subject
    f_number, focal, sensor = choose_lens(rng, focus_m, abs(focus_m / z_bg - 1.0), r_target, width)
    k = _k_of(focus_m, f_number, focal, sensor, width)
    head_r = rng.uniform(0.13, 0.2) * height
    hx, hy = c.fx(rng.uniform(0.35, 0.65)), c.fy(rng.uniform(0.35, 0.55))
    subject = c.empty()
    hair_col = np.array([0.55, 0.4, 0.25]) * rng.uniform(0.05, 0.8)
    clothes = _texture(rng, c.ch, c.cw) * (0.5 if dark else 1.0)
    _person(rng, c, subject, hx, hy, head_r, _skin(rng, c, 0.7 if dark else 1.0), clothes)
    layers = [Layer(z_bg, bg, "background")]
    cocs = sorted({round(float(s * rng.uniform(0.15, 3.0)), 3) for s in rng.choice([-1, 1], int(rng.integers(2, 4)))})
    strand_layers = []
    for r in cocs:  # negative CoC = behind the head
        rgba = c.empty()
        for _ in range(int(rng.integers(10, 35))):
            ang = rng.uniform(0, 2 * math.pi)
            start = (hx + head_r * 0.9 * math.cos(ang), hy + head_r * 0.95 * math.sin(ang))
            length = rng.uniform(0.3, 1.0) * head_r * 1.6
            out = ang + rng.uniform(-0.8, 0.8)
            end = (start[0] + length * math.cos(out), start[1] + length * math.sin(out) + rng.uniform(0, 0.5) * length)
            mid = ((start[0] + end[0]) / 2 + rng.normal(0, 0.25 * length),
                   (start[1] + end[1]) / 2 + rng.normal(0, 0.25 * length))
            if dark or rng.random() < 0.3:  # rim-lit hair
                col = np.array([1.0, 0.86, 0.62]) * _log_uniform(rng, 0.5, 2.0)
            else:
                col = hair_col * rng.uniform(0.5, 1.5)
            _add_strand(c, rgba, _bezier(start, mid, end), rng.uniform(0.15, 0.6), col)
        if rng.random() < 0.5:  # a wire across the frame
            y0 = c.fy(rng.uniform(0.05, 0.95))
            pts = _bezier((c.fx(-0.1), y0), (c.fx(0.5), y0 + rng.uniform(-0.2, 0.3) * height),
                          (c.fx(1.1), y0 + rng.uniform(-0.3, 0.3) * height), 40)
            col = (np.array([1.0, 0.97, 0.9]) * _log_uniform(rng, 0.8, 2.5) if rng.random() < 0.6
                   else np.array([0.03, 0.03, 0.03]))
            _add_strand(c, rgba, pts, rng.uniform(0.25, 0.75), col)
        strand_layers.append((focus_m / (1.0 + r / k), rgba, r))
    # In-focus strands on the head's own layer.
    for _ in range(int(rng.integers(5, 20))):
        ang = rng.uniform(math.pi, 2 * math.pi)
        start = (hx + head_r * 0.85 * math.cos(ang), hy + head_r * 0.9 * math.sin(ang))
        end = (start[0] + rng.uniform(-0.6, 0.6) * head_r, start[1] - rng.uniform(0.1, 0.5) * head_r)
        col = np.array([1.0, 0.86, 0.62]) * _log_uniform(rng, 0.4, 1.6) if dark else hair_col
        _add_strand(c, subject, _bezier(start, ((start[0] + end[0]) / 2 + rng.normal(0, 4), end[1] - 3), end),
                    rng.uniform(0.15, 0.5), col)
    behind = [s for s in strand_layers if s[2] < 0]
    front = [s for s in strand_layers if s[2] > 0]
    for z, rgba, r in behind:
        layers.append(Layer(z, rgba, "strands"))
    layers.append(Layer(z_subject, subject, "subject"))
    for z, rgba, r in front:
        layers.append(Layer(z, rgba, "strands"))
    blades, rotation = _blades(rng)
    layers = [Layer(layer.depth_m, layer.rgba.astype(np.float32), layer.role) for layer in layers]
    scene = Scene(layers=layers, height=height, width=width, pad=c.pad, focus_m=float(focus_m),
                  f_number=float(f_number), focal_length_mm=float(focal), sensor_width_mm=float(sensor),
                  blades=blades, rotation_deg=rotation, seed=seed, focus_role="subject", family="strands")
    scene.info = {"n_layers": len(layers), "max_coc": scene.max_coc, "background": "dark" if dark else "bright",
                  "strand_cocs": cocs}
    return scene


# ------------------------------------------------------------------ receding


def _supersampled(fn, c: _Canvas, n: int = 4) -> np.ndarray:
    """Box-filtered (n x n supersampled) pattern ``fn(x, y)`` over the canvas."""
    acc = None
    for i in range(n):
        for j in range(n):
            v = fn(c.xx + (i + 0.5) / n - 0.5, c.yy + (j + 0.5) / n - 0.5)
            acc = v if acc is None else acc + v
    return acc / (n * n)


def receding_scene(seed: int, height: int = 192, width: int = 256, max_coc_range=(6.0, 20.0)) -> Scene:
    """A ground plane (and a side wall) receding through focus (see the module doc)."""
    rng = np.random.default_rng((seed, _tag("receding")))
    r_target = float(rng.uniform(*max_coc_range))
    c = _Canvas(height, width, int(math.ceil(r_target)) + 4)
    y_h = c.fy(rng.uniform(0.12, 0.45))  # horizon (canvas y)
    x_v = c.fx(rng.uniform(0.3, 0.7))  # vanishing point
    z_near = _log_uniform(rng, 0.8, 2.5)  # ground depth at the canvas bottom
    z_end = _log_uniform(rng, 25.0, 60.0)  # the ground ends there (then far background)
    y_bottom = c.ch - 1.0
    s_g = (1.0 / z_near) / (y_bottom - y_h)  # d(1/z)/dy on the ground
    y_end = y_h + (1.0 / z_end) / s_g
    # Sky (infinitely far) and a far background band (hills, buildings) above the ground's end.
    sky_level = rng.uniform(0.3, 1.6)
    sky = c.opaque(np.array([0.55, 0.7, 1.0]) * sky_level * (0.85 + 0.2 * _smooth_noise(rng, c.ch, c.cw, 30.0))[
        ..., None])
    layers = [Layer(math.inf, sky, "sky")]
    far = c.empty()
    ridge = y_end - rng.uniform(0.05, 0.2) * height + 0.08 * height * (_smooth_noise(rng, 1, c.cw, 20.0)[0] - 0.5)
    _add_shape(far, np.clip(c.yy - ridge[None, :] + 0.5, 0, 1), _texture(rng, c.ch, c.cw) * rng.uniform(0.2, 0.8))
    n_lamps = 0
    if rng.random() < 0.5:  # distant lights along the far band
        for _ in range(int(rng.integers(3, 10))):
            x = c.fx(rng.uniform(0, 1))
            _add_light(c, far, x, rng.uniform(ridge[int(np.clip(x, 0, c.cw - 1))] + 2, y_end + 2),
                       rng.uniform(0.4, 1.2), np.array(_WARM_WHITE) * _log_uniform(rng, 1.5, 20.0))
            n_lamps += 1
    layers.append(Layer(_log_uniform(rng, 80.0, 300.0), far, "far"))
    # Ground: tiles in perspective (x_w = (x - x_v) z / f_px, z), box-filtered.
    tile = rng.uniform(0.3, 1.2)  # metres
    f_px = rng.uniform(0.8, 2.0) * width  # only shapes the texture
    c0, c1 = np.exp(rng.uniform(math.log(0.03), math.log(0.6), 3)), np.exp(rng.uniform(math.log(0.03), math.log(0.6), 3))

    def tiles(x, y):
        q = np.maximum((y - y_h) * s_g, 1e-6)
        z = 1.0 / q
        xw = (x - x_v) * z / f_px
        return ((np.floor(xw / tile) + np.floor(z / tile)) % 2).astype(np.float64)

    t = _supersampled(tiles, c)[..., None]
    ground_rgb = (c0 * (1 - t) + c1 * t) * (0.8 + 0.35 * _smooth_noise(rng, c.ch, c.cw, 12.0))[..., None]
    ground = c.opaque(ground_rgb * _grain(rng, c, 0.2))
    ground[..., 3] = np.clip(c.yy - y_end + 0.5, 0, 1)
    ground[..., :3] *= ground[..., 3:]
    frame_y_bottom = y_bottom - c.pad
    layers.append(Layer(z_near, ground, "ground", slope=(0.0, s_g), anchor=(0.0, frame_y_bottom)))
    info = {"horizon_y": y_h - c.pad, "z_near": z_near}
    if rng.random() < 0.5:  # a wall receding sideways, on the left or right of the vanishing point
        side = -1.0 if rng.random() < 0.5 else 1.0
        edge_x = c.fx(0.0) if side < 0 else c.fx(1.0)
        z_wall = _log_uniform(rng, 1.2, 4.0)  # wall depth at the frame edge
        s_w = (1.0 / z_wall) / abs(edge_x - x_v) * side  # q grows towards the frame edge
        x_stop = x_v + side * rng.uniform(0.15, 0.35) * width  # the wall ends (a corner)
        wall = c.empty()
        region = np.clip((c.xx - x_stop) * side + 0.5, 0, 1)
        brick_h = rng.uniform(0.1, 0.3)
        wall_c0 = np.exp(rng.uniform(math.log(0.05), math.log(0.7), 3))

        def bricks(x, y):
            q = np.maximum((x - x_v) * s_w, 1e-6)
            z = 1.0 / q
            yw = (y - y_h) * z / f_px
            row = np.floor(yw / brick_h)
            col = np.floor(z / (2.5 * brick_h) + 0.5 * (row % 2))
            mortar = (np.abs(yw / brick_h - np.round(yw / brick_h)) < 0.08).astype(np.float64)
            return np.where(mortar > 0, 1.0, 0.3 * ((row + col) % 3) / 2.0)

        b = _supersampled(bricks, c)[..., None]
        wall_rgb = wall_c0 * (1.0 - 0.5 * b) + 0.5 * b * np.array([0.6, 0.58, 0.55])
        wall[..., :3] = wall_rgb * region[..., None] * _grain(rng, c, 0.2)
        wall[..., 3] = region
        layers.append(Layer(z_wall, wall, "wall", slope=(s_w, 0.0), anchor=(edge_x - c.pad, 0.0)))
        info["wall"] = "left" if side < 0 else "right"
    z_subject = None
    if rng.random() < 0.7:  # a person standing on the ground
        z_subject = _log_uniform(rng, max(z_near * 1.5, 1.5), min(12.0, z_end / 2))
        feet = y_h + (1.0 / z_subject) / s_g
        person_h = rng.uniform(0.4, 0.7) * height * (3.0 / z_subject) ** 0.5
        head_r = person_h * 0.12
        subject = c.empty()
        lo, hi = c.fx(0.15), c.fx(0.85)
        if info.get("wall") == "left":  # keep the person in view, clear of the wall
            lo = max(lo, x_stop + 1.5 * head_r)
        elif info.get("wall") == "right":
            hi = min(hi, x_stop - 1.5 * head_r)
        _person(rng, c, subject, rng.uniform(lo, max(lo, hi)), feet - person_h + head_r, head_r, _skin(rng, c),
                _texture(rng, c.ch, c.cw), feet_y=feet)
        layers.append(Layer(z_subject, subject, "subject"))
    u = rng.random()
    if z_subject is not None and u < 0.5:
        focus_m, role = z_subject, "subject"
    else:  # a point on the ground between the bottom and 40 % of the way to the horizon
        frac = rng.uniform(0.3, 0.8)
        y_focus = y_h + frac * (c.fy(1.0) - y_h)
        focus_m, role = 1.0 / ((y_focus - y_h) * s_g), "ground"
    info["n_lamps"] = n_lamps
    return _finish(rng, c, layers, focus_m, r_target, seed, "receding", role, info)


# -------------------------------------------------------------------- depth8


def depth8_scene(seed: int, height: int = 192, width: int = 256, max_coc_range=(6.0, 20.0)) -> Scene:
    """A scene of another family whose depth reaches the renderer as 8-bit (JPEG) disparity."""
    rng = np.random.default_rng((seed, _tag("depth8")))
    base = ["receding", "layered", "receding", "strands", "receding", "lights", "receding", "saturated"][seed % 8]
    gen = FAMILIES[base].generator
    scene = gen(1000 + seed, height, width, max_coc_range) if base != "layered" else random_scene(
        1000 + seed, height=height, width=width, max_coc_range=max_coc_range)
    quality = [None, 75, 85, 90, 95][int(rng.integers(5))]
    scene.delivery = {"kind": "disparity8", "jpeg_quality": quality}
    scene.family = "depth8"
    scene.info = {**scene.info, "base": base, "jpeg_quality": quality}
    return scene


# ------------------------------------------------------------------ registry


def _tag(name: str) -> int:
    return zlib.crc32(name.encode())


@dataclass(frozen=True)
class Family:
    """A scene family: ``generator(seed, height, width, max_coc_range) -> Scene``."""

    name: str
    generator: object
    max_coc_range: tuple
    description: str


def _layered(seed: int, height: int = 192, width: int = 256, max_coc_range=(4.0, 25.0)) -> Scene:
    scene = random_scene(seed, height=height, width=width, max_coc_range=max_coc_range)
    scene.family = "layered"
    return scene


FAMILIES = {
    f.name: f
    for f in (
        Family("layered", _layered, (4.0, 25.0), "random layered shapes, HDR point lights 4-60x"),
        Family("saturated", saturated_scene, (6.0, 20.0), "saturated colour fields / gradients, red jacket"),
        Family("clipped", clipped_scene, (6.0, 22.0), "over-exposed sky 1.02-4x or white wall 1.02-2x"),
        Family("lights", lights_scene, (6.0, 25.0), "white 1.5-60x and coloured lights, fairy strings, lamps"),
        Family("strands", strands_scene, (8.0, 25.0), "hair / wires at |CoC| 0.15-3 px, dark or bright bg"),
        Family("receding", receding_scene, (6.0, 20.0), "ground and wall planes receding through focus"),
        Family("depth8", depth8_scene, (6.0, 20.0), "8-bit / JPEG disparity delivered, true depth in reference"),
    )
}


def family_scene(name: str, seed: int, height: int = 192, width: int = 256, max_coc_range=None) -> Scene:
    """Scene ``seed`` of family ``name`` (see ``FAMILIES``) at ``width x height``."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; choose from {', '.join(FAMILIES)}")
    fam = FAMILIES[name]
    rng_range = fam.max_coc_range if max_coc_range is None else tuple(max_coc_range)
    return fam.generator(seed, height, width, rng_range)
