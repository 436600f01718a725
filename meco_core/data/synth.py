"""Procedural golf-course scenes with exact dense metric depth and labels (CPU, numpy).

No real dense depth exists for golf courses, so depth is trained and judged here: every
pixel's depth and label come from the same analytic scene the RGB is shaded from.

Scene: a smooth height-field terrain (sinusoids + mounds, carved ponds and bunkers) with
analytic ground regions (fairway bands, greens, a curving cart path, ponds, bunkers), a
distant tree line (a vertical "wall" 60-80 m away with a crown profile), a sky, and
analytic primitives (boxes, vertical cylinders, ellipsoids) for carts, people, flags, poles
and trees. Per pixel: rays are marched against the height field at 1/4 resolution to bracket
the first hit, refined at full resolution by bisection + secant, then primitives are
z-buffered inside their projected bounding rectangles and everything is shaded at once.

Conventions:
- world: x, y horizontal, z up, metres; camera at x = y = 0, OpenCV camera frame
  (x right, y down, z forward). Rays are scaled so their camera-z component is 1, hence a
  hit at ray parameter t has depth t = z along the optical axis.
- depth_m: z-depth in metres, capped at 80 m; sky has depth 0 (= no data) and label 0.
- labels (golf set): 0 background (sky, tree line, rough, trees - see TREE_LABEL),
  1 fairway (incl. greens), 2 hazard (water, sand), 3 road (cart path), 4 obstacle.
- frame (seed, index, split) is rendered from its own RNG, so it is identical on every run
  and independent of how many frames are generated.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import time
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from meco_core.defaults import MAX_DEPTH_M

CLASS_NAMES = ("background", "fairway", "hazard", "road", "obstacle")
BACKGROUND, FAIRWAY, HAZARD, ROAD, OBSTACLE = range(5)
# classes.py: trees line the holes and are "background" in every real dataset's remap
# (RELLIS tree -> background); keep synthetic trees consistent. Set OBSTACLE to change.
TREE_LABEL = BACKGROUND
DEFAULT_HFOV_DEG = 75.0  # fixed per dataset (DatasetWriter stores one intrinsics)
LIDAR_ELEVATION_DEG = (-25.0, 15.0)
LIDAR_AZIMUTH_STEPS = 512  # points per revolution (0.7 deg: a 20 Hz spinning-lidar mode)

GRID_RES, GRID_HALF = 0.5, 96.0  # terrain height grid (m); covers the tree line radius
T_NEAR, T_FAR = 0.3, 90.0  # ray parameter range for the terrain march
MARCH_STEPS, LOWRES = 40, 4

# ground materials; their labels in GROUND_LABEL
G_ROUGH, G_CUT, G_FAIRWAY, G_GREEN, G_ROAD, G_SAND, G_WATER = range(7)
GROUND_LABEL = np.array([BACKGROUND, BACKGROUND, FAIRWAY, FAIRWAY, ROAD, HAZARD, HAZARD], np.uint8)
K_SKY, K_TREELINE, K_GROUND, K_PRIM = range(4)
P_BOX, P_CYL, P_ELL = range(3)


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    """Python float (not np.float64) so float32 arrays stay float32."""
    return float(rng.uniform(a, b))


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def frame_rng(seed: int, index: int, split: str = "train") -> np.random.Generator:
    """Per-frame generator from (seed, index, split); crc32, not hash(), is stable across runs."""
    key = [int(seed) % (1 << 63), int(index), zlib.crc32(split.encode())]
    return np.random.default_rng(np.random.SeedSequence(key))


# ----------------------------------------------------------------------------- sampling
def _bilinear(grid: np.ndarray, gx: np.ndarray, gy: np.ndarray, wrap: bool = False) -> np.ndarray:
    """grid[gy, gx] bilinearly for any array shape; cv2.remap is ~20x faster than numpy gathers
    but needs maps with < 32767 rows/cols, so long/1-D inputs are folded into rows of 512."""
    mx, my = np.asarray(gx, np.float32), np.asarray(gy, np.float32)
    shape, n = mx.shape, mx.size
    folded = mx.ndim != 2 or max(shape) >= 32767
    if folded:
        pad = (-n) % 512
        mx, my = np.pad(mx.ravel(), (0, pad)).reshape(-1, 512), np.pad(my.ravel(), (0, pad)).reshape(-1, 512)
    border = cv2.BORDER_WRAP if wrap else cv2.BORDER_REPLICATE
    out = cv2.remap(grid, mx, my, cv2.INTER_LINEAR, borderMode=border)
    if folded:
        ch = out.shape[2:]  # multi-channel grids give (..., C)
        out = out.reshape((-1,) + ch)[:n].reshape(shape + ch)
    return out


@lru_cache(maxsize=1)
def _noise_textures() -> np.ndarray:
    """(4, 256, 256) tileable unit-variance noise at feature sizes ~1, 3, 8, 24 texels.
    Fixed seed: texture variety per frame comes from random offsets, not new noise."""
    rng = np.random.default_rng(20240611)
    fy = np.fft.fftfreq(256)[:, None]
    fx = np.fft.fftfreq(256)[None, :]
    out = []
    for sigma in (1.0, 3.0, 8.0, 24.0):
        white = rng.standard_normal((256, 256))
        kernel = np.exp(-2.0 * (math.pi * sigma) ** 2 * (fx**2 + fy**2))
        n = np.real(np.fft.ifft2(np.fft.fft2(white) * kernel))
        out.append((n - n.mean()) / n.std())
    return np.stack(out).astype(np.float32)


def _tex(level: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Noise at texel coords (u, v), wrapped; callers keep |u|, |v| < 30000 (remap's fixed point)."""
    return _bilinear(_noise_textures()[level], u, v, wrap=True)


# ----------------------------------------------------------------------------- course layout
@dataclass
class Blob:
    """Wobbly ellipse (pond, bunker, green): approximate signed distance, negative inside."""

    x: float
    y: float
    r: float
    aspect: float
    angle: float
    a2: float
    p2: float
    a3: float
    p3: float

    @property
    def bound(self) -> float:
        return self.r * (1 + abs(self.a2) + abs(self.a3)) / self.aspect

    def sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx, dy = x - self.x, y - self.y
        c, s = math.cos(self.angle), math.sin(self.angle)
        lx, ly = c * dx + s * dy, (c * dy - s * dx) / self.aspect
        th = np.arctan2(ly, lx)
        rr = self.r * (1 + self.a2 * np.cos(2 * th + self.p2) + self.a3 * np.cos(3 * th + self.p3))
        return np.sqrt(lx * lx + ly * ly) - rr

    def sdf_near(self, x: np.ndarray, y: np.ndarray, far: float = 1e3) -> np.ndarray:
        """sdf inside the bounding square, `far` elsewhere: most pixels are nowhere near a blob."""
        x, y = np.asarray(x), np.asarray(y)
        b = self.bound + 2.0
        near = np.flatnonzero((np.abs(x - self.x) < b) & (np.abs(y - self.y) < b))
        out = np.full(x.shape, far, np.float32)
        if near.size:
            out.ravel()[near] = self.sdf(x.ravel()[near], y.ravel()[near])
        return out


