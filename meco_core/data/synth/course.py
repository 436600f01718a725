"""The course layout, analytic in the ground plane: fairway bands, greens, the cart path,
ponds and bunkers, and which material covers a ground point.

Part of the procedural golf-course renderer; see meco_core.data.synth for the scene model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .common import G_CUT, G_FAIRWAY, G_GREEN, G_ROAD, G_ROUGH, G_SAND, G_WATER, _u

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
        s, off = self.local(x, y)
        lc, slope = self.centre(s)
        hw = self.half_w * (1 + self.w_amp * np.sin(self.w_freq * s + self.phase))
        if self.taper:  # rounded ends instead of square cut-offs
            k = np.clip(np.minimum(s - self.s0, self.s1 - s) / hw, 0, 1)
            hw = hw * np.sqrt(1 - (1 - k) ** 2)
        lat = np.abs(off - lc) / np.sqrt(1 + slope * slope) - hw
        return np.maximum(lat, np.maximum(self.s0 - s, s - self.s1))

    def point(self, s: float, off: float = 0.0) -> tuple[float, float, float]:
        """World (x, y, heading) at along-coordinate s, lateral offset off from the centre."""
        lc, slope = self.centre(np.float64(s))
        c, sn = math.cos(self.theta), math.sin(self.theta)
        lateral = float(lc) + off
        return (self.ox + c * s - sn * lateral, self.oy + sn * s + c * lateral,
                self.theta + math.atan(float(slope)))


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


