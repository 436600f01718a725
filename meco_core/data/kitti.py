"""KITTI object benchmark (image_2 + velodyne + calib) -> meco-dataset/1 (RGB, sparse lidar depth).

Input layout: `ROOT/image_2/<name>.png`, `ROOT/velodyne/<name>.bin` (float32 x, y, z,
reflectance), `ROOT/calib/<name>.txt` (P0-P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo).
KITTI's own projection into the left colour image is `P2 @ R0_rect @ Tr_velo_to_cam @ [x y z 1]^T`.

P2 is not a bare K: it is `K2 @ [I | t2]` in the rectified camera-0 frame, where t2 (about
6 cm sideways, a few mm along the axis) is camera 2's offset from camera 0. So the third
coordinate of the KITTI projection is `z_rect0 + t2_z`, which is exactly the depth along
camera 2's optical axis: that is the depth stored (the image is camera 2's; z_rect0 alone
would be off by t2_z, 3-5 mm). The importer builds `T_cam2_velo = [I | t2] @ R0_rect @
Tr_velo_to_cam`, projects with `K2` (project_points) and reproduces P2's pixels exactly.

Intrinsics differ between recording days (frame sizes too: 1242x375, 1224x370, ...), so
each frame's `(fx, fy, cx, cy)` = K2 is stored per frame. KITTI object has no per-pixel
labels: samples carry depth only, under the golf class set so they mix with golf data.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from meco_core.classes import GOLF
from meco_core.data.format import IMAGE_EXTS, DatasetFormatError, DatasetWriter
from meco_core.defaults import MIN_LIDAR_RANGE_M
from meco_core.geometry import make_transform, project_points, sparse_depth_image, transform_points

# shapes of the calib entries; the three used for depth must be present
CALIB_SHAPES: dict[str, tuple[int, int]] = {
    "P0": (3, 4), "P1": (3, 4), "P2": (3, 4), "P3": (3, 4),
    "R0_rect": (3, 3), "Tr_velo_to_cam": (3, 4), "Tr_imu_to_velo": (3, 4),
}
REQUIRED_KEYS = ("P2", "R0_rect", "Tr_velo_to_cam")
# the tracking benchmark names the same matrices differently
_ALIASES = {"R_rect": "R0_rect", "Tr_velo_cam": "Tr_velo_to_cam", "Tr_imu_velo": "Tr_imu_to_velo"}
_POINT_BYTES = 16  # float32 x, y, z, reflectance


class KittiFormatError(DatasetFormatError):
    """A KITTI file (calib, scan, image) is missing, malformed or does not match its frame."""


def read_calib(path: str | os.PathLike, required: tuple[str, ...] = REQUIRED_KEYS) -> dict[str, np.ndarray]:
    """`KEY: numbers` lines -> {key: matrix} (P* and Tr_* 3x4, R0_rect 3x3; others flat).

    Checked here so a broken file is named once, not discovered as a shape error later.
    """
    path = Path(path)
    calib: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        key = _ALIASES.get(key.strip(), key.strip())
        try:
            vals = np.array([float(x) for x in rest.split()], np.float64)
        except ValueError:
            vals = None
        if not sep or vals is None:
            raise KittiFormatError(f"{path}:{lineno}: expected 'KEY: numbers', got {line[:60]!r}")
        shape = CALIB_SHAPES.get(key)
        if shape is not None:
            if vals.size != shape[0] * shape[1]:
                raise KittiFormatError(f"{path}: {key} has {vals.size} values, expected {shape[0] * shape[1]}")
            vals = vals.reshape(shape)
        calib[key] = vals
    missing = [k for k in required if k not in calib]
    if missing:
        raise KittiFormatError(f"{path}: calib lacks {', '.join(missing)} (has {', '.join(calib) or 'nothing'})")
    return calib


def read_velodyne(path: str | os.PathLike) -> np.ndarray:
    """(N, 4) float32 x, y, z, reflectance; a size that is not whole points means a broken file."""
    path = Path(path)
    size = path.stat().st_size
    if size % _POINT_BYTES:
        raise KittiFormatError(f"{path}: {size} bytes is not a multiple of {_POINT_BYTES} (float32 x, y, z, reflectance)")
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def camera2_from_velo(calib: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(T_cam2_velo 4x4, K2 3x3): P2 = K2 [I | t2] split so depth is along camera 2's axis."""
    P2 = calib["P2"]
    K = P2[:, :3].copy()
    if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0 or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise KittiFormatError(f"P2 is not K [I | t] of a rectified camera: {P2.tolist()}")
    t2 = np.linalg.solve(K, P2[:, 3])  # camera 2's offset from rectified camera 0
    R0 = np.eye(4)
    R0[:3, :3] = calib["R0_rect"]
    T_velo = np.vstack([calib["Tr_velo_to_cam"], [0.0, 0.0, 0.0, 1.0]])
    return make_transform(np.eye(3), t2) @ R0 @ T_velo, K