def _blob(rng: np.random.Generator, x: float, y: float, r: float, wobble: float = 0.15) -> Blob:
    return Blob(x, y, r, _u(rng, 0.55, 1.0), _u(rng, 0, math.pi), _u(rng, 0, wobble), _u(rng, 0, 6.3),
                _u(rng, 0, wobble * 0.6), _u(rng, 0, 6.3))


@dataclass
class Band:
    """Curving band (fairway, cart path) along a frame (ox, oy, theta): centre line
    l(s) = c0 + amp*(sin(freq*s + phase) - sin(phase)) + bend*s^2, width varying with s."""

    ox: float
    oy: float
    theta: float
    c0: float
    amp: float
    freq: float
    phase: float
    bend: float
    half_w: float
    w_amp: float
    w_freq: float
    s0: float
    s1: float
    taper: bool = True

    def local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.theta), math.sin(self.theta)
        dx, dy = x - self.ox, y - self.oy
        return c * dx + s * dy, c * dy - s * dx

    def centre(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lateral centre offset and its slope dl/ds at along-coordinate s."""
        lc = self.c0 + self.amp * (np.sin(self.freq * s + self.phase) - math.sin(self.phase)) + self.bend * s * s
        return lc, self.amp * self.freq * np.cos(self.freq * s + self.phase) + 2 * self.bend * s

    def sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        s, l = self.local(x, y)
        lc, slope = self.centre(s)
        hw = self.half_w * (1 + self.w_amp * np.sin(self.w_freq * s + self.phase))
        if self.taper:  # rounded ends instead of square cut-offs
            k = np.clip(np.minimum(s - self.s0, self.s1 - s) / hw, 0, 1)
            hw = hw * np.sqrt(1 - (1 - k) ** 2)
        lat = np.abs(l - lc) / np.sqrt(1 + slope * slope) - hw
        return np.maximum(lat, np.maximum(self.s0 - s, s - self.s1))

    def point(self, s: float, off: float = 0.0) -> tuple[float, float, float]:
        """World (x, y, heading) at along-coordinate s, lateral offset off from the centre."""
        lc, slope = self.centre(np.float64(s))
        c, sn = math.cos(self.theta), math.sin(self.theta)
        l = float(lc) + off
        return self.ox + c * s - sn * l, self.oy + sn * s + c * l, self.theta + math.atan(float(slope))


@dataclass
class Course:
    fairways: list[Band]
    greens: list[Blob]
    path: Band | None
    bunkers: list[Blob]
    ponds: list[Blob]
    mounds: list[tuple[float, float, float, float]]  # x, y, height, sigma
    hole_theta: float
    stripe_w: float
    cut_w: float
    view_yaw: float  # camera yaw: hazards and obstacles are placed to be seen


def make_course(rng: np.random.Generator) -> Course:
    """A hole seen from near the cart path: fairway beside the path, green, hazards, mounds.
    Everything is placed within the ~80 m visible radius so most frames show most classes."""
    th = _u(rng, -math.pi, math.pi)
    hw = _u(rng, 16, 30)
    side = 1.0 if rng.random() < 0.5 else -1.0
    mode = rng.choice(3, p=[0.5, 0.35, 0.15])  # on/beside path, on fairway, path crossing
    path_hw = _u(rng, 1.1, 1.7)
    curve = dict(amp=_u(rng, 0, 7), freq=2 * math.pi / _u(rng, 60, 200), phase=_u(rng, 0, 6.3))
    if mode == 0:
        pc0 = _u(rng, -1.0, 1.0) if rng.random() < 0.65 else side * -1 * _u(rng, 2.5, 8)
        fc0 = pc0 + side * (hw + path_hw + _u(rng, 1.0, 5.0))
    elif mode == 1:
        fc0 = side * _u(rng, 0.2, 0.9) * hw  # on the fairway, path beyond its near edge
        pc0 = fc0 - side * (hw + path_hw + _u(rng, 2, 6))
    else:
        fc0 = side * _u(rng, 0, hw)
        pc0 = 0.0
    fair_len = _u(rng, 35, 75) if rng.random() < 0.75 else _u(rng, 90, 200)
    fairways = [Band(0, 0, th, fc0, _u(rng, 0, 6), 2 * math.pi / _u(rng, 70, 200), _u(rng, 0, 6.3),
                     _u(rng, -1, 1) * 1e-3, hw, _u(rng, 0, 0.25), 2 * math.pi / _u(rng, 40, 120),
                     _u(rng, -80, 15), fair_len)]
    if rng.random() < 0.35:  # neighbouring hole, parallel, across the rough
        off = side * -1 * _u(rng, 50, 75)
        fairways.append(Band(0, 0, th, off, _u(rng, 0, 5), 0.04, _u(rng, 0, 6.3), 0, _u(rng, 12, 20), 0.2,
                             0.05, -120, 120, True))
    if mode == 2:
        pth = th + side * _u(rng, 0.9, 1.9)
        dist = _u(rng, 8, 35)
        path = Band(dist * math.cos(th), dist * math.sin(th), pth, 0.0, curve["amp"], curve["freq"], curve["phase"],
                    0.0, path_hw, 0.0, 1.0, -90, 90, False)
    else:
        path = Band(0, 0, th + _u(rng, -0.12, 0.12), pc0, curve["amp"], curve["freq"], curve["phase"],
                    _u(rng, -1, 1) * 1.5e-3, path_hw, 0.0, 1.0, -30, _u(rng, 30, 160), False)
    if rng.random() < 0.08:
        path = None
    fw = fairways[0]
    gx, gy, _ = fw.point(fw.s1 - 3, 0)
    greens = [_blob(rng, gx, gy, _u(rng, 9, 15), 0.2)]
    view = th + (math.radians(rng.normal(0, 12)) if rng.random() < 0.7 else _u(rng, -1.1, 1.1))
    ponds, bunkers = _place_hazards(rng, view, fairways, greens, path)
    mounds = []
    for _ in range(int(rng.integers(2, 7))):
        a, d = _u(rng, -math.pi, math.pi), _u(rng, 14, 75)
        mounds.append((d * math.cos(a), d * math.sin(a), _u(rng, 0.4, 1.8), _u(rng, 4, 10)))
    return Course(fairways, greens, path, bunkers, ponds, mounds, th, _u(rng, 4, 8), _u(rng, 1.0, 2.0), view)



def _place_hazards(rng: np.random.Generator, view: float, fairways: list[Band], greens: list[Blob],
                   path: Band | None) -> tuple[list[Blob], list[Blob]]:
    """A pond (50 %, near edge 3-20 m away) and 1-3 bunkers (50 %) inside the view: seen
    from 1.5 m, ground features beyond ~30 m are slivers a few pixels high."""
    ponds: list[Blob] = []
    bunkers: list[Blob] = []

    def ok(b: Blob, margin: float) -> bool:
        g = np.arange(-b.bound - margin, b.bound + margin + 1, 1.0)
        gx, gy = g[None, :] + b.x, g[:, None] + b.y
        near = b.sdf(gx, gy) < margin  # exact overlap test on a 1 m grid
        clear = path is None or not (near & (path.sdf(gx, gy) < margin)).any()
        apart = all(not (near & (o.sdf(gx, gy) < 1.0)).any() for o in ponds + bunkers)
        return bool(clear and apart and not (near & (gx**2 + gy**2 < 9.0)).any())

    def fair_sdf(x: float, y: float) -> float:
        return min(float(f.sdf(np.float64(x), np.float64(y))) for f in fairways)

    if rng.random() < 0.5:
        for _ in range(16):
            r = _u(rng, 5, 14)
            a, d = view + _u(rng, -0.7, 0.7), r + _u(rng, 3, 20)
            b = _blob(rng, d * math.cos(a), d * math.sin(a), r, 0.2)
            if ok(b, 2.5):
                ponds.append(b)
                break
    if rng.random() < 0.5:
        want = int(rng.integers(1, 4))
        for _ in range(16):
            if len(bunkers) >= want:
                break
            r = _u(rng, 2.5, 6.5)
            if rng.random() < 0.3:
                g = greens[0]
                a = _u(rng, 0, 6.3)
                x, y = g.x + math.cos(a) * (g.r + r * 0.6), g.y + math.sin(a) * (g.r + r * 0.6)
            else:
                a, d = view + _u(rng, -0.6, 0.6), math.exp(_u(rng, math.log(r + 4), math.log(35)))
                x, y = d * math.cos(a), d * math.sin(a)
                if not -r - 8 < fair_sdf(x, y) < r + 6:  # bunkers guard fairway edges
                    continue
            b = _blob(rng, x, y, r, 0.3)
            if ok(b, 1.5):
                bunkers.append(b)
    return ponds, bunkers

def ground_material(course: Course, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Material id per point (priority: road > water > sand > green > fairway > cut > rough)
    plus the signed distances shading needs."""
    mat = np.full(np.shape(x), G_ROUGH, np.uint8)
    fair = np.full(np.shape(x), 1e3, np.float32)
    for f in course.fairways:
        fair = np.minimum(fair, f.sdf(x, y))
    mat[fair < course.cut_w] = G_CUT
    mat[fair < 0] = G_FAIRWAY
    for g in course.greens:
        mat[g.sdf_near(x, y) < 0] = G_GREEN
    sand = np.full(np.shape(x), 1e3, np.float32)
    for b in course.bunkers:
        sand = np.minimum(sand, b.sdf_near(x, y))
    mat[sand < 0] = G_SAND
    for p in course.ponds:
        mat[p.sdf_near(x, y) < 0] = G_WATER
    road = course.path.sdf(x, y) if course.path is not None else np.full(np.shape(x), 1e3, np.float32)
    mat[road < 0] = G_ROAD
    return mat, {"fair": fair, "sand": sand, "road": road}


# ----------------------------------------------------------------------------- terrain
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


# ----------------------------------------------------------------------------- camera
@dataclass
class Camera:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    origin: np.ndarray  # (3,) world position
    axes: np.ndarray  # (3, 3) rows: camera x (right), y (down), z (forward) in world coords
    height_m: float
    pitch_deg: float
    roll_deg: float
    yaw_deg: float

    def intrinsics(self) -> dict[str, Any]:
        return dict(fx=self.fx, fy=self.fy, cx=self.cx, cy=self.cy, width=self.width, height=self.height)


def make_camera(rng: np.random.Generator, height: int, width: int, yaw: float, ground_z: float,
                hfov_deg: float | None) -> Camera:
    """Pinhole camera 1.2-2.0 m above the ground; pitch -2..-12 deg, roll +-3 deg (mounting
    and cart attitude). hfov None draws 60-90 deg per frame (focal-length augmentation)."""
    hfov = math.radians(hfov_deg if hfov_deg is not None else _u(rng, 60, 90))
    fx = (width / 2) / math.tan(hfov / 2)
    cam_h, pitch, roll = _u(rng, 1.2, 2.0), math.radians(_u(rng, -12, -2)), math.radians(_u(rng, -3, 3))
    fh = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    right = np.cross(fh, up)
    fwd = math.cos(pitch) * fh + math.sin(pitch) * up
    cup = -math.sin(pitch) * fh + math.cos(pitch) * up
    right, cup = math.cos(roll) * right + math.sin(roll) * cup, -math.sin(roll) * right + math.cos(roll) * cup
    axes = np.stack([right, -cup, fwd]).astype(np.float64)
    return Camera(fx, fx, (width - 1) / 2, (height - 1) / 2, width, height,
                  np.array([0.0, 0.0, ground_z + cam_h]), axes, cam_h, math.degrees(pitch), math.degrees(roll),
                  math.degrees(yaw))


def camera_rays(cam: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World ray directions (H, W) x3 with camera-z component 1, so hit parameter = depth."""
    xn = ((np.arange(cam.width) - cam.cx) / cam.fx)[None, :]
    yn = ((np.arange(cam.height) - cam.cy) / cam.fy)[:, None]
    X, Y, Z = cam.axes
    return tuple((xn * X[i] + yn * Y[i] + Z[i]).astype(np.float32) for i in range(3))  # type: ignore[return-value]


def project(cam: Camera, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pc = (np.asarray(pts, np.float64) - cam.origin) @ cam.axes.T
    z = pc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return cam.fx * pc[:, 0] / z + cam.cx, cam.fy * pc[:, 1] / z + cam.cy, z


def _screen_rect(cam: Camera, pts: np.ndarray) -> tuple[slice, slice] | None:
    """Pixel rectangle covering the projection of points (a primitive's bounding box)."""
    u, v, z = project(cam, pts)
    if (z <= 0.05).all():
        return None
    if (z <= 0.05).any():
        return slice(0, cam.height), slice(0, cam.width)
    c0, c1 = max(0, int(u.min()) - 1), min(cam.width, int(u.max()) + 2)
    r0, r1 = max(0, int(v.min()) - 1), min(cam.height, int(v.max()) + 2)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0, r1), slice(c0, c1)


# ----------------------------------------------------------------------------- obstacles
@dataclass
class Prim:
    kind: int  # P_BOX (half extents, yaw), P_CYL (radius, -, half height), P_ELL (radii)
    c: tuple[float, float, float]
    half: tuple[float, float, float]
    color: tuple[float, float, float]
    label: int
    yaw: float = 0.0
    tex: float = 0.05  # albedo noise amplitude

    def corners(self) -> np.ndarray:
        hx, hy, hz = self.half
        if self.kind == P_CYL:
            hy = hx
        s = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], np.float64) * (hx, hy, hz)
        if self.kind == P_BOX:
            cy, sy = math.cos(self.yaw), math.sin(self.yaw)
            s = np.stack([cy * s[:, 0] - sy * s[:, 1], sy * s[:, 0] + cy * s[:, 1], s[:, 2]], 1)
        return s + self.c


