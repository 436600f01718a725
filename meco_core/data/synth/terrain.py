"""The height field the course lies on (sinusoids, mounds, carved ponds and bunkers) and
the distant tree line.

Part of the procedural golf-course renderer; see meco_core.data.synth for the scene model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .common import GRID_HALF, GRID_RES, _bilinear, _smooth, _u
from .course import Course

@dataclass
class Terrain:
    h: np.ndarray  # (N, N) height (m), rows = y, cols = x
    grad: np.ndarray  # (N, N, 2) dh/dx, dh/dy (one remap fetches both)

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _bilinear(self.h, (np.asarray(x, np.float32) + GRID_HALF) / GRID_RES,
                         (np.asarray(y, np.float32) + GRID_HALF) / GRID_RES)

    def normal(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        g = _bilinear(self.grad, (x + GRID_HALF) / GRID_RES, (y + GRID_HALF) / GRID_RES)
        nx, ny = -g[..., 0], -g[..., 1]
        inv = 1.0 / np.sqrt(nx * nx + ny * ny + 1.0)
        return np.stack([nx * inv, ny * inv, inv])


def _window(x: float, y: float, r: float) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    n = int(round(2 * GRID_HALF / GRID_RES)) + 1
    i0 = min(n, max(0, math.floor((y - r + GRID_HALF) / GRID_RES)))
    i1 = max(i0, min(n, math.floor((y + r + GRID_HALF) / GRID_RES) + 2))
    j0 = min(n, max(0, math.floor((x - r + GRID_HALF) / GRID_RES)))
    j1 = max(j0, min(n, math.floor((x + r + GRID_HALF) / GRID_RES) + 2))
    ys = (np.arange(i0, i1, dtype=np.float32) * GRID_RES - GRID_HALF)[:, None]
    xs = (np.arange(j0, j1, dtype=np.float32) * GRID_RES - GRID_HALF)[None, :]
    return slice(i0, i1), slice(j0, j1), xs, ys


def build_terrain(rng: np.random.Generator, course: Course) -> Terrain:
    """Gentle rolling ground (low-frequency sinusoids on a 4 m grid, upsampled), mounds,
    raised greens, bowl-shaped bunkers and ponds levelled (cut and fill) to a flat water surface."""
    n = int(round(2 * GRID_HALF / GRID_RES)) + 1
    c = np.linspace(-GRID_HALF, GRID_HALF, int(2 * GRID_HALF / 4) + 1, dtype=np.float32)
    cx, cy = c[None, :], c[:, None]
    hc = np.zeros((c.size, c.size), np.float32)
    for _ in range(4):
        wl, a = _u(rng, 35, 160), _u(rng, -math.pi, math.pi)
        amp = _u(rng, 0.05, 0.45) * wl / 60
        hc += amp * np.sin((math.cos(a) * cx + math.sin(a) * cy) * (2 * math.pi / wl) + _u(rng, 0, 6.3))
    hc += _u(rng, -0.02, 0.02) * cx + _u(rng, -0.02, 0.02) * cy
    h = cv2.resize(hc, (n, n), interpolation=cv2.INTER_CUBIC)
    for mx, my, mh, sig in course.mounds:
        ri, rj, xs, ys = _window(mx, my, 3 * sig)
        h[ri, rj] += mh * np.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / (2 * sig * sig))
    for g in course.greens:
        ri, rj, xs, ys = _window(g.x, g.y, g.bound + 4)
        h[ri, rj] += 0.3 * _smooth(-g.sdf(xs, ys) / 4 + 0.5)
    for b in course.bunkers:
        ri, rj, xs, ys = _window(b.x, b.y, b.bound + 2)
        s = b.sdf(xs, ys)
        h[ri, rj] += -0.45 * _smooth(-s / 1.5) + 0.12 * np.exp(-((s - 0.4) / 0.5) ** 2)  # bowl + lip
    for p in course.ponds:
        ri, rj, xs, ys = _window(p.x, p.y, p.bound + 4)
        s, sub = p.sdf(xs, ys), h[ri, rj]
        inside = s < 0
        if not inside.any():
            continue
        level = float(sub[inside].mean()) - 0.25  # cut and fill: banks must not hide the water
        bank = _smooth(s / 4.0)
        h[ri, rj] = np.where(inside, level, level + (sub - level) * bank)
    k = 1.0 / (8 * GRID_RES)  # Sobel 3x3 -> metres per metre
    grad = cv2.merge([cv2.Sobel(h, cv2.CV_32F, 1, 0, ksize=3) * k, cv2.Sobel(h, cv2.CV_32F, 0, 1, ksize=3) * k])
    return Terrain(h, grad)


@dataclass
class TreeLine:
    """Distant trees as a wall at radius R(azimuth) with a bumpy crown height profile."""

    r0: float
    r_amp: list[tuple[int, float, float]]
    h0: float
    h_amp: list[tuple[int, float, float]]
    crowns: list[tuple[float, float, float]]

    def radius(self, phi: np.ndarray) -> np.ndarray:
        return self.r0 + sum(a * np.sin(k * phi + p) for k, a, p in self.r_amp)

    def crown(self, phi: np.ndarray) -> np.ndarray:
        h = self.h0 + sum(a * np.sin(k * phi + p) for k, a, p in self.h_amp)
        return h + sum(a * np.sqrt(np.abs(np.sin(m * phi + p))) for m, a, p in self.crowns)


def make_treeline(rng: np.random.Generator) -> TreeLine:
    r0 = _u(rng, 66, 72)
    return TreeLine(r0, [(k, _u(rng, 0, 2.5), _u(rng, 0, 6.3)) for k in (1, 2, 3, 5)], _u(rng, 7, 13),
                    [(k, _u(rng, 0, 2.5), _u(rng, 0, 6.3)) for k in (2, 5, 9)],
                    [(float(rng.integers(26, 40)), _u(rng, 2, 4), _u(rng, 0, 6.3)),
                     (float(rng.integers(60, 95)), _u(rng, 0.5, 1.5), _u(rng, 0, 6.3))])


