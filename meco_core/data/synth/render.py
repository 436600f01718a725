"""Shading (sky, ground materials, water, shadows) of what the rays hit.

Part of the procedural golf-course renderer; see meco_core.data.synth for the scene model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .common import G_ROUGH, G_WATER, K_GROUND, K_PRIM, K_SKY, K_TREELINE, _smooth, _tex, _u
from .course import Course, ground_material
from .terrain import Terrain, TreeLine
from .camera import Camera, _screen_rect
from .scene import Scene

@dataclass
class Env:
    sun: np.ndarray
    sun_col: np.ndarray
    amb_col: np.ndarray
    zenith: np.ndarray
    horizon: np.ndarray
    haze_col: np.ndarray
    visibility: float
    clouds: float
    palette: np.ndarray  # (7, 3) ground albedo per material
    dry: np.ndarray
    treeline_col: np.ndarray
    exposure: float
    tex_off: tuple[float, float]


def make_env(rng: np.random.Generator) -> Env:
    """Sun, sky, exposure and per-frame colour jitter (lush/dry grass, asphalt/concrete)."""
    overcast = rng.random() < 0.2
    el, az = math.radians(_u(rng, 18, 65)), _u(rng, -math.pi, math.pi)
    sun = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)], np.float32)
    f32 = lambda *v: np.array(v, np.float32)  # noqa: E731
    jit = f32(*(1 + rng.uniform(-0.07, 0.07, 3)))
    grass = f32(0.30, 0.50, 0.16) * jit
    road = f32(0.40, 0.40, 0.42) if rng.random() < 0.55 else f32(0.62, 0.60, 0.56)
    palette = np.stack([grass * f32(0.8, 0.74, 0.62), grass * f32(0.9, 0.9, 0.85), grass * f32(1.0, 1.06, 1.0),
                        grass * f32(0.92, 1.08, 1.15), road * _u(rng, 0.9, 1.1), f32(0.85, 0.77, 0.58) * jit,
                        f32(0.06, 0.15, 0.2)]).astype(np.float32)
    sun_i = _u(rng, 0.25, 0.4) if overcast else _u(rng, 0.85, 1.1)
    zen = f32(0.55, 0.58, 0.62) if overcast else f32(0.2, 0.42, 0.85) * _u(rng, 0.85, 1.1)
    hor = f32(0.78, 0.8, 0.82) if overcast else f32(0.72, 0.83, 0.95)
    amb = f32(0.45, 0.5, 0.6) * (_u(rng, 0.7, 0.85) if overcast else _u(rng, 0.4, 0.55))
    return Env(sun, f32(1.0, 0.95, 0.86) * sun_i, amb,
               zen, hor, hor * 0.95, _u(rng, 250, 700), _u(rng, 0.0, 0.6) + (0.4 if overcast else 0.0),
               palette, f32(0.55, 0.5, 0.3) * jit, f32(0.1, 0.2, 0.09) * jit, _u(rng, 0.85, 1.15),
               (_u(rng, 0, 256), _u(rng, 0, 256)))


def sky_color(env: Env, ux: np.ndarray, uy: np.ndarray, uz: np.ndarray) -> np.ndarray:
    """(3, ...) sky for unit directions: horizon-to-zenith gradient, sun glow, plane clouds."""
    e = np.sqrt(np.clip(uz, 0, 1))
    cs = np.clip(ux * env.sun[0] + uy * env.sun[1] + uz * env.sun[2], 0, 1)
    glow = 0.25 * cs**8 + 2.0 * cs**600
    col = [env.horizon[c] + (env.zenith[c] - env.horizon[c]) * e + env.sun_col[c] * glow for c in range(3)]
    if env.clouds > 0.05:
        k = 30.0 / np.maximum(uz, 0.04)
        n = _tex(3, ux * k + env.tex_off[0], uy * k) + 0.5 * _tex(2, ux * k * 2, uy * k * 2 + env.tex_off[1])
        cover = _smooth((n - 1.6 + 1.6 * env.clouds) / 1.2) * _smooth(uz / 0.15)
        white = (0.75 + 0.25 * float(env.horizon.mean())) * (0.85 + 0.1 * n)
        col = [ch + (white - ch) * cover for ch in col]
    return np.stack(col)


# per-material texture weights: big patches, mid, fine grain, mowing stripes, green stripes, path/sand edge
_MOD = np.array([
    # rough  cut   fairway green  road  sand  water
    [0.16, 0.08, 0.05, 0.00, 0.05, 0.00, 0.0],
    [0.07, 0.05, 0.03, 0.03, 0.06, 0.04, 0.0],
    [0.30, 0.20, 0.12, 0.05, 0.12, 0.08, 0.0],
    [0.00, 0.00, 0.10, 0.00, 0.00, 0.00, 0.0],
    [0.00, 0.00, 0.00, 0.04, 0.00, 0.00, 0.0],
    [0.00, 0.00, 0.00, 0.00, -0.12, 0.0, 0.0],
    [0.00, 0.00, 0.00, 0.00, 0.00, -0.15, 0.0],
], np.float32)


def _ground_albedo(env: Env, course: Course, x: np.ndarray, y: np.ndarray,
                   fp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(3, H, W) material colours with world-space textures; each noise octave fades out once
    its feature size drops below ~2 pixel footprints (fp, m/pixel) so distance does not alias."""
    mat, sd = ground_material(course, x, y)
    ox, oy = env.tex_off
    n_big = _tex(3, x * 2.0 + ox, y * 2.0 + oy)
    n_mid = _tex(2, x * 8.0 + oy, y * 8.0 + ox) * _smooth(0.5 / fp - 0.5)
    n_fin = _tex(0, x * 70.0, y * 70.0) * _smooth(0.015 / fp - 0.5)
    c, s = math.cos(course.hole_theta), math.sin(course.hole_theta)
    stripe = np.tanh(3.0 * np.sin((c * y - s * x) * (math.pi / course.stripe_w)))
    g_stripe = np.tanh(3.0 * np.sin((c * x + s * y) * (math.pi / (course.stripe_w * 0.4))))
    w = [np.take(row, mat) for row in _MOD]
    mod = 1 + w[0] * n_big + w[1] * n_mid + w[2] * n_fin + w[3] * stripe + w[4] * g_stripe
    mod += w[5] * _smooth(1 + sd["road"] * 4) + w[6] * _smooth(1 + sd["sand"] * 2)
    dry = _smooth(n_big * 0.8 - 0.2) * (mat == G_ROUGH) * 0.6
    alb = [np.take(env.palette[:, ch], mat) * mod for ch in range(3)]
    return np.stack([a + (env.dry[ch] - a) * dry for ch, a in enumerate(alb)]), mat