@dataclass
class Scene:
    prims: list[Prim] = field(default_factory=list)
    # shadow casters: segment (x0, y0, z0)-(x1, y1, z1), radius, ground height below it
    casters: list[tuple[float, float, float, float, float, float, float, float]] = field(default_factory=list)
    spots: list[tuple[float, float, float]] = field(default_factory=list)  # occupied x, y, radius

    def free(self, x: float, y: float, r: float) -> bool:
        return math.hypot(x, y) > r + 2.5 and all(math.hypot(x - a, y - b) > r + c for a, b, c in self.spots)


def _local(x: float, y: float, z: float, yaw: float, dx: float, dy: float, dz: float) -> tuple[float, float, float]:
    c, s = math.cos(yaw), math.sin(yaw)
    return x + c * dx - s * dy, y + s * dx + c * dy, z + dz


CART_COLORS = [(0.9, 0.9, 0.88), (0.85, 0.82, 0.7), (0.1, 0.3, 0.15), (0.6, 0.1, 0.1), (0.15, 0.15, 0.2)]
SHIRTS = [(0.9, 0.9, 0.9), (0.8, 0.1, 0.1), (0.1, 0.3, 0.7), (0.95, 0.8, 0.2), (0.2, 0.6, 0.3), (0.9, 0.5, 0.7)]
PANTS = [(0.1, 0.1, 0.15), (0.75, 0.7, 0.55), (0.2, 0.25, 0.4), (0.85, 0.85, 0.85)]


