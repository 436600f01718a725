"""Shared by every stage of the renderer: class ids, scene constants, seeded RNGs and the
noise textures the ground and sky are shaded with.

Part of the procedural golf-course renderer; see meco_core.data.synth for the scene model.
"""
from __future__ import annotations

import math
import zlib
from functools import lru_cache

import cv2
import numpy as np




CLASS_NAMES = ("background", "fairway", "hazard", "road", "obstacle")
BACKGROUND, FAIRWAY, HAZARD, ROAD, OBSTACLE = range(5)
# classes.py: trees line the holes and are "background" in every real dataset's remap
# (RELLIS tree -> background); keep synthetic trees consistent. Set OBSTACLE to change.
TREE_LABEL = BACKGROUND
DEFAULT_HFOV_DEG = 75.0  # fixed per dataset (DatasetWriter stores one intrinsics)
HFOV_RANGE_DEG = (45.0, 90.0)  # `--hfov random`: drawn per frame, stored per frame
LIDAR_ELEVATION_DEG = (-25.0, 15.0)
LIDAR_AZIMUTH_STEPS = 512  # points per revolution (0.7 deg: a 20 Hz spinning-lidar mode)

GRID_RES, GRID_HALF = 0.5, 96.0  # terrain height grid (m); covers the tree line radius
T_NEAR, T_FAR = 0.3, 90.0  # ray parameter range for the terrain march
MARCH_STEPS, LOWRES = 40, 4

# ground materials; their labels in GROUND_LABEL
G_ROUGH, G_CUT, G_FAIRWAY, G_GREEN, G_ROAD, G_SAND, G_WATER = range(7)
GROUND_LABEL = np.array([BACKGROUND, BACKGROUND, FAIRWAY, FAIRWAY, ROAD, HAZARD, HAZARD], np.uint8)
# What the rough and the first cut are labelled: "background" (the frames as always rendered) or
# "fairway" (drivable turf, as classes.py defines fairway and as real grass is labelled: YCOR's
# traversable grass, RELLIS's grass). The labels only: the images are the same.
ROUGH_LABELS = {"background": GROUND_LABEL,
                "fairway": np.array([FAIRWAY, FAIRWAY, FAIRWAY, FAIRWAY, ROAD, HAZARD, HAZARD], np.uint8)}
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