def shade(env: Env, course: Course, ter: Terrain, tl: TreeLine, sc: Scene, cam: Camera, rays: tuple[np.ndarray, ...],
          t: np.ndarray, kind: np.ndarray, albedo: np.ndarray, normal: np.ndarray,
          texamp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deferred shading of all pixels at once (planar (3, H, W) buffers: faster than
    interleaved); returns (RGB (3, H, W) float, ground material (H, W), 255 off-ground)."""
    dx, dy, dz = rays
    o = cam.origin.astype(np.float32)
    inv_len = 1.0 / np.sqrt(dx * dx + dy * dy + dz * dz)
    ux, uy, uz = dx * inv_len, dy * inv_len, dz * inv_len
    sky = kind == K_SKY
    tf = np.where(sky, np.float32(0), t)
    px, py, pz = o[0] + tf * dx, o[1] + tf * dy, o[2] + tf * dz
    ground = kind == K_GROUND
    fp = np.maximum(tf * inv_len / cam.fx / np.maximum(-uz, 0.03), 1e-4)  # ground footprint (m/pixel)
    g_alb, mat = _ground_albedo(env, course, px, py, fp)
    mat = np.where(ground, mat, np.uint8(255))
    np.copyto(albedo, g_alb, where=ground)
    np.copyto(normal, ter.normal(px, py), where=ground)
    trl = kind == K_TREELINE
    if trl.any():
        qx, qy, qz = px[trl], py[trl], pz[trl]
        phi, r, base = np.arctan2(qy, qx), np.hypot(qx, qy), ter.height(qx, qy)
        top = base + tl.crown(phi)
        along = phi * r
        leaf = 0.5 * _tex(1, along * 2, qz * 2) + 0.4 * _tex(0, along * 6, qz * 6)
        leaf += 0.3 * _tex(3, along * 0.2, np.full_like(qz, 9.0))  # broad per-stand variation
        rel = np.clip((qz - base) / np.maximum(top - base, 1), 0, 1)
        m, _, p0 = tl.crowns[0]  # one random tint per crown of the profile
        tint = np.modf(np.abs(np.sin(np.floor((m * phi + p0) / math.pi) * 12.9898)) * 43758.5)[0]
        shade_ = 0.6 + 0.55 * rel + 0.25 * leaf + 0.3 * (tint - 0.5)
        hue = 1 + 0.25 * (tint - 0.5) * np.array([1.5, 0.3, -1.0], np.float32)[:, None]
        albedo[:, trl] = env.treeline_col[:, None] * shade_ * hue
        hl = 1 / np.maximum(np.hypot(ux[trl], uy[trl]), 1e-3)
        normal[:, trl] = np.stack([-ux[trl] * hl, -uy[trl] * hl, np.zeros_like(hl)])
    prim = kind == K_PRIM
    if prim.any():
        a, b = px[prim] + py[prim], pz[prim]
        n = 0.7 * _tex(1, a * 6, b * 6) + 0.6 * _tex(0, a * 20, b * 20) * _smooth(0.1 / fp[prim] - 0.5)
        albedo[:, prim] *= np.maximum(1 + texamp[prim] * n, 0.2)
    shadow = np.ones_like(t)
    _cast_shadows(env, sc, cam, ground, px, py, shadow)
    direct = np.clip(normal[0] * env.sun[0] + normal[1] * env.sun[1] + normal[2] * env.sun[2], 0, 1) * shadow
    amb = 0.6 + 0.4 * normal[2]
    col = np.stack([albedo[c] * (env.amb_col[c] * amb + env.sun_col[c] * direct) for c in range(3)])
    water = mat == G_WATER
    if water.any():
        col[:, water] = _water(env, tl, ux[water], uy[water], uz[water], px[water], py[water], pz[water], fp[water])
    if sky.any():
        col[:, sky] = sky_color(env, ux[sky], uy[sky], uz[sky])
    haze = (1 - np.exp(-tf / (inv_len * env.visibility)))
    for c in range(3):
        col[c] += (env.haze_col[c] - col[c]) * haze
    return col, mat


def _water(env: Env, tl: TreeLine, ux, uy, uz, px, py, pz, fp) -> np.ndarray:
    """(3, n) Fresnel mix of a dark body colour and the reflected sky / tree line, with ripples."""
    amp = 0.03 * _smooth(0.5 / fp - 0.5)
    nx = amp * _tex(1, px * 3 + 10, py * 6)
    ny = amp * _tex(1, px * 6 + 90, py * 3)
    nz = np.sqrt(1 - nx * nx - ny * ny)
    dn = ux * nx + uy * ny + uz * nz
    rx, ry, rz = ux - 2 * dn * nx, uy - 2 * dn * ny, np.abs(uz - 2 * dn * nz)
    refl = sky_color(env, rx, ry, rz)
    phi = np.arctan2(ry, rx)
    reach = np.maximum(tl.radius(phi) - np.hypot(px, py), 5)
    trees = rz / np.maximum(np.hypot(rx, ry), 1e-3) * reach < 0.3 + tl.crown(phi)
    tree_col = env.treeline_col * (0.5 * env.sun_col + env.amb_col)
    refl[:, trees] = (tree_col + (env.haze_col - tree_col) * 0.25)[:, None]  # hazy, as seen directly
    f = 0.2 + 0.8 * (1 - np.clip(-dn, 0, 1)) ** 3
    body = env.palette[G_WATER] * (env.amb_col + 0.3 * env.sun_col)
    return body[:, None] * (1 - f) + refl * f


def _cast_shadows(env: Env, sc: Scene, cam: Camera, ground: np.ndarray, px: np.ndarray, py: np.ndarray,
                  shadow: np.ndarray) -> None:
    """Each caster (3-D segment + radius) throws a capsule onto flat ground along the sun."""
    if env.sun[2] <= 0.1:
        return
    kx, ky = -env.sun[0] / env.sun[2], -env.sun[1] / env.sun[2]
    for x0, y0, z0, x1, y1, z1, r, zb in sc.casters:
        gx0, gy0 = x0 + kx * (z0 - zb), y0 + ky * (z0 - zb)
        gx1, gy1 = x1 + kx * (z1 - zb), y1 + ky * (z1 - zb)
        pts = np.array([[min(gx0, gx1) - r, min(gy0, gy1) - r, zb], [max(gx0, gx1) + r, min(gy0, gy1) - r, zb],
                        [min(gx0, gx1) - r, max(gy0, gy1) + r, zb], [max(gx0, gx1) + r, max(gy0, gy1) + r, zb]])
        rect = _screen_rect(cam, pts)
        if rect is None:
            continue
        qx, qy = px[rect] - gx0, py[rect] - gy0
        sx, sy = gx1 - gx0, gy1 - gy0
        h = np.clip((qx * sx + qy * sy) / max(sx * sx + sy * sy, 1e-6), 0, 1)
        d = np.hypot(qx - h * sx, qy - h * sy)
        s = 1 - 0.85 * _smooth((r - d) / max(0.1 * r, 0.03) + 0.5) * ground[rect]
        shadow[rect] = np.minimum(shadow[rect], s)