def add_cart(sc: Scene, rng: np.random.Generator, x: float, y: float, z: float, yaw: float) -> None:
    body = CART_COLORS[int(rng.integers(len(CART_COLORS)))]
    roof = body if rng.random() < 0.5 else (0.12, 0.12, 0.12)
    parts = [((0, 0, 0.6), (1.2, 0.6, 0.35), body), ((0.8, 0, 0.22), (0.22, 0.66, 0.22), (0.05, 0.05, 0.05)),
             ((-0.8, 0, 0.22), (0.22, 0.66, 0.22), (0.05, 0.05, 0.05)), ((-0.15, 0, 1.15), (0.12, 0.55, 0.22),
             (0.15, 0.15, 0.15)), ((-0.85, 0, 1.1), (0.25, 0.35, 0.25), (0.2, 0.2, 0.25)),
             ((0, 0, 1.95), (1.25, 0.66, 0.04), roof)]
    parts += [((px, py, 1.43), (0.03, 0.03, 0.49), (0.7, 0.7, 0.7)) for px in (-0.95, 0.9) for py in (-0.56, 0.56)]
    for (dx, dy, dz), half, col in parts:
        sc.prims.append(Prim(P_BOX, _local(x, y, z, yaw, dx, dy, dz), half, col, OBSTACLE, yaw))
    for zz, r in ((1.95, 0.66), (0.6, 0.6)):
        a, b = _local(x, y, z, yaw, -1.1, 0, zz), _local(x, y, z, yaw, 1.1, 0, zz)
        sc.casters.append((*a, *b, r, z))
    sc.spots.append((x, y, 1.5))


def add_person(sc: Scene, rng: np.random.Generator, x: float, y: float, z: float) -> None:
    k = _u(rng, 0.9, 1.1)
    skin = [(0.85, 0.65, 0.5), (0.6, 0.42, 0.3), (0.35, 0.24, 0.18)][int(rng.integers(3))]
    sc.prims += [Prim(P_CYL, (x, y, z + 0.43 * k), (0.15, 0, 0.43 * k), PANTS[int(rng.integers(len(PANTS)))], OBSTACLE),
                 Prim(P_CYL, (x, y, z + 1.15 * k), (0.2, 0, 0.3 * k), SHIRTS[int(rng.integers(len(SHIRTS)))], OBSTACLE),
                 Prim(P_ELL, (x, y, z + 1.58 * k), (0.1, 0.1, 0.13), skin, OBSTACLE)]
    if rng.random() < 0.4:  # golf bag
        bx, by, _ = _local(x, y, z, _u(rng, 0, 6.3), 0.5, 0, 0)
        sc.prims.append(Prim(P_CYL, (bx, by, z + 0.45), (0.13, 0, 0.45), SHIRTS[int(rng.integers(6))], OBSTACLE))
    sc.casters.append((x, y, z, x, y, z + 1.7 * k, 0.2, z))
    sc.spots.append((x, y, 0.6))


def add_flag(sc: Scene, rng: np.random.Generator, x: float, y: float, z: float) -> None:
    yaw = _u(rng, 0, 6.3)
    sc.prims.append(Prim(P_CYL, (x, y, z + 1.1), (0.03, 0, 1.1), (0.95, 0.9, 0.3), OBSTACLE, tex=0))
    flag = [(0.95, 0.1, 0.1), (0.95, 0.9, 0.1), (0.95, 0.95, 0.95)][int(rng.integers(3))]
    sc.prims.append(Prim(P_BOX, _local(x, y, z, yaw, 0.27, 0, 2.0), (0.25, 0.01, 0.17), flag, OBSTACLE, yaw, 0))
    sc.casters.append((x, y, z, x, y, z + 2.2, 0.03, z))
    sc.spots.append((x, y, 0.5))


