"""The random layered family: fronto-parallel layers with textured shapes and HDR point lights.

The back layer is opaque and full-frame; it carries bright point lights (linear
values 4-60).  Layers in front carry antialiased shapes; the content of a back layer
hidden behind them in the pinhole photo is real content, different from what is
visible.
"""
from __future__ import annotations

import math

import numpy as np

from .model import Layer, Scene
from .shapes import (_add_shape, _alpha_from_sdf, _blob_sdf, _branch_sdf, _ellipse_sdf, _rect_sdf,
                     _segment_sdf, _texture)


def _background(rng, ch, cw, h, w, pad) -> np.ndarray:
    rgba = np.ones((ch, cw, 4))
    rgba[..., :3] = _texture(rng, ch, cw)
    if rng.random() < 0.5:  # a second texture patch for variety
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float64)
        sdf = _rect_sdf(xx, yy, rng.uniform(0, cw), rng.uniform(0, ch), rng.uniform(20, 60),
                        rng.uniform(20, 60), rng.uniform(0, math.pi))
        _add_shape(rgba, _alpha_from_sdf(sdf), _texture(rng, ch, cw))
    # Point lights: 1-3 px spots, linear values 4-60, anywhere (some end up hidden).
    n_lights = rng.integers(10, 31)
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float64)
    for _ in range(n_lights):
        cx = rng.uniform(pad * 0.5, cw - pad * 0.5)
        cy = rng.uniform(pad * 0.5, ch - pad * 0.5)
        radius = rng.uniform(0.3, 1.5)
        cov = _alpha_from_sdf(np.hypot(xx - cx, yy - cy) - radius)
        color = 0.4 + 0.6 * rng.random(3)
        rgba[..., :3] += rng.uniform(4.0, 60.0) * color * cov[..., None]
    return rgba


def _shape_layer(rng, role, ch, cw, h, w, pad) -> np.ndarray:
    rgba = np.zeros((ch, cw, 4))
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float64)
    fx0, fy0 = pad, pad  # frame origin on the canvas

    def in_frame():
        return fx0 + rng.uniform(0.05, 0.95) * w, fy0 + rng.uniform(0.05, 0.95) * h

    if role == "subject":
        cx = fx0 + rng.uniform(0.3, 0.7) * w
        head_r = rng.uniform(0.10, 0.16) * h
        head_y = fy0 + rng.uniform(0.25, 0.45) * h
        torso = _rect_sdf(xx, yy, cx, fy0 + h + 0.1 * h, rng.uniform(1.6, 2.4) * head_r,
                          (fy0 + 1.1 * h - head_y - head_r) / 2 + 2, 0.0, round_px=0.8 * head_r)
        head = _ellipse_sdf(xx, yy, cx, head_y, head_r * rng.uniform(0.8, 0.95), head_r)
        neck = _rect_sdf(xx, yy, cx, head_y + head_r, 0.4 * head_r, 0.6 * head_r)
        _add_shape(rgba, _alpha_from_sdf(torso), _texture(rng, ch, cw))
        _add_shape(rgba, _alpha_from_sdf(np.minimum(head, neck)), _texture(rng, ch, cw))
        if rng.random() < 0.5:  # a thin held object (stick / strap)
            p0 = (cx + rng.uniform(-2, 2) * head_r, fy0 + h)
            p1 = (cx + rng.uniform(-3, 3) * head_r, head_y + rng.uniform(-1, 1) * head_r)
            _add_shape(rgba, _alpha_from_sdf(_segment_sdf(xx, yy, p0, p1, rng.uniform(0.8, 2))),
                       _texture(rng, ch, cw))
        return rgba
    n_shapes = rng.integers(1, 4) if role == "foreground" else rng.integers(2, 5)
    kinds = ["branch", "blob", "bar"] if role == "foreground" else ["rect", "disk", "blob", "bar", "branch"]
    for _ in range(n_shapes):
        kind = rng.choice(kinds)
        cx, cy = in_frame()
        if kind == "rect":
            sdf = _rect_sdf(xx, yy, cx, cy, rng.uniform(0.05, 0.25) * w, rng.uniform(0.05, 0.3) * h,
                            rng.uniform(0, math.pi) if rng.random() < 0.5 else 0.0)
        elif kind == "disk":
            sdf = np.hypot(xx - cx, yy - cy) - rng.uniform(0.05, 0.2) * h
        elif kind == "blob":
            if role == "foreground":  # big out-of-focus mass entering from a corner
                cx = fx0 + rng.choice([0.0, 1.0]) * w
                cy = fy0 + rng.uniform(0, 1) * h
            sdf = _blob_sdf(rng, xx, yy, cx, cy, rng.uniform(0.08, 0.3) * h)
        elif kind == "bar":
            ang = rng.uniform(0, math.pi)
            half_len = max(h, w)
            p0 = (cx - half_len * math.cos(ang), cy - half_len * math.sin(ang))
            p1 = (cx + half_len * math.cos(ang), cy + half_len * math.sin(ang))
            sdf = _segment_sdf(xx, yy, p0, p1, rng.uniform(0.75, 4.0))
        else:
            sdf = _branch_sdf(rng, xx, yy, h, w, pad)
        _add_shape(rgba, _alpha_from_sdf(sdf), _texture(rng, ch, cw))
    return rgba


_FOCALS_MM = (35.0, 50.0, 85.0, 135.0, 200.0)
_SENSORS_MM = (36.0, 23.5)


