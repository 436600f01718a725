"""Obstacles as analytic primitives (boxes, cylinders, ellipsoids): carts, people, flags,
poles and trees, placed on the course in front of the camera; optionally ("near scenery")
bushes, trees, buildings, carts and people 3-30 m beside the path, as real streets, suburbs
and trails have them.

Part of the procedural golf-course renderer; see meco_core.data.synth for the scene model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .common import (BACKGROUND, G_CUT, G_FAIRWAY, G_GREEN, G_ROAD, G_ROUGH, G_SAND, G_WATER, OBSTACLE, P_BOX,
                     P_CYL, P_ELL, TREE_LABEL, _u)
from .course import Course, ground_material
from .terrain import Terrain
from .camera import Camera

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


BUSH_COLORS = [(0.10, 0.26, 0.07), (0.07, 0.18, 0.06), (0.28, 0.31, 0.11), (0.22, 0.27, 0.10), (0.32, 0.25, 0.13)]
# facades: white, beige, brick red, grey, tan, off-white render
FACADES = [(0.88, 0.87, 0.83), (0.83, 0.76, 0.62), (0.56, 0.26, 0.19), (0.52, 0.52, 0.52), (0.72, 0.62, 0.46),
           (0.78, 0.78, 0.72)]
ROOFS = [(0.18, 0.18, 0.2), (0.32, 0.16, 0.12), (0.3, 0.29, 0.27), (0.22, 0.2, 0.17)]


def add_bush(sc: Scene, rng: np.random.Generator, x: float, y: float, z: float) -> None:
    """A low clump of 1-3 overlapping ellipsoids, 0.4-1.6 m tall, 0.5-2.0 m radius, green, olive
    or brownish with strong texture noise (label TREE_LABEL). z is the ground under the clump;
    callers pass the lowest ground around it, the ellipsoids sink below it. Never taller than
    1.5x its radius: clumps, not eggs."""
    r = _u(rng, 0.5, 2.0)
    height = _u(rng, 0.4, min(1.6, 1.5 * r))
    base = BUSH_COLORS[int(rng.integers(len(BUSH_COLORS)))]
    rz0 = height / 1.5  # centre 0.5 rz above ground: the top is at `height`
    for i in range(int(rng.integers(1, 4))):
        if i == 0:
            cx, cy, rx, ry, rz = x, y, r * _u(rng, 0.75, 1.0), r * _u(rng, 0.75, 1.0), rz0
        else:
            a, off = _u(rng, 0, 6.3), r * _u(rng, 0.25, 0.5)
            cx, cy = x + off * math.cos(a), y + off * math.sin(a)
            rx, ry, rz = r * _u(rng, 0.4, 0.55), r * _u(rng, 0.4, 0.55), rz0 * _u(rng, 0.6, 0.95)
        col = tuple(min(max(c + _u(rng, -0.03, 0.03), 0.02), 1.0) for c in base)
        zc = z + 0.5 * rz
        sc.prims.append(Prim(P_ELL, (cx, cy, zc), (rx, ry, rz), col, TREE_LABEL, tex=_u(rng, 0.5, 0.65)))
        sc.casters.append((cx, cy, z, cx, cy, zc + 0.6 * rz, 0.9 * max(rx, ry), z))
    sc.spots.append((x, y, r))


def building_size(rng: np.random.Generator) -> tuple[float, float, float]:
    """(width, depth, height) in metres: 4-16 x 4-12 x 3-10."""
    return _u(rng, 4, 16), _u(rng, 4, 12), _u(rng, 3, 10)


def add_building(sc: Scene, rng: np.random.Generator, x: float, y: float, z: float, yaw: float | None = None,
                 size: tuple[float, float, float] | None = None) -> None:
    """A box building (size (width, depth, height) from building_size, yaw random unless given)
    with a plausible facade colour, a darker roof slab with a small overhang and, on most,
    dark ribbon windows per 3 m floor. Label BACKGROUND. z is the lowest ground under the
    footprint; the walls go 0.5 m below it so slopes show no gap."""
    w, dp, h = size if size is not None else building_size(rng)
    yaw = _u(rng, 0, math.pi) if yaw is None else yaw
    k = _u(rng, 0.9, 1.05)
    wall = tuple(min(c * k, 1.0) for c in FACADES[int(rng.integers(len(FACADES)))])
    roof = ROOFS[int(rng.integers(len(ROOFS)))]
    sink, over, th = 0.5, _u(rng, 0.1, 0.5), _u(rng, 0.15, 0.35)
    sc.prims.append(Prim(P_BOX, (x, y, z + (h - sink) / 2), (w / 2, dp / 2, (h + sink) / 2), wall, BACKGROUND, yaw,
                         tex=0.08))
    sc.prims.append(Prim(P_BOX, (x, y, z + h + th / 2), (w / 2 + over, dp / 2 + over, th / 2), roof, BACKGROUND, yaw,
                         tex=0.12))
    if rng.random() < 0.7:
        band, glass = _u(rng, 0.8, 1.4), (0.08 + _u(rng, 0, 0.06), 0.1 + _u(rng, 0, 0.06), 0.13 + _u(rng, 0, 0.06))
        for f in range(max(1, int(h // 3))):
            zc = z + 3.0 * f + 1.6
            if zc + band / 2 > z + h - 0.3:
                break
            sc.prims.append(Prim(P_BOX, (x, y, zc), (w / 2 + 0.03, dp / 2 + 0.03, band / 2), glass, BACKGROUND, yaw,
                                 tex=0.1))
    # shadow: capsules along the long axis at three heights (casters are segments + radius)
    ax = yaw if w >= dp else yaw + math.pi / 2
    half_len, r = (max(w, dp) - min(w, dp)) / 2, min(w, dp) / 2
    ux, uy = half_len * math.cos(ax), half_len * math.sin(ax)
    for f in (0.3, 0.65, 1.0):
        zz = z + h * f
        sc.casters.append((x - ux, y - uy, zz, x + ux, y + uy, zz, r, z))
    sc.spots.append((x, y, math.hypot(w, dp) / 2 + over))


def _point_queries(course: Course, terrain: Terrain) -> tuple[Callable[[float, float], float],
                                                              Callable[[float, float], int]]:
    """(ground height at x, y; ground material at x, y) for single points: what placing uses."""
    def height_at(x: float, y: float) -> float:
        return float(terrain.height(np.array([[x]]), np.array([[y]]))[0, 0])

    def material_at(x: float, y: float) -> int:
        return int(ground_material(course, np.array([x]), np.array([y]))[0][0])

    return height_at, material_at


NEAR_COUNT = (2, 8)  # near things per frame (inclusive)
# kind: probability, distance range (m), spots tried. Trees from 4 m, buildings from 8 m (their
# whole footprint on rough/cut: most of a golf view is fairway, so they get more tries),
# carts/people 3-15 m.
NEAR_KINDS = {"bush": (0.40, (3.0, 30.0), 10), "tree": (0.25, (4.0, 30.0), 10),
              "building": (0.20, (8.0, 30.0), 40), "cart_person": (0.15, (3.0, 15.0), 10)}


def _blocks_camera(prims: list[Prim], origin: np.ndarray, margin: float = 0.5) -> bool:
    """Whether the camera is inside (or within `margin` of) any of these primitives' boxes."""
    for p in prims:
        c = p.corners()
        if ((origin > c.min(0) - margin) & (origin < c.max(0) + margin)).all():
            return True
    return False