def add_pole(sc: Scene, rng: np.random.Generator, x: float, y: float, z: float) -> None:
    """Yardage/rope posts, ball washers and bins: the small obstacles of a course."""
    kind = rng.integers(3)
    col = [(0.95, 0.95, 0.95), (0.8, 0.1, 0.1), (0.15, 0.3, 0.7), (0.9, 0.8, 0.15)][int(rng.integers(4))]
    if kind == 0:
        r, hh = _u(rng, 0.04, 0.09), _u(rng, 0.4, 0.8)
        sc.prims.append(Prim(P_CYL, (x, y, z + hh), (r, 0, hh), col, OBSTACLE))
    elif kind == 1:
        r, hh = 0.05, 0.5
        sc.prims += [Prim(P_CYL, (x, y, z + hh), (r, 0, hh), (0.2, 0.2, 0.2), OBSTACLE),
                     Prim(P_BOX, (x, y, z + 1.1), (0.15, 0.12, 0.12), col, OBSTACLE)]
    else:
        r, hh = _u(rng, 0.25, 0.35), _u(rng, 0.4, 0.5)
        sc.prims.append(Prim(P_CYL, (x, y, z + hh), (r, 0, hh), (0.1, 0.3, 0.15), OBSTACLE))
    sc.casters.append((x, y, z, x, y, z + 2 * hh, r, z))
    sc.spots.append((x, y, 0.5))


def add_tree(sc: Scene, rng: np.random.Generator, x: float, y: float, z: float) -> None:
    conifer = rng.random() < 0.3
    rt = _u(rng, 0.12, 0.35)
    if conifer:
        rx, rz, trunk = _u(rng, 1.3, 2.4), _u(rng, 3.5, 6.5), _u(rng, 0.8, 2.0)
        leaf = (0.06, 0.2, 0.08)
    else:
        rx, rz, trunk = _u(rng, 1.8, 4.2), _u(rng, 1.8, 3.5), _u(rng, 1.8, 3.5)
        leaf = (0.13 + _u(rng, -0.04, 0.06), 0.3 + _u(rng, -0.06, 0.06), 0.08)
    zc = z + trunk + rz * 0.85
    half = (zc - z) / 2
    sc.prims.append(Prim(P_CYL, (x, y, z + half), (rt, 0, half), (0.3, 0.23, 0.16), TREE_LABEL, tex=0.2))
    sc.prims.append(Prim(P_ELL, (x, y, zc), (rx, rx, rz), leaf, TREE_LABEL, tex=0.45))
    sc.casters += [(x, y, z, x, y, zc, rt, z), (x, y, zc - rz * 0.6, x, y, zc + rz * 0.6, rx * 0.9, z)]
    sc.spots.append((x, y, rx))


def place_obstacles(rng: np.random.Generator, course: Course, terrain: Terrain, cam: Camera) -> Scene:
    """Flags on greens, carts on the path, then 2-7 obstacles sampled inside the view at
    3-60 m (log-uniform) whose kind suits the ground they land on, then scenery trees."""
    sc = Scene()
    hz = lambda x, y: float(terrain.height(np.array([[x]]), np.array([[y]]))[0, 0])  # noqa: E731
    mat_at = lambda x, y: int(ground_material(course, np.array([x]), np.array([y]))[0][0])  # noqa: E731
    for g in course.greens:
        fx, fy = g.x + _u(rng, -0.4, 0.4) * g.r * g.aspect, g.y + _u(rng, -0.4, 0.4) * g.r * g.aspect
        if mat_at(fx, fy) == G_GREEN:
            add_flag(sc, rng, fx, fy, hz(fx, fy))
            if rng.random() < 0.5:
                a = _u(rng, 0, 6.3)
                px, py = fx + 3 * math.cos(a), fy + 3 * math.sin(a)
                add_person(sc, rng, px, py, hz(px, py))
    if course.path is not None and rng.random() < 0.55:
        s = _u(rng, 7, 45)
        x, y, head = course.path.point(s, _u(rng, -0.3, 0.3))
        if sc.free(x, y, 1.5):
            add_cart(sc, rng, x, y, hz(x, y), head + (math.pi if rng.random() < 0.3 else 0))
    hfov = 2 * math.atan(cam.width / 2 / cam.fx)
    yaw = math.radians(cam.yaw_deg)
    for _ in range(int(rng.integers(2, 8))):
        for _try in range(4):
            a = yaw + _u(rng, -0.45, 0.45) * hfov
            d = math.exp(_u(rng, math.log(3.5), math.log(60)))
            x, y = d * math.cos(a), d * math.sin(a)
            m = mat_at(x, y)
            p = rng.random()
            if m == G_WATER or not sc.free(x, y, 1.5):
                continue
            z = hz(x, y)
            if m == G_ROAD:
                add_cart(sc, rng, x, y, z, a + _u(rng, -0.5, 0.5)) if p < 0.5 else add_person(sc, rng, x, y, z)
            elif m in (G_FAIRWAY, G_GREEN, G_CUT, G_SAND):
                if p < 0.45:
                    add_person(sc, rng, x, y, z)
                elif p < 0.75 and m != G_SAND:
                    add_cart(sc, rng, x, y, z, _u(rng, 0, 6.3))
                else:
                    add_pole(sc, rng, x, y, z)
            elif d > 7 and p < 0.4:
                add_tree(sc, rng, x, y, z)
            elif p < 0.75:
                add_pole(sc, rng, x, y, z)
            else:
                add_person(sc, rng, x, y, z)
            break
    n_trees = int(rng.integers(3, 14))
    for _ in range(n_trees * 3):
        if n_trees <= 0:
            break
        a = yaw + _u(rng, -1.5, 1.5)
        d = _u(rng, 10, 70)
        x, y = d * math.cos(a), d * math.sin(a)
        if mat_at(x, y) != G_ROUGH or not sc.free(x, y, 3.0):
            continue
        if course.path is not None and float(course.path.sdf(np.float64(x), np.float64(y))) < 4:
            continue
        add_tree(sc, rng, x, y, hz(x, y))
        n_trees -= 1
    return sc


# ----------------------------------------------------------------------------- ray casting
def _terrain_f(ter: Terrain, o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray,
               t: np.ndarray) -> np.ndarray:
    """Ray height above the terrain at parameter t (> 0 above, <= 0 at/below ground)."""
    return (o[2] + t * dz) - ter.height(o[0] + t * dx, o[1] + t * dy)


