"""KITTI object importer on the three shared frames: projection, depth, intrinsics, CLI, errors."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from meco_core.classes import GOLF
from meco_core.data.format import DatasetReader
from meco_core.data.kitti import (
    KittiFormatError,
    camera2_from_velo,
    convert_kitti,
    find_frames,
    project_frame,
    read_calib,
    read_velodyne,
)
from meco_core.defaults import MIN_LIDAR_RANGE_M
from meco_core.geometry import transform_points

REPO = Path(__file__).resolve().parents[1]
NAMES = ["000000", "000001", "000002"]


@pytest.fixture(scope="module")
def kitti_root(shared_data: Path) -> Path:
    root = shared_data / "kitti_object_sample"
    if not root.is_dir():
        pytest.skip(f"shared KITTI sample not found: {root}")
    return root


@pytest.fixture(scope="module")
def converted(kitti_root: Path, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("kitti")
    return out, convert_kitti(kitti_root, out, split="test", progress=False)


def _calib_by_hand(path: Path) -> dict[str, np.ndarray]:
    """The calib text parsed independently of read_calib, as homogeneous 4x4 / 3x4 matrices."""
    vals = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, rest = line.split(":", 1)
            vals[key] = np.array(rest.split(), float)
    R0 = np.eye(4)
    R0[:3, :3] = vals["R0_rect"].reshape(3, 3)
    Tr = np.eye(4)
    Tr[:3, :] = vals["Tr_velo_to_cam"].reshape(3, 4)
    return {"P2": vals["P2"].reshape(3, 4), "R0": R0, "Tr": Tr}


def test_projection_inside_image_and_in_front(kitti_root):
    for name, img, scan_path, calib_path in find_frames(kitti_root):
        h, w = cv2.imread(str(img)).shape[:2]
        u, v, z = project_frame(read_velodyne(scan_path), read_calib(calib_path), w, h)
        assert 15000 < len(z) < 25000, name  # a 64-beam scan covers ~1/6 of 360 deg in the image
        assert u.min() >= 0 and u.max() < w and v.min() >= 0 and v.max() < h
        assert z.min() > MIN_LIDAR_RANGE_M


def test_depth_of_one_point_by_hand(kitti_root, converted):
    """KITTI's own formula, P2 @ R0_rect @ Tr_velo_to_cam @ [x y z 1]: its third coordinate is
    the stored depth (camera 2's axis) at pixel (round(x/z), round(y/z))."""
    out, _ = converted
    name = "000001"
    m = _calib_by_hand(kitti_root / "calib" / f"{name}.txt")
    pts = np.fromfile(kitti_root / "velodyne" / f"{name}.bin", np.float32).reshape(-1, 4)
    hom = np.c_[pts[:, :3].astype(np.float64), np.ones(len(pts))]
    p = (m["P2"] @ m["R0"] @ m["Tr"] @ hom.T).T
    z_rect0 = (m["R0"] @ m["Tr"] @ hom.T)[2]
    depth = DatasetReader(out).load("test", name).depth_m
    h, w = depth.shape
    z = p[:, 2]
    zs = np.where(z > 0.3, z, 1.0)
    u, v = np.floor(p[:, 0] / zs + 0.5).astype(int), np.floor(p[:, 1] / zs + 0.5).astype(int)
    seen = (z > 0.3) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    # the point nearest to 10 m straight ahead (road), checked to be the nearest at its pixel
    i = int(np.argmin(np.where(seen, np.abs(z - 10) + np.abs(u - w / 2) / 100, np.inf)))
    same_pixel = seen & (u == u[i]) & (v == v[i])
    assert z[i] == z[same_pixel].min()
    assert abs(depth[v[i], u[i]] - z[i]) <= 0.0006  # millimetre storage
    assert v[i] > h / 2  # on the road: below the horizon
    # the rectified camera-0 depth would be P2's z offset (2.7 mm) off
    assert abs(depth[v[i], u[i]] - z_rect0[i]) > 0.002


def test_transform_reproduces_p2(kitti_root):
    """T_cam2_velo + K2 gives KITTI's pixels and depths exactly (not just the one point)."""
    m = _calib_by_hand(kitti_root / "calib" / "000000.txt")
    calib = read_calib(kitti_root / "calib" / "000000.txt")
    T, K = camera2_from_velo(calib)
    pts = read_velodyne(kitti_root / "velodyne" / "000000.bin")[::50, :3].astype(np.float64)
    cam = transform_points(T, pts)
    p = (m["P2"] @ m["R0"] @ m["Tr"] @ np.c_[pts, np.ones(len(pts))].T).T
    assert np.allclose(cam[:, 2], p[:, 2], atol=1e-9)
    front = p[:, 2] > 1
    assert np.allclose((cam @ K.T)[front, :2] / cam[front, 2:], p[front, :2] / p[front, 2:], atol=1e-6)


def test_dataset_written(kitti_root, converted):
    out, stats = converted
    r = DatasetReader(out)
    assert r.class_set.same_classes(GOLF) and r.intrinsics is None and r.names("test") == NAMES
    assert stats["frames"] == 3 and [f["name"] for f in stats["per_frame"]] == NAMES
    for f in stats["per_frame"]:
        s = r.load("test", f["name"])
        P2 = read_calib(kitti_root / "calib" / f"{f['name']}.txt")["P2"]
        assert s.intrinsics == (P2[0, 0], P2[1, 1], P2[0, 2], P2[1, 2])
        assert s.labels is None and s.rgb.shape == (f["height"], f["width"], 3)
        valid = s.depth_m > 0
        assert valid.sum() == f["depth_pixels"] and 0.9 * f["points_in_image"] < f["depth_pixels"] <= f["points_in_image"]
        assert abs(s.depth_m[valid].min() - f["depth_min_m"]) < 1e-3 and abs(s.depth_m[valid].max() - f["depth_max_m"]) < 1e-3
    assert stats["per_frame"][0]["width"] == 1224 and stats["per_frame"][0]["fx"] != stats["per_frame"][1]["fx"]


def test_lidar_depth_sanity(converted):
    """Real street scenes: most depth 2-80 m, none in the sky rows, road at the image bottom."""
    out, _ = converted
    r = DatasetReader(out)
    for name in NAMES:
        s = r.load("test", name)
        d = s.depth_m
        rows, cols = np.nonzero(d > 0)
        z = d[rows, cols]
        h = d.shape[0]
        assert ((z > 2) & (z < 80)).mean() > 0.95
        assert rows.min() > h * 0.2  # the Velodyne's +2 deg upper beam: nothing in the sky rows
        # back-project pixels to camera 2 (y down): the bottom quarter of the image is mostly
        # road a few metres ahead, 1.4-1.9 m below the camera (parked cars take the rest)
        _, fy, _, cy = s.intrinsics
        y = (rows - cy) * z / fy
        bottom = rows > 0.75 * h
        assert bottom.sum() > 1000 and np.median(z[bottom]) < 12
        assert ((y[bottom] > 1.4) & (y[bottom] < 1.9)).mean() > 0.7


def test_camera_height_from_lidar(kitti_root):
    """The road plane under the car, fitted to the whole scan in camera 2's frame (points
    > 1 m below the camera, 3-10 m away horizontally, all around: the image alone starts
    ~6 m ahead), lies ~1.65 m below the camera: KITTI's published camera height."""
    for name, _, scan_path, calib_path in find_frames(kitti_root):
        T, _ = camera2_from_velo(read_calib(calib_path))
        x, y, z = transform_points(T, read_velodyne(scan_path)).T
        sel = (y > 1.0) & (np.hypot(x, z) > 3) & (np.hypot(x, z) < 10)
        a, b, c = _road_plane(x[sel], y[sel], z[sel])
        height = c / np.sqrt(1 + a * a + b * b)  # distance of the camera from the plane
        assert 1.55 < height < 1.8 and abs(a) < 0.05 and abs(b) < 0.05, (name, height, a, b)


def _road_plane(x: np.ndarray, y: np.ndarray, z: np.ndarray, tol: float = 0.03) -> np.ndarray:
    """(a, b, c) of y = a x + b z + c: RANSAC (seeded) against kerbs and car bottoms, then a
    least-squares refit on the inliers."""
    A = np.c_[x, z, np.ones(len(x))]
    rng = np.random.default_rng(0)
    best = np.zeros(len(x), bool)
    for _ in range(200):
        idx = rng.choice(len(x), 3, replace=False)
        try:
            coef = np.linalg.solve(A[idx], y[idx])
        except np.linalg.LinAlgError:
            continue
        inl = np.abs(A @ coef - y) < tol
        if inl.sum() > best.sum():
            best = inl
    return np.linalg.lstsq(A[best], y[best], rcond=None)[0]


def test_cli(kitti_root, tmp_path):
    meco = REPO / ".venv" / "bin" / "meco"
    exe = str(meco) if meco.exists() else shutil.which("meco")
    if exe is None:
        pytest.skip("meco executable not found")
    res = subprocess.run([exe, "data", "kitti", "--root", str(kitti_root), "--out", str(tmp_path / "k"), "--limit", "2"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].lstrip().startswith("000000: 1224x370") and "lidar points in the image" in lines[0]
    assert "KITTI ->" in lines[-1] and "2 frames" in lines[-1]
    assert DatasetReader(tmp_path / "k").names("test") == NAMES[:2]


# ---------------------------------------------------------------- errors
def _copy_frame(kitti_root: Path, dst: Path, name: str = "000001") -> Path:
    for sub, ext in (("image_2", "png"), ("velodyne", "bin"), ("calib", "txt")):
        (dst / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(kitti_root / sub / f"{name}.{ext}", dst / sub / f"{name}.{ext}")
    return dst


def test_missing_calib_key(kitti_root, tmp_path):
    root = _copy_frame(kitti_root, tmp_path / "in")
    calib = root / "calib" / "000001.txt"
    text = calib.read_text()
    calib.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("Tr_velo_to_cam")) + "\n")
    with pytest.raises(KittiFormatError, match=r"000001\.txt.*Tr_velo_to_cam"):
        read_calib(calib)
    with pytest.raises(KittiFormatError, match="Tr_velo_to_cam"):
        convert_kitti(root, tmp_path / "out", progress=False)
    calib.write_text(text.replace("R0_rect: ", "R0_rect: 1 "))
    with pytest.raises(KittiFormatError, match="R0_rect has 10 values"):
        read_calib(calib)


def test_truncated_scan(kitti_root, tmp_path):
    root = _copy_frame(kitti_root, tmp_path / "in")
    scan = root / "velodyne" / "000001.bin"
    scan.write_bytes(scan.read_bytes()[:-6])
    with pytest.raises(KittiFormatError, match=r"000001\.bin.*not a multiple of 16"):
        convert_kitti(root, tmp_path / "out", progress=False)


def test_mismatched_frames(kitti_root, tmp_path):
    root = _copy_frame(kitti_root, tmp_path / "in")
    shutil.copy(kitti_root / "image_2" / "000002.png", root / "image_2" / "000002.png")
    with pytest.raises(KittiFormatError, match=r"no velodyne/<name>\.bin for 000002.*no calib/<name>\.txt for 000002"):
        find_frames(root)
    shutil.rmtree(root / "calib")
    with pytest.raises(KittiFormatError, match="calib not found"):
        find_frames(root)