def _rect_free(sc: Scene, x: float, y: float, yaw: float, hx: float, hy: float) -> bool:
    """Scene.free for a yawed rectangle (half sizes hx, hy): the footprint keeps 2.5 m from the
    camera and clear of every occupied spot's circle."""
    c, s = math.cos(yaw), math.sin(yaw)
    for a, b, r in [(0.0, 0.0, 2.5)] + sc.spots:
        lx, ly = c * (a - x) + s * (b - y), -s * (a - x) + c * (b - y)
        if math.hypot(max(abs(lx) - hx, 0.0), max(abs(ly) - hy, 0.0)) <= r:
            return False
    return True


def place_near(sc: Scene, rng: np.random.Generator, course: Course, terrain: Terrain, cam: Camera) -> int:
    """Near scenery: NEAR_COUNT things inside the view (yaw +- hfov/2) at log-uniform distances
    in their kind's range (NEAR_KINDS), never on the path (sdf > 2 m), water, green or sand:
    bushes, trees, buildings (footprint on rough/cut only) and parked carts / people (on
    rough/cut, OBSTACLE). A thing that finds no free spot in its kind's tries is replaced by
    a new draw (up to twice the count in all), so views of open fairway get fewer buildings;
    anything that would enclose the camera is taken back. Returns how many were placed.
    Draws only from `rng` (its own generator), so the default scene does not change."""
    hfov = 2 * math.atan(cam.width / 2 / cam.fx)
    yaw = math.radians(cam.yaw_deg)
    hz, mat_at = _point_queries(course, terrain)

    def path_sdf(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        if course.path is None:
            return np.full(np.shape(x), 1e3)
        return np.asarray(course.path.sdf(np.asarray(x, np.float64), np.asarray(y, np.float64)))

    def ground_min(x: float, y: float, pts_x: np.ndarray, pts_y: np.ndarray) -> float:
        return float(terrain.height(np.asarray(x + pts_x)[None], np.asarray(y + pts_y)[None]).min())

    ring = np.linspace(0, 2 * math.pi, 8, endpoint=False)
    ring_x, ring_y = np.r_[0, 1.5 * np.cos(ring)], np.r_[0, 1.5 * np.sin(ring)]
    names = list(NEAR_KINDS)
    probs = np.array([NEAR_KINDS[k][0] for k in names])
    placed, want = 0, int(rng.integers(NEAR_COUNT[0], NEAR_COUNT[1] + 1))
    for _ in range(2 * want):  # a thing that finds no spot is replaced by a new draw (kind too), once
        if placed >= want:
            break
        kind = names[int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), side="right"))]
        _p, (lo, hi), tries = NEAR_KINDS[kind]
        for _try in range(tries):
            a = yaw + _u(rng, -0.5, 0.5) * hfov
            d = math.exp(_u(rng, math.log(lo), math.log(hi)))
            x, y = d * math.cos(a), d * math.sin(a)
            m = mat_at(x, y)
            if m in (G_WATER, G_GREEN, G_SAND, G_ROAD) or float(path_sdf(x, y)) <= 2.0:
                continue
            n0 = (len(sc.prims), len(sc.casters), len(sc.spots))
            if kind == "bush":
                if not sc.free(x, y, 0.5):
                    continue
                add_bush(sc, rng, x, y, ground_min(x, y, ring_x, ring_y))
            elif kind == "tree":
                if not sc.free(x, y, 2.0):
                    continue
                add_tree(sc, rng, x, y, hz(x, y))
            elif kind == "building":
                if m not in (G_ROUGH, G_CUT):
                    continue
                size, byaw = building_size(rng), _u(rng, 0, math.pi)
                w, dp, _h = size
                if not _rect_free(sc, x, y, byaw, w / 2 + 0.5, dp / 2 + 0.5):
                    continue
                g = np.linspace(-0.5, 0.5, 6)
                lx, ly = np.meshgrid(g * (w + 1.0), g * (dp + 1.0))
                fx = x + math.cos(byaw) * lx - math.sin(byaw) * ly
                fy = y + math.sin(byaw) * lx + math.cos(byaw) * ly
                mats = ground_material(course, fx, fy)[0]
                if not np.isin(mats, (G_ROUGH, G_CUT)).all() or not (path_sdf(fx, fy) > 2.0).all():
                    continue
                add_building(sc, rng, x, y, float(terrain.height(fx, fy).min()), byaw, size)
            else:
                if m not in (G_ROUGH, G_CUT) or not sc.free(x, y, 1.5):
                    continue
                if rng.random() < 0.5:
                    add_cart(sc, rng, x, y, hz(x, y), _u(rng, 0, 2 * math.pi))
                else:
                    add_person(sc, rng, x, y, hz(x, y))
            if _blocks_camera(sc.prims[n0[0]:], cam.origin):
                del sc.prims[n0[0]:], sc.casters[n0[1]:], sc.spots[n0[2]:]
                continue
            placed += 1
            break
    return placed


def place_obstacles(rng: np.random.Generator, course: Course, terrain: Terrain, cam: Camera,
                    near: bool = False) -> Scene:
    """Flags on greens, carts on the path, then 2-7 obstacles sampled inside the view at
    3-60 m (log-uniform) whose kind suits the ground they land on, then scenery trees.
    near=True adds near scenery (place_near) from a generator seeded by one draw of `rng`,
    taken only then: near=False consumes exactly the random numbers it always did."""
    sc = Scene()
    hz, mat_at = _point_queries(course, terrain)
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
    if near:
        place_near(sc, np.random.default_rng(int(rng.integers(2**63))), course, terrain, cam)
    return sc