def _march(ter: Terrain, o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, tmax: np.ndarray,
           steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geometric steps T_NEAR..T_FAR; returns the bracket (t_lo, t_hi) of the first crossing
    and whether there is one. Steps grow with distance like the pixel footprint does."""
    T = np.geomspace(T_NEAR, T_FAR, steps).astype(np.float32).reshape((-1,) + (1,) * dx.ndim)
    below = (_terrain_f(ter, o, dx[None], dy[None], dz[None], T) <= 0) & (T <= tmax[None])
    first = below.argmax(0)
    hit = np.take_along_axis(below, first[None], 0)[0]
    t_hi = T.ravel()[first]
    t_lo = np.where(first > 0, T.ravel()[np.maximum(first - 1, 0)], 0.05).astype(np.float32)
    return t_lo, np.where(hit, t_hi, np.inf).astype(np.float32), hit


def _refine(ter: Terrain, o: np.ndarray, rx: np.ndarray, ry: np.ndarray, rz: np.ndarray, a: np.ndarray,
            b: np.ndarray, fa: np.ndarray, fb: np.ndarray, bisect: int = 8, false_pos: int = 0) -> np.ndarray:
    """Root of the ray-terrain height difference inside [a, b] (f(a) > 0 >= f(b)): bisection,
    optional false-position steps, then one secant step. Bisection only is the default: false
    position stalls on wide far brackets. Error vs 30 bisections: median 0, max ~0.3 %."""
    for i in range(bisect + false_pos):
        w = 0.5 if i < bisect else np.clip(fa / np.maximum(fa - fb, 1e-9), 0.02, 0.98)
        m = a + (b - a) * w
        fm = _terrain_f(ter, o, rx, ry, rz, m)
        above = fm > 0
        a, fa = np.where(above, m, a), np.where(above, fm, fa)
        b, fb = np.where(above, b, m), np.where(above, fb, fm)
    return a + (b - a) * np.clip(fa / np.maximum(fa - fb, 1e-9), 0, 1)


def trace_terrain(ter: Terrain, o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray,
                  tmax: np.ndarray, **refine: int) -> tuple[np.ndarray, np.ndarray]:
    """First terrain hit per pixel: march at 1/LOWRES resolution, widen each bracket to its
    neighbours (3x3 min/max), verify it at full resolution (full march where it fails),
    then refine (`_refine`). Returns (t, hit)."""
    H, W = dx.shape
    ri = np.minimum(np.arange(-(-H // LOWRES)) * LOWRES + LOWRES // 2, H - 1)
    ci = np.minimum(np.arange(-(-W // LOWRES)) * LOWRES + LOWRES // 2, W - 1)
    sub = np.ix_(ri, ci)
    lo, hi, _ = _march(ter, o, dx[sub], dy[sub], dz[sub], tmax[sub], MARCH_STEPS)
    k = np.ones((3, 3), np.uint8)
    lo, hi = cv2.erode(lo, k), cv2.dilate(hi, k)
    lo = np.ascontiguousarray(np.repeat(np.repeat(lo, LOWRES, 0), LOWRES, 1)[:H, :W]).ravel()
    hi = np.minimum(np.repeat(np.repeat(hi, LOWRES, 0), LOWRES, 1)[:H, :W], tmax).ravel()
    rx, ry, rz, tm = dx.ravel(), dy.ravel(), dz.ravel(), tmax.ravel()
    f_lo, f_hi = _terrain_f(ter, o, rx, ry, rz, lo), _terrain_f(ter, o, rx, ry, rz, hi)
    hit = f_hi <= 0
    bad = np.flatnonzero(hit & ((lo >= hi) | (f_lo <= 0)))
    if bad.size:  # the coarse bracket missed (e.g. a silhouette): march this ray fully
        l2, h2, ok = _march(ter, o, rx[bad], ry[bad], rz[bad], tm[bad], 2 * MARCH_STEPS)
        h2 = np.where(ok, h2, tm[bad])
        lo[bad], hi[bad], hit[bad] = l2, h2, ok
        f_lo[bad] = _terrain_f(ter, o, rx[bad], ry[bad], rz[bad], l2)
        f_hi[bad] = _terrain_f(ter, o, rx[bad], ry[bad], rz[bad], h2)
    idx = np.flatnonzero(hit)
    t = np.full(H * W, np.inf, np.float32)
    t[idx] = _refine(ter, o, rx[idx], ry[idx], rz[idx], lo[idx], hi[idx], f_lo[idx], f_hi[idx], **refine)
    return t.reshape(H, W), hit.reshape(H, W)


def _hit_box(p: Prim, o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray):
    c, s = math.cos(p.yaw), math.sin(p.yaw)
    ox, oy, oz = o[0] - p.c[0], o[1] - p.c[1], o[2] - p.c[2]
    lo_, ld = (c * ox + s * oy, c * oy - s * ox, oz), (c * dx + s * dy, c * dy - s * dx, dz)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = [(-h - a) / d for h, a, d in zip(p.half, lo_, ld)]
        t2 = [(h - a) / d for h, a, d in zip(p.half, lo_, ld)]
    tmin = [np.minimum(a, b) for a, b in zip(t1, t2)]
    tn = np.maximum(np.maximum(tmin[0], tmin[1]), tmin[2])
    tf = np.minimum(np.minimum(np.maximum(t1[0], t2[0]), np.maximum(t1[1], t2[1])), np.maximum(t1[2], t2[2]))
    ok = (tn <= tf) & (tn > 0.05)
    nl = [np.where(tm == tn, -np.sign(d), 0.0).astype(np.float32) for tm, d in zip(tmin, ld)]
    return np.where(ok, tn, np.inf), np.stack([c * nl[0] - s * nl[1], s * nl[0] + c * nl[1], nl[2]], -1)


def _hit_cyl(p: Prim, o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray):
    r, hh = p.half[0], p.half[2]
    ox, oy, oz = o[0] - p.c[0], o[1] - p.c[1], o[2] - p.c[2]
    a = dx * dx + dy * dy
    b = ox * dx + oy * dy
    disc = b * b - a * (ox * ox + oy * oy - r * r)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / a
        z = oz + t * dz
        side = (disc >= 0) & (t > 0.05) & (np.abs(z) <= hh)
        tc = (hh - oz) / dz
        cap = (oz > hh) & (tc > 0.05) & ((ox + tc * dx) ** 2 + (oy + tc * dy) ** 2 <= r * r)
    t = np.where(side, t, np.inf)
    use_cap = cap & (tc < t)
    t = np.where(use_cap, tc, t)
    tt = np.where(np.isfinite(t), t, 0)
    nx, ny = (ox + tt * dx) / r, (oy + tt * dy) / r
    n = np.stack([np.where(use_cap, 0, nx), np.where(use_cap, 0, ny), np.where(use_cap, 1.0, 0.0)], -1)
    return t, np.nan_to_num(n).astype(np.float32)


def _hit_ell(p: Prim, o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray):
    rx, ry, rz = p.half
    ox, oy, oz = (o[0] - p.c[0]) / rx, (o[1] - p.c[1]) / ry, (o[2] - p.c[2]) / rz
    ex, ey, ez = dx / rx, dy / ry, dz / rz
    a = ex * ex + ey * ey + ez * ez
    b = ox * ex + oy * ey + oz * ez
    disc = b * b - a * (ox * ox + oy * oy + oz * oz - 1)
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / a
    t = np.where((disc >= 0) & (t > 0.05), t, np.inf)
    tt = np.where(np.isfinite(t), t, 0)
    n = np.stack([(ox + tt * ex) / rx, (oy + tt * ey) / ry, (oz + tt * ez) / rz], -1)
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-6)
    return t, np.nan_to_num(n).astype(np.float32)


_HIT = {P_BOX: _hit_box, P_CYL: _hit_cyl, P_ELL: _hit_ell}


def trace_prims(sc: Scene, cam: Camera, rays: tuple[np.ndarray, ...], t: np.ndarray, kind: np.ndarray,
                labels: np.ndarray, albedo: np.ndarray, normal: np.ndarray, texamp: np.ndarray) -> None:
    """Z-buffer each primitive into the frame buffers, only inside its screen rectangle."""
    for p in sc.prims:
        corners = p.corners()
        rect = _screen_rect(cam, corners)
        if rect is None:
            continue
        zmin = float(((corners - cam.origin) @ cam.axes[2]).min())
        if float(t[rect].max()) < zmin:  # everything in the rectangle is nearer: hidden
            continue
        tp, n = _HIT[p.kind](p, cam.origin, *(r[rect] for r in rays))
        m = tp < t[rect]
        if not m.any():
            continue
        t[rect][m], kind[rect][m], labels[rect][m], texamp[rect][m] = tp[m], K_PRIM, p.label, p.tex
        for c in range(3):
            albedo[c][rect][m], normal[c][rect][m] = p.color[c], n[..., c][m]


# ----------------------------------------------------------------------------- shading
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


# ----------------------------------------------------------------------------- sensor + lidar
@lru_cache(maxsize=8)
def _vignette(h: int, w: int) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    return (1 - 0.09 * (((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2)).astype(np.float32)


def sensor(rng: np.random.Generator, env: Env, col: np.ndarray) -> np.ndarray:
    """Auto-exposure, vignetting, slight blur and noise on planar (3, H, W) colour: the camera,
    not the scene, so depth and labels stay exact. Metering aims the mean at ~0.42 like a
    camera's auto-exposure; env.exposure (0.85-1.15) keeps some frames under/over exposed."""
    gain = float(np.clip(0.42 / max(float(col[:, ::4, ::4].mean()), 1e-3), 0.7, 2.5)) * env.exposure
    g = _vignette(*col.shape[1:]) * (gain * 255)
    img = cv2.merge([col[0] * g, col[1] * g, col[2] * g])
    img = cv2.GaussianBlur(img, (0, 0), _u(rng, 0.35, 0.8))
    noise = rng.standard_normal(col.shape[1:], dtype=np.float32) * _u(rng, 1.0, 4.5)  # luminance noise
    img += noise[..., None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def lidar_sparse(cam: Camera, depth: np.ndarray, beams: int, az_steps: int = LIDAR_AZIMUTH_STEPS) -> np.ndarray:
    """Sparse depth of a level spinning lidar at the camera centre: beam elevations evenly
    spaced over LIDAR_ELEVATION_DEG, az_steps per revolution; each (beam, azimuth) direction
    is projected to its pixel, which keeps the dense depth there (0 = sky / no return).
    Mounted at the optical centre so lidar depth equals dense depth (no parallax)."""
    el = np.radians(np.linspace(*LIDAR_ELEVATION_DEG, beams))[:, None]
    az = (np.arange(az_steps) * (2 * math.pi / az_steps))[None, :]
    d = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el) + 0 * az], -1).reshape(-1, 3)
    u, v, z = project(cam, cam.origin + d)
    ok = z > 0.05
    u, v = np.rint(u[ok]).astype(np.int64), np.rint(v[ok]).astype(np.int64)
    inb = (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    out = np.zeros_like(depth)
    out[v[inb], u[inb]] = depth[v[inb], u[inb]]
    return out


# ----------------------------------------------------------------------------- frame API
@dataclass
class SynthFrame:
    rgb: np.ndarray  # (H, W, 3) uint8 RGB
    depth_m: np.ndarray  # (H, W) float32 z-depth, 0 = sky / no data
    labels: np.ndarray  # (H, W) uint8 golf class ids
    lidar_depth_m: np.ndarray | None  # (H, W) float32 sparse depth, 0 = no return
    intrinsics: dict[str, Any]
    camera_height_m: float
    pitch_deg: float
    roll_deg: float
    yaw_deg: float = 0.0
    seed: int = 0
    index: int = 0
    split: str = "train"


def render_frame(seed: int, index: int, height: int = 240, width: int = 320, lidar_beams: int = 0, *,
                 split: str = "train", hfov_deg: float | None = DEFAULT_HFOV_DEG) -> SynthFrame:
    """Render frame `index` of (seed, split); identical on every run. hfov_deg=None draws a
    60-90 deg field of view per frame (the intrinsics then differ between frames)."""
    if lidar_beams not in (0, 32, 64):
        raise ValueError(f"lidar_beams must be 0, 32 or 64, not {lidar_beams}")
    rng = frame_rng(seed, index, split)
    course = make_course(rng)
    ter = build_terrain(rng, course)
    ground_z = float(ter.height(np.zeros((1, 1)), np.zeros((1, 1)))[0, 0])
    cam = make_camera(rng, height, width, course.view_yaw, ground_z, hfov_deg)
    tl = make_treeline(rng)
    env = make_env(rng)
    sc = place_obstacles(rng, course, ter, cam)
    rays = camera_rays(cam)
    dx, dy, dz = rays
    o = cam.origin.astype(np.float32)
    # tree line first: it bounds the terrain march
    phi = np.arctan2(dy, dx)
    t_wall = (tl.radius(phi) / np.maximum(np.hypot(dx, dy), 1e-4)).astype(np.float32)
    wz = o[2] + t_wall * dz
    wall = wz < ter.height(t_wall * dx, t_wall * dy) + tl.crown(phi)
    t_ground, ground = trace_terrain(ter, o, dx, dy, dz, np.minimum(t_wall, T_FAR))
    kind = np.where(ground, K_GROUND, np.where(wall, K_TREELINE, K_SKY)).astype(np.uint8)
    t = np.where(ground, t_ground, np.where(wall, t_wall, np.inf)).astype(np.float32)
    labels = np.zeros((height, width), np.uint8)
    albedo = np.zeros((3, height, width), np.float32)
    normal = np.zeros((3, height, width), np.float32)
    texamp = np.zeros((height, width), np.float32)
    trace_prims(sc, cam, rays, t, kind, labels, albedo, normal, texamp)
    col, mat = shade(env, course, ter, tl, sc, cam, rays, t, kind, albedo, normal, texamp)
    g = kind == K_GROUND
    labels[g] = GROUND_LABEL[mat[g]]
    depth = np.where(kind == K_SKY, 0, np.minimum(t, MAX_DEPTH_M)).astype(np.float32)
    rgb = sensor(rng, env, col)
    lidar = lidar_sparse(cam, depth, lidar_beams) if lidar_beams else None
    return SynthFrame(rgb, depth, labels, lidar, cam.intrinsics(), cam.height_m, cam.pitch_deg, cam.roll_deg,
                      cam.yaw_deg, int(seed), int(index), split)


# ----------------------------------------------------------------------------- dataset + tools
def _render_job(job: tuple) -> SynthFrame:
    seed, index, split, h, w, beams, hfov = job
    return render_frame(seed, index, h, w, beams, split=split, hfov_deg=hfov)


def _worker_init() -> None:
    cv2.setNumThreads(1)  # the pool provides the parallelism; 2 shared cores


def generate(out: str | Path, n: int, seed: int, split: str = "train", height: int = 240, width: int = 320,
             lidar_beams: int = 0, workers: int = 2, depth_source: str = "dense",
             hfov_deg: float | None = DEFAULT_HFOV_DEG, progress: bool = True) -> int:
    """Render frames 0..n-1 of (seed, split) into a meco-dataset/1 root; returns frames written.
    depth_source 'lidar' stores the sparse lidar depth (needs lidar_beams) instead of dense.
    Note the format stores depth as uint16 mm, so depth beyond 65.535 m becomes "no data"."""
    from tqdm import tqdm

    from meco_core.classes import get_class_set
    from meco_core.data.format import DatasetWriter

    if depth_source not in ("dense", "lidar"):
        raise ValueError(f"depth_source must be 'dense' or 'lidar', not {depth_source!r}")
    if depth_source == "lidar" and not lidar_beams:
        raise ValueError("depth_source='lidar' needs lidar_beams 32 or 64")
    intr = None
    if hfov_deg is not None:
        fx = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        intr = dict(fx=fx, fy=fx, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)
    src = f"meco synth seed={seed} hfov={hfov_deg} lidar={lidar_beams} depth={depth_source}"
    jobs = [(seed, i, split, height, width, lidar_beams, hfov_deg) for i in range(n)]
    written = 0
    with DatasetWriter(out, get_class_set("golf"), intrinsics=intr, source=src) as wr:
        # spawn, not fork: a fork after OpenCV has started its thread pool can deadlock the children
        pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init) if workers > 1 else None
        try:
            frames = pool.imap(_render_job, jobs, chunksize=4) if pool else map(_render_job, jobs)
            for fr in tqdm(frames, total=n, desc=f"synth {split}", disable=not progress, unit="frame"):
                depth = fr.lidar_depth_m if depth_source == "lidar" else fr.depth_m
                wr.write(split, f"{fr.index:06d}", fr.rgb, depth, fr.labels)
                written += 1
        finally:
            if pool:
                pool.close()
                pool.join()
    return written


