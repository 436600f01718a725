"""RELLIS-3D camera + lidar frame -> meco-dataset/1 (RGB, sparse lidar depth, golf labels).

The Ouster scan is projected into the Basler image with `camera_info.txt` (fx fy cx cy)
and `transforms.yaml` (quaternion + translation between `os1_cloud_node` and
`pylon_camera_node`). The yaml does not say which way its transform maps, so both
directions are tried and the one whose projected points agree best with the image
labels is used (on the example frame: the inverse, i.e. the yaml holds the camera pose
in the lidar frame, T_lidar_camera; agreement about 0.77 against about 0 the other way).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from meco_core.classes import GOLF, REMAPS
from meco_core.data.format import DatasetWriter
from meco_core.defaults import MIN_LIDAR_RANGE_M
from meco_core.geometry import (
    intrinsics_matrix,
    invert_transform,
    make_transform,
    project_points,
    quat_to_matrix,
    sparse_depth_image,
    transform_points,
)

DIRECTIONS = ("auto", "as-is", "inverse")


def read_camera_info(path: Path) -> tuple[float, float, float, float]:
    vals = [float(x) for x in Path(path).read_text().split()]
    if len(vals) < 4:
        raise ValueError(f"{path}: expected 'fx fy cx cy', got {vals}")
    return vals[0], vals[1], vals[2], vals[3]


def read_transform(path: Path) -> tuple[str, np.ndarray]:
    """(key, 4x4 transform exactly as written) from a RELLIS transforms.yaml."""
    data = yaml.safe_load(Path(path).read_text())
    key, tf = next(iter(data.items()))
    q, t = tf["q"], tf["t"]
    return key, make_transform(quat_to_matrix(q["w"], q["x"], q["y"], q["z"]), (t["x"], t["y"], t["z"]))


def read_scan(bin_path: Path, label_path: Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Points (N, 3) float64 without the (0,0,0) "no return" entries, and their labels."""
    raw = np.fromfile(bin_path, dtype=np.float32).reshape(-1, 4)
    labels = None
    if label_path is not None and Path(label_path).exists():
        labels = (np.fromfile(label_path, dtype=np.uint32) & 0xFFFF).astype(np.int64)
        if len(labels) != len(raw):
            raise ValueError(f"{label_path}: {len(labels)} labels for {len(raw)} points")
    keep = np.linalg.norm(raw[:, :3], axis=1) > MIN_LIDAR_RANGE_M
    return raw[keep, :3].astype(np.float64), None if labels is None else labels[keep]


def label_agreement(point_labels: np.ndarray, pixel_labels: np.ndarray, void: int = 0) -> float:
    """Fraction of points whose label equals the image label under them (void on either side skipped)."""
    ok = (point_labels != void) & (pixel_labels != void)
    return float((point_labels[ok] == pixel_labels[ok]).mean()) if ok.any() else 0.0


def _find_one(root: Path, pattern: str) -> Path:
    hits = sorted(root.glob(pattern))
    if len(hits) != 1:
        raise FileNotFoundError(f"{root}: expected one {pattern}, found {[h.name for h in hits]}")
    return hits[0]


def convert_rellis_frame(
    root: str | os.PathLike, out: str | os.PathLike, split: str = "test", direction: str = "auto"
) -> dict[str, Any]:
    """Convert the single RELLIS frame in `root`; returns projection statistics.

    direction: "as-is" uses the yaml transform as T_camera_lidar, "inverse" inverts it,
    "auto" picks the one with the higher label agreement (needs the label files).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}")
    root = Path(root)
    jpg = _find_one(root, "frame*.jpg")
    bin_path = _find_one(root, "*.bin")
    img_label_path = jpg.with_suffix(".png")
    rgb = cv2.cvtColor(cv2.imread(str(jpg), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    img_labels = cv2.imread(str(img_label_path), cv2.IMREAD_UNCHANGED) if img_label_path.exists() else None
    if img_labels is not None and img_labels.shape != (h, w):
        raise ValueError(f"{img_label_path}: size {img_labels.shape} differs from image {(h, w)}")
    fx, fy, cx, cy = read_camera_info(root / "camera_info.txt")
    K = intrinsics_matrix(fx, fy, cx, cy)
    key, T_yaml = read_transform(root / "transforms.yaml")
    points, point_labels = read_scan(bin_path, bin_path.with_suffix(".label"))

    candidates = {"as-is": T_yaml, "inverse": invert_transform(T_yaml)}
    results: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]] = {}
    for name, T in candidates.items():
        u, v, z, mask = project_points(transform_points(T, points), K, w, h)
        agree = float("nan")
        if img_labels is not None and point_labels is not None:
            agree = label_agreement(point_labels[mask], img_labels[v, u].astype(np.int64))
        results[name] = (u, v, z, mask, agree)
    if direction == "auto":
        if img_labels is None or point_labels is None:
            raise ValueError("direction='auto' needs the image and point labels; pass 'as-is' or 'inverse'")
        direction = max(results, key=lambda n: results[n][4])
    u, v, z, mask, agree = results[direction]
    other = "inverse" if direction == "as-is" else "as-is"

    depth = sparse_depth_image(u, v, z, w, h)
    labels = None if img_labels is None else REMAPS["rellis->golf"][img_labels]
    intrinsics = dict(fx=fx, fy=fy, cx=cx, cy=cy, width=w, height=h)
    with DatasetWriter(out, GOLF, intrinsics=intrinsics, source=f"RELLIS-3D frame from {root}") as writer:
        writer.write(split, jpg.stem, rgb, depth_m=depth, labels=labels)
        far = writer.depth_out_of_range
    valid = depth > 0
    return {
        "name": jpg.stem,
        "split": split,
        "transform_key": key,
        "direction": direction,
        "direction_meaning": (
            f"yaml '{key}' used as T_camera_lidar" if direction == "as-is"
            else f"yaml '{key}' inverted: it is T_lidar_camera (camera pose in the lidar frame)"
        ),
        "points_total": int(len(points)),
        "points_in_image": int(mask.sum()),
        "label_agreement": agree,
        "label_agreement_other_direction": results[other][4],
        "points_in_image_other_direction": int(results[other][3].sum()),
        "depth_pixels": int(valid.sum()),
        "depth_min_m": float(depth[valid].min()) if valid.any() else 0.0,
        "depth_max_m": float(depth[valid].max()) if valid.any() else 0.0,
        "depth_out_of_range": int(far),
    }
