"""The camera sensor (vignette, noise) and a simulated spinning lidar sampled from the
exact depth.

Part of the procedural golf-course renderer; see meco_core.data.synth for the scene model.
"""
from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from .common import LIDAR_AZIMUTH_STEPS, LIDAR_ELEVATION_DEG, _u
from .camera import Camera, project
from .render import Env

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


