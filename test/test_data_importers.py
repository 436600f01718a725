"""Importers on the real shared data (CamVid subset, the RELLIS frame) and projection geometry."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from meco_core.classes import GOLF
from meco_core.data.format import DatasetReader
from meco_core.geometry import (
    intrinsics_matrix,
    invert_transform,
    make_transform,
    project_points,
    quat_to_matrix,
    sparse_depth_image,
    transform_points,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAMVID_DIR = SHARED / "camvid"
RELLIS_DIR = SHARED / "rellis3d_example"


# ---------------------------------------------------------------- geometry
def test_quat_to_matrix():
    assert np.allclose(quat_to_matrix(1, 0, 0, 0), np.eye(3))
    s = np.sqrt(0.5)
    Rz = quat_to_matrix(s, 0, 0, s)  # +90 deg about z: x -> y
    assert np.allclose(Rz @ [1, 0, 0], [0, 1, 0])
    assert np.allclose(quat_to_matrix(2, 0, 0, 0), np.eye(3))  # normalised
    R = quat_to_matrix(0.3, -0.5, 0.2, 0.7)
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1)
    with pytest.raises(ValueError):
        quat_to_matrix(0, 0, 0, 0)


def test_transform_and_inverse():
    T = make_transform(quat_to_matrix(0.3, -0.5, 0.2, 0.7), [1.0, -2.0, 0.5])
    pts = np.array([[0.0, 0, 0], [1, 2, 3]])
    back = transform_points(invert_transform(T), transform_points(T, pts))
    assert np.allclose(back, pts) and np.allclose(transform_points(T, pts[:1]), [[1.0, -2.0, 0.5]])


def test_project_points_by_hand():
    K = intrinsics_matrix(100.0, 50.0, 10.0, 5.0)
    pts = np.array(
        [
            [0.0, 0.0, 2.0],  # principal point -> (10, 5)
            [0.2, 0.4, 2.0],  # u = 100*0.1+10 = 20, v = 50*0.2+5 = 15
            [0.0, 0.0, -1.0],  # behind the camera
            [5.0, 0.0, 1.0],  # u = 510: right of a 40-px image
            [-0.104, 0.0, 1.0],  # u = -0.4 -> rounds to pixel 0 (inside)
            [-0.106, 0.0, 1.0],  # u = -0.6 -> pixel -1 (outside)
        ]
    )
    u, v, z, mask = project_points(pts, K, width=40, height=30)
    assert mask.tolist() == [True, True, False, False, True, False]
    assert u.tolist() == [10, 20, 0] and v.tolist() == [5, 15, 5]
    assert z.dtype == np.float32 and np.allclose(z, [2.0, 2.0, 1.0])


def test_sparse_depth_nearest_wins():
    u = np.array([1, 1, 1, 3, 9])
    v = np.array([0, 0, 0, 2, 9])  # last one outside a 4x3 image
    z = np.array([5.0, 2.0, 7.0, 1.5, 1.0], np.float32)
    d = sparse_depth_image(u, v, z, width=4, height=3)
    assert d.shape == (3, 4) and d.dtype == np.float32
    assert d[0, 1] == 2.0 and d[2, 3] == 1.5 and (d > 0).sum() == 2


# ---------------------------------------------------------------- CamVid
@pytest.mark.skipif(not CAMVID_DIR.is_dir(), reason="shared CamVid data not present")
def test_convert_camvid_subset(tmp_path):
    from meco_core.data.camvid import convert_camvid

    counts = convert_camvid(CAMVID_DIR, tmp_path, limit=4, splits=["val"], progress=False)
    assert counts == {"val": 4}
    r = DatasetReader(tmp_path)
    assert r.class_set.name == "camvid" and r.meta["splits"] == {"val": 4}
    n_unlabelled = 0
    for name in r.names("val"):
        src = cv2.imread(str(CAMVID_DIR / "valannot" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        s = r.load("val", name)
        assert s.rgb.shape == (360, 480, 3) and s.depth_m is None
        n_unlabelled += int((src == 11).sum())
        assert np.all(s.labels[src == 11] == 255) and np.array_equal(s.labels[src < 11], src[src < 11])
        assert set(np.unique(s.labels)) <= set(range(11)) | {255}
        # the RGB is stored losslessly
        assert np.array_equal(s.rgb, cv2.imread(str(CAMVID_DIR / "val" / f"{name}.png"))[:, :, ::-1])
    assert n_unlabelled > 0, "the subset should contain unlabelled (11) pixels"


@pytest.mark.skipif(not CAMVID_DIR.is_dir(), reason="shared CamVid data not present")
def test_camvid_split_counts_on_disk():
    """The numbers the full conversion must report (367 train / 101 val)."""
    assert len(list((CAMVID_DIR / "train").glob("*.png"))) == 367
    assert len(list((CAMVID_DIR / "val").glob("*.png"))) == 101


# ---------------------------------------------------------------- RELLIS
@pytest.mark.skipif(not RELLIS_DIR.is_dir(), reason="shared RELLIS data not present")
def test_convert_rellis_frame(tmp_path):
    from meco_core.data.rellis import convert_rellis_frame

    stats = convert_rellis_frame(RELLIS_DIR, tmp_path, split="test")
    assert stats["direction"] == "inverse"  # transforms.yaml holds T_lidar_camera
    assert stats["label_agreement"] > 0.5 and stats["label_agreement_other_direction"] < 0.2
    assert 3000 < stats["points_in_image"] < 30000
    r = DatasetReader(tmp_path)
    assert r.class_set.same_classes(GOLF) and r.intrinsics["width"] == 1920
    s = r.load("test", stats["name"])
    valid = s.depth_m > 0
    assert valid.sum() == stats["depth_pixels"] and 1.0 < s.depth_m[valid].min() < s.depth_m[valid].max() < 120
    # grass dominates the lower image; the golf labels carry it as fairway
    assert (s.labels == GOLF.names.index("fairway")).mean() > 0.1
    assert set(np.unique(s.labels)) <= set(range(GOLF.num_classes)) | {255}