def choose_lens(rng, focus_m: float, spread: float, r_target: float, width: int):
    """(f_number, focal_mm, sensor_mm) making the largest |CoC| exactly ``r_target``.

    ``spread`` = max |z_f q - 1| over everything the canvas shows (q = 1/z).  Among
    focal lengths / sensors whose f-number is plausible (1.2-16) one is drawn;
    otherwise the one nearest f/4 (the f-number is solved exactly either way).
    """
    candidates = []
    for f in _FOCALS_MM:
        for sw in _SENSORS_MM:
            if focus_m * 1000.0 <= 2 * f:
                continue
            n = f * f / (2.0 * (focus_m * 1000.0 - f)) * spread / (sw / width) / r_target
            candidates.append((n, f, sw))
    if not candidates:
        raise ValueError(f"focus {focus_m} m too close for every focal length")
    plausible = [cand for cand in candidates if 1.2 <= cand[0] <= 16.0]
    if plausible:
        return plausible[int(rng.integers(len(plausible)))]
    return min(candidates, key=lambda cand: abs(math.log(cand[0] / 4.0)))


def random_scene(
    seed: int,
    height: int = 144,
    width: int = 192,
    max_coc_range=(4.0, 25.0),
    n_layers_range=(3, 5),
    blade_choices=(0, 0, 6, 8),
) -> Scene:
    """Seeded random layered scene.

    Parameters
    ----------
    seed : int
        Everything (layers, textures, lights, lens) follows from it.
    height, width : int
        Frame size in pixels.
    max_coc_range : (float, float)
        The largest |CoC| over the layers is drawn uniformly from this range (px).
    n_layers_range : (int, int)
        Inclusive range of the layer count (background included); at least 3.
    blade_choices : sequence of int
        Aperture shapes to draw from (0 = disk).  The default holds only
        point-symmetric shapes so the scores do not depend on the bokeh-orientation
        convention for odd blade counts (see the module docstring).

    Returns
    -------
    Scene
        Depths: background 6-20 m, other layers log-uniform in 0.5 m .. background/1.4
        with at least 25 % between neighbours.  The focus plane is on the subject
        (p = 0.45), a mid or foreground layer (0.3) or the background (0.25).  Lens:
        focal length and sensor picked so that the f-number solving for the drawn
        max |CoC| is plausible (1.2-16 when possible).
    """
    rng = np.random.default_rng(seed)
    n_layers = int(rng.integers(n_layers_range[0], n_layers_range[1] + 1))
    if n_layers < 3:
        raise ValueError("n_layers_range must allow at least 3 layers")
    r_target = float(rng.uniform(*max_coc_range))
    z_bg = float(np.exp(rng.uniform(math.log(6.0), math.log(20.0))))
    while True:
        zs = np.sort(np.exp(rng.uniform(math.log(0.5), math.log(z_bg / 1.4), size=n_layers - 1)))[::-1]
        if np.all(zs[:-1] / zs[1:] >= 1.25):
            break
    depths = [z_bg, *zs.tolist()]  # back to front
    roles = ["background"] + ["mid"] * (n_layers - 3) + ["subject", "foreground"]

    u = rng.random()
    if u < 0.45:
        focus_idx = n_layers - 2
    elif u < 0.75:
        focus_idx = int(rng.integers(1, n_layers - 2)) if n_layers > 3 else n_layers - 1
    else:
        focus_idx = 0
    focus_m = depths[focus_idx]
    spread = max(abs(focus_m / z - 1.0) for z in depths)

    f_number, focal, sensor = choose_lens(rng, focus_m, spread, r_target, width)

    blades = int(rng.choice(blade_choices))
    rotation = float(rng.uniform(0, 360.0 / blades)) if blades else 0.0
    pad = int(math.ceil(r_target)) + 4
    ch, cw = height + 2 * pad, width + 2 * pad
    layers = []
    for z, role in zip(depths, roles):
        if role == "background":
            rgba = _background(rng, ch, cw, height, width, pad)
        else:
            rgba = _shape_layer(rng, role, ch, cw, height, width, pad)
        layers.append(Layer(float(z), rgba.astype(np.float32), role))
    scene = Scene(
        layers=layers, height=height, width=width, pad=pad, focus_m=float(focus_m),
        f_number=float(f_number), focal_length_mm=float(focal), sensor_width_mm=float(sensor),
        blades=blades, rotation_deg=rotation, seed=seed, focus_role=roles[focus_idx],
    )
    scene.info = {"n_layers": n_layers, "max_coc": scene.max_coc}
    return scene


def single_layer_scene(
    rgba: np.ndarray, coc_px: float, pad: int, blades: int = 0, rotation_deg: float = 0.0
) -> Scene:
    """One full-canvas layer placed at the depth whose CoC is ``coc_px`` (signed).

    Lens: f = 100 mm, sensor 8 mm, focus 0.5 m, and the f-number that makes the CoC
    scale ``k = r / (z_f / z - 1)`` equal to ``2 |coc_px|`` (so the layer sits at
    z_f / 1.5 or z_f / 0.5); ``rgba`` is the padded canvas (premultiplied linear).
    """
    height, width = rgba.shape[0] - 2 * pad, rgba.shape[1] - 2 * pad
    focus_m, f, sw = 0.5, 100.0, 8.0
    k = max(2.0 * abs(coc_px), 1.0)
    n = f * f / (2.0 * (focus_m * 1000.0 - f)) / (sw / width) / k
    depth_m = focus_m / (coc_px / k + 1.0)
    layer = Layer(float(depth_m), np.asarray(rgba, dtype=np.float32), "single")
    return Scene([layer], height, width, pad, focus_m, n, f, sw, blades, rotation_deg)
