"""The pinhole camera over the terrain: placement, rays, projection.

Part of the procedural golf-course renderer; see meco_core.data.synth for the scene model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import HFOV_RANGE_DEG, _u

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
                hfov_deg: float | tuple[float, float] | None) -> Camera:
    """Pinhole camera 1.2-2.0 m above the ground; pitch -2..-12 deg, roll +-3 deg (mounting
    and cart attitude). hfov None draws HFOV_RANGE_DEG per frame (focal-length augmentation:
    real cameras here span about 38-90 deg); a (low, high) pair draws from that range."""
    if hfov_deg is None or isinstance(hfov_deg, (tuple, list)):
        hfov = math.radians(_u(rng, *(hfov_deg or HFOV_RANGE_DEG)))
    else:
        hfov = math.radians(hfov_deg)
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


