"""Obstacles as analytic primitives (boxes, cylinders, ellipsoids): carts, people, flags,
poles and trees, placed on the course in front of the camera.

Part of the procedural golf-course renderer; see meco_core.data.synth for the scene model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .common import G_CUT, G_FAIRWAY, G_GREEN, G_ROAD, G_ROUGH, G_SAND, G_WATER, OBSTACLE, P_BOX, P_CYL, P_ELL, TREE_LABEL, _u
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


