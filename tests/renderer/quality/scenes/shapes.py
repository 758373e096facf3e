"""Procedural textures and antialiased shapes for the scene generators (linear light)."""
from __future__ import annotations

import math

import numpy as np


def _smooth_noise(rng, h: int, w: int, scale: float, octaves: int = 3) -> np.ndarray:
    """Value noise in ~[0, 1]: bilinear-upsampled random lattices, 1/2 amplitude per octave."""
    total = np.zeros((h, w))
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        s = max(scale / 2**o, 1.5)
        gh, gw = int(h / s) + 3, int(w / s) + 3
        grid = rng.random((gh, gw))
        y = np.arange(h) / s + rng.random()
        x = np.arange(w) / s + rng.random()
        y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
        fy, fx = (y - y0)[:, None], (x - x0)[None, :]
        # Smoothstep weights: no visible lattice creases.
        fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
        g00 = grid[np.ix_(y0, x0)]
        g01 = grid[np.ix_(y0, x0 + 1)]
        g10 = grid[np.ix_(y0 + 1, x0)]
        g11 = grid[np.ix_(y0 + 1, x0 + 1)]
        total += amp * ((g00 * (1 - fx) + g01 * fx) * (1 - fy) + (g10 * (1 - fx) + g11 * fx) * fy)
        norm += amp
        amp *= 0.5
    return total / norm


def _random_color(rng, lo=0.02, hi=0.85) -> np.ndarray:
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size=3))


def _texture(rng, h: int, w: int) -> np.ndarray:
    """Random linear-light texture (h, w, 3): noise, stripes, gradient or checker."""
    c0, c1 = _random_color(rng), _random_color(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    kind = rng.choice(["noise", "stripes", "gradient", "checker"])
    if kind == "noise":
        t = _smooth_noise(rng, h, w, rng.uniform(3, 20))
        t = np.clip((t - t.mean()) * rng.uniform(2, 4) + 0.5, 0, 1)
    elif kind == "stripes":
        ang = rng.uniform(0, math.pi)
        period = rng.uniform(5, 24)
        u = (xx * math.cos(ang) + yy * math.sin(ang)) / period
        # Antialiased square wave: ramp of ~1 px around each transition.
        t = np.clip(0.5 + period * (np.abs((u % 1.0) - 0.5) - 0.25), 0, 1)
    elif kind == "gradient":
        ang = rng.uniform(0, 2 * math.pi)
        u = xx * math.cos(ang) + yy * math.sin(ang)
        t = (u - u.min()) / max(u.max() - u.min(), 1e-9)
    else:
        cell = rng.uniform(6, 20)
        t = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2).astype(np.float64)
    t = t[..., None]
    tex = c0 * (1 - t) + c1 * t
    # Fine grain so hidden and visible content differ at every scale.
    tex *= 1.0 + 0.15 * (_smooth_noise(rng, h, w, 2.0, octaves=1)[..., None] - 0.5)
    return tex


def _alpha_from_sdf(sdf: np.ndarray) -> np.ndarray:
    """Antialiased coverage from a signed distance in px (negative inside): 1 px ramp."""
    return np.clip(0.5 - sdf, 0.0, 1.0)


def _segment_sdf(xx, yy, p0, p1, half_width):
    d = np.asarray(p1, float) - np.asarray(p0, float)
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / max(d @ d, 1e-12), 0, 1)
    return np.hypot(xx - p0[0] - t * d[0], yy - p0[1] - t * d[1]) - half_width


def _ellipse_sdf(xx, yy, cx, cy, ax, ay, ang=0.0):
    c, s = math.cos(ang), math.sin(ang)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    return (np.hypot(u / ax, v / ay) - 1.0) * min(ax, ay)


def _rect_sdf(xx, yy, cx, cy, hw, hh, ang=0.0, round_px=0.0):
    c, s = math.cos(ang), math.sin(ang)
    u = np.abs((xx - cx) * c + (yy - cy) * s) - (hw - round_px)
    v = np.abs(-(xx - cx) * s + (yy - cy) * c) - (hh - round_px)
    outside = np.hypot(np.maximum(u, 0), np.maximum(v, 0))
    return outside + np.minimum(np.maximum(u, v), 0) - round_px


def _blob_sdf(rng, xx, yy, cx, cy, radius):
    """Irregular blob: a disk whose radius wobbles with angle."""
    ang = np.arctan2(yy - cy, xx - cx)
    wobble = np.zeros_like(ang)
    for k in range(2, 6):
        wobble += rng.uniform(-0.12, 0.12) * np.cos(k * ang + rng.uniform(0, 2 * math.pi))
    return np.hypot(xx - cx, yy - cy) - radius * (1.0 + wobble)


def _branch_sdf(rng, xx, yy, h, w, pad):
    """Thin branch: a random polyline from a frame edge with a side twig, 1-4 px wide."""
    side = rng.integers(4)
    lo, hi_x, hi_y = pad, pad + w, pad + h
    start = [
        (rng.uniform(lo, hi_x), lo - 2),
        (rng.uniform(lo, hi_x), hi_y + 2),
        (lo - 2, rng.uniform(lo, hi_y)),
        (hi_x + 2, rng.uniform(lo, hi_y)),
    ][side]
    target = (rng.uniform(lo + 0.2 * w, hi_x - 0.2 * w), rng.uniform(lo + 0.2 * h, hi_y - 0.2 * h))
    sdf = np.full(xx.shape, np.inf)
    p = np.array(start)
    direction = np.array(target) - p
    direction /= np.linalg.norm(direction)
    width = rng.uniform(2.0, 4.0)
    for _ in range(rng.integers(3, 6)):
        step = rng.uniform(0.12, 0.25) * max(h, w)
        turn = rng.uniform(-0.5, 0.5)
        c, s = math.cos(turn), math.sin(turn)
        direction = np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1]])
        q = p + step * direction
        sdf = np.minimum(sdf, _segment_sdf(xx, yy, p, q, width / 2))
        if rng.random() < 0.6:  # twig
            tw = rng.uniform(-1.2, 1.2)
            c2, s2 = math.cos(tw), math.sin(tw)
            dt = np.array([c2 * direction[0] - s2 * direction[1], s2 * direction[0] + c2 * direction[1]])
            sdf = np.minimum(sdf, _segment_sdf(xx, yy, q, q + rng.uniform(0.08, 0.2) * max(h, w) * dt, 0.6))
        p = q
        width = max(1.0, width * 0.75)
    return sdf


def _add_shape(rgba: np.ndarray, alpha: np.ndarray, tex: np.ndarray) -> None:
    """Composite an opaque textured shape over a premultiplied layer, in place."""
    a = alpha[..., None]
    rgba[..., :3] = tex * a + rgba[..., :3] * (1 - a)
    rgba[..., 3:] = a + rgba[..., 3:] * (1 - a)
