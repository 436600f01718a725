"""Geometric pseudo-depth for real labelled frames that have no depth sensor.

Why: the only real frames with metric depth here are four lidar frames, far too few to
learn from, while hundreds of real frames carry semantic labels. A label map plus a camera
model already says a lot about distance, stixel-style:

- ground (road, trail, grass, puddle) lies on a flat plane `camera_height` below the
  camera: a pixel `v - v_h` rows below the horizon row v_h is at z-depth
  `fy * camera_height / (v - v_h)` (exactly, divided by cos(pitch): 1.5 % at 10 degrees, ignored);
- an upright thing (tree, building, car, person, pole) stands where it meets the ground:
  every pixel of it takes the depth of the ground pixel directly below it in its column;
- sky has no depth; pixels whose ground contact cannot be seen (an upright thing that runs
  off the image bottom or stands on void, a second upright class stacked on a first
  without ground between them: a house behind a car) are left without depth, as is ground
  beyond `max_ground_depth` (near the horizon a one-row error is tens of metres).

The values are only as good as the assumed camera height and horizon; the importers that
use this record those assumptions in dataset.yaml (`camera_note`).
"""
from __future__ import annotations

import math

import numpy as np

GROUND, UPRIGHT, SKY, UNKNOWN = 0, 1, 2, 3  # geometric roles of label ids
MAX_GROUND_DEPTH_M = 40.0


def role_lut(roles: dict[int, int]) -> np.ndarray:
    """(256,) uint8: label id -> role (UNKNOWN for ids not listed, e.g. void 255)."""
    lut = np.full(256, UNKNOWN, np.uint8)
    for label, role in roles.items():
        lut[int(label)] = int(role)
    return lut


def ground_row_depth(height: int, fy: float, horizon_row: float, camera_height: float,
                     max_ground_depth: float = MAX_GROUND_DEPTH_M) -> np.ndarray:
    """(height,) z-depth of a flat ground plane at each image row (pixel centres); 0 above
    the horizon and beyond max_ground_depth."""
    below = np.arange(height, dtype=np.float64) - float(horizon_row)
    z = np.where(below > 0.5, fy * camera_height / np.maximum(below, 0.5), 0.0)
    z[z > max_ground_depth] = 0.0
    return z.astype(np.float32)


def pseudo_depth(labels: np.ndarray, roles: np.ndarray, fy: float, horizon_row: float, camera_height: float,
                 max_ground_depth: float = MAX_GROUND_DEPTH_M) -> np.ndarray:
    """(H, W) float32 metres, 0 = no depth, from a label map (ids) and a role LUT (`role_lut`).

    Walks the rows bottom-up with all columns at once, carrying each column's last ground
    contact depth and the upright class standing on it."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got {labels.shape}")
    if not (fy > 0 and camera_height > 0 and math.isfinite(horizon_row) and max_ground_depth > 0):
        raise ValueError(f"need fy > 0, camera_height > 0, a finite horizon row and max_ground_depth > 0; got "
                         f"{fy}, {camera_height}, {horizon_row}, {max_ground_depth}")
    h, w = labels.shape
    role = roles[labels]
    row_z = ground_row_depth(h, fy, horizon_row, camera_height, max_ground_depth)
    out = np.zeros((h, w), np.float32)
    contact = np.zeros(w, np.float32)  # 0 = no known contact
    standing = np.full(w, -1, np.int64)  # upright class on the current contact (-1: none yet)
    for v in range(h - 1, -1, -1):
        r, c = role[v], labels[v].astype(np.int64)
        ground = r == GROUND
        out[v, ground] = row_z[v]
        contact[ground] = row_z[v]
        standing[ground] = -1
        up = r == UPRIGHT
        stacked = up & (standing >= 0) & (standing != c)
        contact[stacked] = 0.0
        out[v, up] = contact[up]
        standing[up] = c[up]
        other = ~(ground | up)
        contact[other] = 0.0
        standing[other] = -1
    return out