def project_frame(
    points: np.ndarray, calib: dict[str, np.ndarray], width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Velodyne points (N, >=3) -> (u, v, z) of those in front of camera 2 and inside its image.

    u, v: int64 pixel column/row (nearest pixel centre, as P2 and round()); z: float32 metres
    along camera 2's optical axis (= the third coordinate of P2 @ R0_rect @ Tr_velo_to_cam).
    """
    T, K = camera2_from_velo(calib)
    xyz = np.asarray(points, np.float64)[:, :3]
    xyz = xyz[np.linalg.norm(xyz, axis=1) > MIN_LIDAR_RANGE_M]  # (0, 0, 0) = no return
    u, v, z, _ = project_points(transform_points(T, xyz), K, width, height, min_depth=MIN_LIDAR_RANGE_M)
    return u, v, z


def _stems(folder: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        raise KittiFormatError(f"{folder} not found (KITTI object layout: image_2/, velodyne/, calib/)")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in exts}


def find_frames(root: str | os.PathLike) -> list[tuple[str, Path, Path, Path]]:
    """[(name, image, velodyne .bin, calib .txt)] sorted by name; every image needs both others."""
    root = Path(root)
    images = _stems(root / "image_2", IMAGE_EXTS)
    scans = _stems(root / "velodyne", (".bin",))
    calibs = _stems(root / "calib", (".txt",))
    problems = []
    for what, have, lack in (("velodyne/<name>.bin", images.keys() | calibs.keys(), scans),
                             ("calib/<name>.txt", images.keys() | scans.keys(), calibs),
                             ("image_2/<name>.png", scans.keys() | calibs.keys(), images)):
        missing = sorted(set(have) - set(lack))
        if missing:
            problems.append(f"no {what} for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if problems:
        raise KittiFormatError(f"{root}: image_2/velodyne/calib do not match: " + "; ".join(problems))
    if not images:
        raise KittiFormatError(f"{root}: image_2/ holds no .png/.jpg frames")
    return [(n, images[n], scans[n], calibs[n]) for n in sorted(images)]


def convert_kitti(
    root: str | os.PathLike,
    out: str | os.PathLike,
    split: str = "test",
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Convert every frame under `root` (sorted by name; the first `limit`); returns stats.

    Stats: frames, split, depth_out_of_range (pixels beyond the format's 65.535 m, dropped)
    and per_frame [{name, width, height, fx, fy, cx, cy, points_total, points_in_image,
    depth_pixels, depth_min_m, depth_max_m}] (depth of what is stored).
    """
    root = Path(root)
    frames = find_frames(root)
    if limit is not None:
        frames = frames[:limit]
    per_frame: list[dict[str, Any]] = []
    note = "per-frame intrinsics from each calib's P2 (camera/<name>.txt); depth along camera 2's axis"
    with DatasetWriter(out, GOLF, source=f"KITTI object (image_2 + velodyne + calib) from {root}",
                       camera_note=note) as writer:
        for name, img_path, bin_path, calib_path in tqdm(frames, desc="kitti", unit="frame", disable=not progress):
            bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise KittiFormatError(f"cannot read image {img_path}")
            h, w = bgr.shape[:2]
            calib = read_calib(calib_path)
            fx, fy, cx, cy = (float(calib["P2"][i, j]) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
            if not (0 < cx < w and 0 < cy < h):
                raise KittiFormatError(f"{calib_path}: principal point ({cx:.1f}, {cy:.1f}) outside {img_path} ({w}x{h})")
            scan = read_velodyne(bin_path)
            u, v, z = project_frame(scan, calib, w, h)
            depth = sparse_depth_image(u, v, z, w, h)
            far_before = writer.depth_out_of_range
            writer.write(split, name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), depth_m=depth, intrinsics=(fx, fy, cx, cy))
            stored = depth[(depth > 0) & (np.rint(depth.astype(np.float64) * 1000.0) <= 65535)]  # as depth_to_mm
            per_frame.append({
                "name": name, "width": w, "height": h, "fx": fx, "fy": fy, "cx": cx, "cy": cy,
                "points_total": int(len(scan)), "points_in_image": int(len(z)),
                "depth_pixels": int(stored.size),
                "depth_min_m": float(stored.min()) if stored.size else 0.0,
                "depth_max_m": float(stored.max()) if stored.size else 0.0,
                "depth_out_of_range": int(writer.depth_out_of_range - far_before),
            })
        far = writer.depth_out_of_range
    return {"frames": len(per_frame), "split": split, "depth_out_of_range": int(far), "per_frame": per_frame}
