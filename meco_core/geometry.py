"""Camera/lidar geometry shared by the dataset importers, the rosbag importer and replay eval.

Conventions (ROS REP 103/105 and OpenCV):
- A transform `T_a_b` is a 4x4 matrix mapping points expressed in frame b into frame a:
  `p_a = T_a_b @ p_b` (rotation R, translation t: `p_a = R p_b + t`).
- The camera optical frame has z forward, x right, y down; pixel (u, v) = (column, row),
  and integer pixel coordinates are pixel centres (the `K` of camera_info).
All functions are NumPy-vectorised: a 131k-point Ouster scan projects in a few ms.
"""
from __future__ import annotations

import numpy as np


def quat_to_matrix(w: float, x: float, y: float, z: float) -> np.ndarray:
    """Rotation matrix (3x3 float64) of the quaternion w + xi + yj + zk (normalised first).

    Scalar first, as in Eigen/tf `Quaternion(w, x, y, z)`; from a ROS message call
    `quat_to_matrix(q.w, q.x, q.y, q.z)`.
    """
    q = np.array([w, x, y, z], np.float64)
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion {q.tolist()} has no direction")
    w, x, y, z = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def make_transform(R: np.ndarray, t: np.ndarray | tuple[float, float, float]) -> np.ndarray:
    """4x4 homogeneous transform from rotation R (3x3) and translation t (3,)."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R, np.float64).reshape(3, 3)
    T[:3, 3] = np.asarray(t, np.float64).reshape(3)
    return T


def invert_transform(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform (uses R^T, exact and cheaper than a general inverse)."""
    R, t = T[:3, :3], T[:3, 3]
    return make_transform(R.T, -R.T @ t)


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (N, 3) points; returns float64 (N, 3)."""
    pts = np.asarray(points, np.float64)[:, :3]
    return pts @ T[:3, :3].T + T[:3, 3]


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """3x3 pinhole matrix K."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def project_points(
    points_xyz: np.ndarray, K: np.ndarray, width: int, height: int, min_depth: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Project (N, 3) points in the camera optical frame with pinhole K (no distortion).

    Returns `(u, v, z, mask)`: `mask` (N,) bool marks points in front of the camera
    (z > min_depth) that land on a pixel; `u`, `v` (int64 column/row, rounded to the
    nearest pixel centre) and `z` (float32, metres) are given for those points only, so
    per-point attributes follow with `attr[mask]`.
    """
    pts = np.asarray(points_xyz, np.float64).reshape(-1, 3)
    K = np.asarray(K, np.float64)
    z = pts[:, 2]
    front = np.isfinite(pts).all(axis=1) & (z > min_depth)
    zf = np.where(front, z, 1.0)
    uf = np.floor(K[0, 0] * pts[:, 0] / zf + K[0, 1] * pts[:, 1] / zf + K[0, 2] + 0.5)
    vf = np.floor(K[1, 1] * pts[:, 1] / zf + K[1, 2] + 0.5)
    mask = front & (uf >= 0) & (uf < width) & (vf >= 0) & (vf < height)
    return uf[mask].astype(np.int64), vf[mask].astype(np.int64), z[mask].astype(np.float32), mask


def sparse_depth_image(u: np.ndarray, v: np.ndarray, z: np.ndarray, width: int, height: int) -> np.ndarray:
    """float32 (H, W) depth image with 0 where no point falls; the nearest point wins a pixel.

    Keeping the nearest point is what a depth camera would see: a farther lidar return
    at the same pixel is occluded (it comes from the slightly different lidar viewpoint).
    """
    depth = np.zeros((height, width), np.float32)
    if len(z) == 0:
        return depth
    u = np.asarray(u, np.int64)
    v = np.asarray(v, np.int64)
    z = np.asarray(z, np.float32)
    ok = (u >= 0) & (u < width) & (v >= 0) & (v < height) & np.isfinite(z) & (z > 0)
    lin = v[ok] * width + u[ok]
    zz = z[ok]
    order = np.lexsort((zz, lin))  # by pixel, then nearest first
    lin, zz = lin[order], zz[order]
    first = np.ones(len(lin), bool)
    first[1:] = lin[1:] != lin[:-1]
    depth.reshape(-1)[lin[first]] = zz[first]
    return depth


def backproject_depth(depth: np.ndarray, K: np.ndarray, stride: int = 1, max_range: float = float("inf")
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of a depth image (metres, z along the optical axis) -> 3D points in the camera
    optical frame: pixel (u, v) with depth z lands at ((u - cx) z / fx, (v - cy) z / fy, z).

    Every `stride`-th row and column (from 0) is used; non-finite, non-positive and
    farther-than-`max_range` (Euclidean distance) depths are dropped. Distortion is not
    applied: the depth image is the network's output, a pinhole image by construction.
    Returns `(xyz (N, 3) float32, rows (N,), cols (N,))`, so per-pixel attributes (labels,
    colours) follow with `attr[rows, cols]`.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    K = np.asarray(K, np.float64).reshape(3, 3)
    d = np.asarray(depth, np.float32)[::stride, ::stride]
    rows = np.arange(0, depth.shape[0], stride, dtype=np.int64)
    cols = np.arange(0, depth.shape[1], stride, dtype=np.int64)
    valid = np.isfinite(d) & (d > 0)
    r_idx, c_idx = np.nonzero(valid)
    z = d[r_idx, c_idx]
    v, u = rows[r_idx], cols[c_idx]
    x = ((u - K[0, 2]) / K[0, 0]).astype(np.float32) * z
    y = ((v - K[1, 2]) / K[1, 1]).astype(np.float32) * z
    xyz = np.stack([x, y, z], axis=1)
    if np.isfinite(max_range):
        keep = np.einsum("ij,ij->i", xyz, xyz) <= np.float32(max_range) ** 2
        xyz, v, u = xyz[keep], v[keep], u[keep]
    return np.ascontiguousarray(xyz, np.float32), v, u