def contact_sheet(frames: Sequence[SynthFrame], path: str | Path) -> Path:
    """PNG with one row per frame: RGB | depth (lidar points overlaid if any) | labels."""
    from meco_core.classes import get_class_set
    from meco_core.visualize import colorize_depth

    pal = get_class_set("golf").palette()
    rows = []
    h0, w0 = frames[0].rgb.shape[:2]
    for fr in frames:
        d = colorize_depth(fr.depth_m, MAX_DEPTH_M)
        if fr.lidar_depth_m is not None:
            d = np.where((fr.lidar_depth_m > 0)[..., None], 255, d // 3).astype(np.uint8)
        row = np.concatenate([fr.rgb, d, pal[fr.labels]], 1)
        if row.shape[0] != h0:
            row = cv2.resize(row, (3 * w0, h0), interpolation=cv2.INTER_AREA)
        rows.append(np.pad(row, ((0, 2), (0, 0), (0, 0)), constant_values=255))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(np.concatenate(rows, 0)[..., ::-1])):
        raise OSError(f"could not write {path}")
    return path


def main_from_args(args: Any) -> int:
    """CLI entry (`meco data synth`): args.out, n, seed, split, size ('HxW' or None), lidar_beams."""
    from meco_core.data.format import DatasetReader

    size = getattr(args, "size", None) or (240, 320)
    h, w = size if isinstance(size, (tuple, list)) else (int(v) for v in str(size).lower().split("x"))
    beams = int(getattr(args, "lidar_beams", 0) or 0)
    t0 = time.perf_counter()
    n = generate(args.out, int(args.n), int(args.seed), getattr(args, "split", None) or "train", h, w, beams,
                 workers=int(getattr(args, "workers", 2) or 2),
                 depth_source=getattr(args, "depth_source", None) or "dense")
    dt = time.perf_counter() - t0
    reader = DatasetReader(args.out)
    split = getattr(args, "split", None) or "train"
    counts = np.zeros(len(CLASS_NAMES), np.int64)
    for name in reader.names(split)[: min(n, 200)]:
        lab = reader.load(split, name).labels
        if lab is not None:
            counts += np.bincount(lab.ravel(), minlength=256)[: len(CLASS_NAMES)]
    frac = " ".join(f"{c}={v / max(counts.sum(), 1):.3f}" for c, v in zip(CLASS_NAMES, counts))
    print(f"synth: {n} frames {w}x{h} -> {args.out} in {dt:.1f} s ({n / max(dt, 1e-9):.1f} frames/s)")
    print(f"class pixel fractions: {frac}")
    return 0
