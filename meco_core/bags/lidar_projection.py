"""Lidar points -> a camera's sparse depth image: extrinsics (a YAML or the bag's tf) and the
projection with the camera's own intrinsics, distortion included.

Shared by bag import and replay evaluation, so the ground truth of both is the same pixels.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from meco_core.bags import BagError, BagReader, CameraModel, TfTree, clean_frame
from meco_core.bags.frame_join import SideInfo
from meco_core.geometry import (
    invert_transform,
    make_transform,
    project_points,
    quat_to_matrix,
    sparse_depth_image,
    transform_points,
)


def _matrix_from(value: Any, where: str) -> np.ndarray:
    if isinstance(value, dict) and "q" in value and "t" in value:
        q, t = value["q"], value["t"]
        q = [q["w"], q["x"], q["y"], q["z"]] if isinstance(q, dict) else list(q)  # lists: w x y z
        t = [t["x"], t["y"], t["z"]] if isinstance(t, dict) else list(t)
        if len(q) != 4 or len(t) != 3:
            raise ValueError(f"{where}: q needs w x y z and t needs x y z")
        return make_transform(quat_to_matrix(*[float(v) for v in q]), [float(v) for v in t])
    T = np.asarray(value.get("matrix") if isinstance(value, dict) else value, np.float64)
    if T.shape != (4, 4) or not np.allclose(T[3], [0, 0, 0, 1]):
        raise ValueError(f"{where}: expected a 4x4 rigid transform or {{q: {{w,x,y,z}}, t: {{x,y,z}}}}")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-5):
        raise ValueError(f"{where}: rotation part is not orthonormal")
    return T


def load_extrinsics(spec: Any) -> np.ndarray:
    """T_camera_lidar (lidar points -> camera optical frame) from a YAML path, a dict or a 4x4 array.

    The YAML must say which way it maps (the RELLIS lesson: a bare transform is ambiguous)::

        T_camera_lidar: {q: {w: .., x: .., y: .., z: ..}, t: {x: .., y: .., z: ..}}
        # or T_camera_lidar: [[4x4]], or T_lidar_camera: ... (the camera pose in the lidar frame)
    """
    if isinstance(spec, np.ndarray):
        return _matrix_from(spec, "extrinsics")
    where = "extrinsics"
    if isinstance(spec, (str, os.PathLike)):
        where = str(spec)
        spec = yaml.safe_load(Path(spec).read_text())
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping with T_camera_lidar or T_lidar_camera")
    if "T_camera_lidar" in spec:
        return _matrix_from(spec["T_camera_lidar"], f"{where}: T_camera_lidar")
    if "T_lidar_camera" in spec:
        return invert_transform(_matrix_from(spec["T_lidar_camera"], f"{where}: T_lidar_camera"))
    raise ValueError(f"{where}: needs a T_camera_lidar (or T_lidar_camera) entry; has {sorted(spec)}")


# ------------------------------------------------------------------ projection
def project_cloud(xyz_camera: np.ndarray, cam: CameraModel, width: int, height: int) -> np.ndarray:
    """Sparse float32 depth (H, W) of points in the camera optical frame, distortion applied."""
    if not cam.has_distortion:
        u, v, z, _ = project_points(xyz_camera, cam.K, width, height)
        return sparse_depth_image(u, v, z, width, height)
    pts = np.asarray(xyz_camera, np.float64)
    front = np.isfinite(pts).all(axis=1) & (pts[:, 2] > 1e-3)
    pts = pts[front]
    xn, yn = pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2]
    # only rays inside the image's undistorted field of view: the distortion polynomial folds
    # rays far outside it back into the image
    lo, hi = _normalized_bounds(cam, width, height)
    keep = (xn >= lo[0]) & (xn <= hi[0]) & (yn >= lo[1]) & (yn <= hi[1])
    pts = pts[keep]
    obj = pts.reshape(-1, 1, 3)
    if len(pts) == 0:
        return np.zeros((height, width), np.float32)
    if cam.model == "equidistant":
        uv, _ = cv2.fisheye.projectPoints(obj, np.zeros(3), np.zeros(3), cam.K, cam.distortion[:4])
    else:
        uv, _ = cv2.projectPoints(obj, np.zeros(3), np.zeros(3), cam.K, cam.distortion)
    uv = uv.reshape(-1, 2)
    u = np.floor(uv[:, 0] + 0.5).astype(np.int64)
    v = np.floor(uv[:, 1] + 0.5).astype(np.int64)
    return sparse_depth_image(u, v, pts[:, 2].astype(np.float32), width, height)


def _normalized_bounds(cam: CameraModel, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.linspace(0, width - 1, 33), np.linspace(0, height - 1, 33)
    border = np.concatenate([np.stack([xs, np.zeros_like(xs)], 1), np.stack([xs, np.full_like(xs, height - 1)], 1),
                             np.stack([np.zeros_like(ys), ys], 1), np.stack([np.full_like(ys, width - 1), ys], 1)])
    pix = border.reshape(-1, 1, 2).astype(np.float64)
    if cam.model == "equidistant":
        norm = cv2.fisheye.undistortPoints(pix, cam.K, cam.distortion[:4]).reshape(-1, 2)
    elif cam.model in ("plumb_bob", "rational_polynomial"):
        norm = cv2.undistortPoints(pix, cam.K, cam.distortion).reshape(-1, 2)
    else:
        raise ValueError(f"unsupported distortion model {cam.model!r} (plumb_bob, rational_polynomial, equidistant)")
    lo, hi = norm.min(axis=0), norm.max(axis=0)
    margin = 0.05 * (hi - lo)
    return lo - margin, hi + margin


class LidarProjector:
    """Clouds -> sparse depth images of the camera: extrinsics given (T_camera_lidar) or from the
    bag's tf (looked up once per frame pair). `source` says where the extrinsics came from.
    `camera` is the default model; `depth(..., camera=)` projects with an image's own."""

    def __init__(self, reader: BagReader, camera: CameraModel, side: SideInfo, T_fixed: np.ndarray | None = None):
        self.reader, self.camera, self.side, self.T_fixed = reader, camera, side, T_fixed
        self.source: str | None = None
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def T_camera_lidar(self, cam_frame: str, lidar_frame: str) -> np.ndarray:
        key = (cam_frame, lidar_frame)
        if key not in self._cache:
            if self.T_fixed is not None:
                self._cache[key], self.source = self.T_fixed, "given"
            else:
                self._cache[key], self.source = _lookup(self.reader, self.side.tf_static, self.side.tf_dynamic,
                                                        cam_frame, lidar_frame)
        return self._cache[key]

    def depth(self, xyz: np.ndarray, lidar_frame: str, image_frame: str, width: int, height: int,
              camera: CameraModel | None = None) -> np.ndarray:
        """Sparse float32 depth (H, W) of lidar points `xyz` (in `lidar_frame`), 0 = no point,
        projected with `camera` (the image's CameraInfo; default: `self.camera`)."""
        cam = camera or self.camera
        cam_frame = cam.frame_id or clean_frame(image_frame)
        pts = transform_points(self.T_camera_lidar(cam_frame, lidar_frame), xyz)
        return project_cloud(pts, cam, width, height)


def _lookup(reader: BagReader, static: TfTree, dynamic: TfTree, cam: str, lidar: str) -> tuple[np.ndarray, str]:
    """T_camera_lidar from the bag's tf (static first; /tf only as a fallback, its last value)."""
    if cam == lidar:
        return np.eye(4), "identity (same frame)"
    for tree, name in ((static, "/tf_static"), (dynamic, "/tf")):
        try:
            return tree.lookup(cam, lidar), f"{name} {lidar} -> {cam}"
        except KeyError:
            pass
    frames = sorted(set(static.frames) | set(dynamic.frames))
    raise BagError(reader.path, f"no transform from the lidar frame {lidar!r} to the camera frame {cam!r} in "
                                f"/tf_static (frames there: {frames or 'none'}); pass --extrinsics YAML")
