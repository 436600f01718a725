"""A frame as the same camera turned about its own centre would have recorded it: exact, at any depth.

Why: a camera turned in place (pitched, rolled, yawed) sees the same rays, so its image is a
homography of the original (K R K'^-1 maps a turned pixel to the original pixel on its ray; no
parallax whatever the depth) and its depth follows by moving each depth pixel's 3D point into the
turned camera. Used to measure a model on real lidar frames as other mountings would record them
(`tools/camera_views.py`) and, in training (`data.camera_turn`), to show real frames at other
pitches and rolls: the real frames' pseudo-depth comes from one assumed horizon per dataset
(`meco_core.data.pseudo_depth`), which otherwise teaches that the horizon sits at one image row.

Angles: pitch > 0 looks down, yaw > 0 looks right, roll > 0 rolls the camera clockwise as seen from
behind it (the scene turns counter-clockwise in the image). Camera frame: OpenCV (x right, y down,
z forward).
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from meco_core.geometry import backproject_depth, intrinsics_matrix, project_points, sparse_depth_image


def camera_rotation(pitch_down_deg: float, yaw_right_deg: float = 0.0, roll_cw_deg: float = 0.0) -> np.ndarray:
    """R whose columns are the turned camera's axes in the original camera's frame: yaw, then
    pitch, then roll about the new optical axis. A point x of the original frame is R^T x in the turned one."""
    p, y, r = (math.radians(a) for a in (pitch_down_deg, yaw_right_deg, roll_cw_deg))
    yaw = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    pitch = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    roll = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return yaw @ pitch @ roll


def target_to_source(K_src: np.ndarray, R: np.ndarray, K_dst: np.ndarray) -> np.ndarray:
    """Homography taking a pixel of the turned camera to the original image's pixel on the same ray."""
    return K_src @ R @ np.linalg.inv(K_dst)


def turned_view(rgb: np.ndarray, depth: np.ndarray | None, labels: np.ndarray | None,
                intrinsics: Sequence[float], R: np.ndarray, out_hw: tuple[int, int],
                out_intrinsics: Sequence[float] | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(rgb, depth, labels) the camera turned by R records at out_hw with `out_intrinsics`
    (default: the original's). Pixels are resampled (bilinear; labels nearest); a turned pixel whose
    ray misses the original image is black, unlabelled (255) and without depth. Depth points move in
    3D: back-projected from their pixel, rotated into the turned camera (z changes), projected, the
    nearest point winning a pixel (pixels no point lands on stay 0, invalid)."""
    K_src = intrinsics_matrix(*intrinsics)
    K_dst = intrinsics_matrix(*(out_intrinsics if out_intrinsics is not None else intrinsics))
    H = target_to_source(K_src, R, K_dst)
    size, inverse = (out_hw[1], out_hw[0]), cv2.WARP_INVERSE_MAP
    out_rgb = cv2.warpPerspective(rgb, H, size, flags=cv2.INTER_LINEAR | inverse, borderMode=cv2.BORDER_CONSTANT,
                                  borderValue=0)
    out_labels = None if labels is None else cv2.warpPerspective(
        labels, H, size, flags=cv2.INTER_NEAREST | inverse, borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    out_depth = None
    if depth is not None:
        xyz, _, _ = backproject_depth(depth, K_src)
        uu, vv, zz, _ = project_points(xyz @ R, K_dst, out_hw[1], out_hw[0])  # rows of xyz @ R: R^T x
        out_depth = sparse_depth_image(uu, vv, zz, out_hw[1], out_hw[0])
    return out_rgb, out_depth, out_labels
