"""One frame: render_frame(seed, index) -> SynthFrame (RGB, depth, labels, intrinsics).

Part of the procedural golf-course renderer; see meco_core.data.synth for the scene model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from meco_core.defaults import MAX_DEPTH_M

from .common import DEFAULT_HFOV_DEG, ROUGH_LABELS, K_GROUND, K_SKY, K_TREELINE, T_FAR, frame_rng
from .course import make_course
from .terrain import build_terrain, make_treeline
from .camera import camera_rays, make_camera
from .scene import place_obstacles
from .raycast import trace_prims, trace_terrain
from .render import make_env, shade
from .lidar import lidar_sparse, sensor

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
                 split: str = "train", hfov_deg: float | tuple[float, float] | None = DEFAULT_HFOV_DEG,
                 near: bool = False, rough: str = "background") -> SynthFrame:
    """Render frame `index` of (seed, split); identical on every run. hfov_deg=None draws a
    60-90 deg field of view per frame (the intrinsics then differ between frames). near=True
    adds near scenery (bushes, trees, buildings, carts, people at 3-30 m; scene.place_near);
    near=False renders exactly the frames it always did. rough: the label of the rough and the
    first cut ("background" or "fairway", `ROUGH_LABELS`); the image does not change."""
    if rough not in ROUGH_LABELS:
        raise ValueError(f"rough must be one of {sorted(ROUGH_LABELS)}, not {rough!r}")
    if lidar_beams not in (0, 32, 64):
        raise ValueError(f"lidar_beams must be 0, 32 or 64, not {lidar_beams}")
    rng = frame_rng(seed, index, split)
    course = make_course(rng)
    ter = build_terrain(rng, course)
    ground_z = float(ter.height(np.zeros((1, 1)), np.zeros((1, 1)))[0, 0])
    cam = make_camera(rng, height, width, course.view_yaw, ground_z, hfov_deg)
    tl = make_treeline(rng)
    env = make_env(rng)
    sc = place_obstacles(rng, course, ter, cam, near=near)
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
    labels[g] = ROUGH_LABELS[rough][mat[g]]
    depth = np.where(kind == K_SKY, 0, np.minimum(t, MAX_DEPTH_M)).astype(np.float32)
    rgb = sensor(rng, env, col)
    lidar = lidar_sparse(cam, depth, lidar_beams) if lidar_beams else None
    return SynthFrame(rgb, depth, labels, lidar, cam.intrinsics(), cam.height_m, cam.pitch_deg, cam.roll_deg,
                      cam.yaw_deg, int(seed), int(index), split)


