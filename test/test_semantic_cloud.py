"""Semantic point cloud parts (issue 11): exact back-projection and PointCloud2 packing.

The node integration is tested over DDS elsewhere; these pin the geometry and the
byte layout that RViz, PCL and Nav2 read.
"""
from __future__ import annotations

import numpy as np
import pytest

from meco_core.geometry import backproject_depth, intrinsics_matrix

K = intrinsics_matrix(500.0, 480.0, 319.5, 239.5)


def test_pixel_lands_where_the_pinhole_model_says() -> None:
    depth = np.full((480, 640), np.nan, np.float32)
    depth[100, 200], depth[400, 30], depth[7, 639] = 12.5, 3.0, 70.0
    xyz, rows, cols = backproject_depth(depth, K)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(7, 639), (100, 200), (400, 30)]
    for (x, y, z), v, u in zip(xyz, rows, cols):
        d = depth[v, u]
        assert (x, y, z) == pytest.approx(((u - 319.5) * d / 500.0, (v - 239.5) * d / 480.0, d), rel=1e-6)


def test_invalid_depths_stride_and_range_limit() -> None:
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 60, (48, 64)).astype(np.float32)
    depth[0, 0], depth[0, 2], depth[2, 0], depth[2, 2] = np.nan, 0.0, -1.0, np.inf
    xyz, rows, cols = backproject_depth(depth, K, stride=2, max_range=40.0)
    assert set(rows.tolist()) <= set(range(0, 48, 2)) and set(cols.tolist()) <= set(range(0, 64, 2))
    assert not {(0, 0), (0, 2), (2, 0), (2, 2)} & set(zip(rows.tolist(), cols.tolist()))
    assert np.isfinite(xyz).all() and (np.linalg.norm(xyz, axis=1) <= 40.0 + 1e-4).all()
    sub = depth[::2, ::2]
    kept_all = np.isfinite(sub) & (sub > 0)
    assert len(xyz) < kept_all.sum()   # the range limit removed some
    with pytest.raises(ValueError, match="stride"):
        backproject_depth(depth, K, stride=0)


def test_cloud_message_layout_round_trips() -> None:
    pytest.importorskip("sensor_msgs")
    from std_msgs.msg import Header

    from meco_ros.node.outputs import CLOUD_DTYPE, semantic_cloud_msg

    xyz = np.array([[1.0, -2.0, 3.5], [0.25, 0.5, 80.0]], np.float32)
    rgb = np.array([[255, 0, 10], [1, 2, 3]], np.uint8)
    labels = np.array([4, 0], np.uint8)
    msg = semantic_cloud_msg(Header(frame_id="camera_optical"), xyz, rgb, labels)
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 2, 20, 40)
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [
        ("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("rgb", 12, 7), ("label", 16, 2)]
    points = np.frombuffer(bytes(msg.data), CLOUD_DTYPE)
    assert np.array_equal(np.stack([points["x"], points["y"], points["z"]], 1), xyz)
    assert points["rgb"].tolist() == [0xFF000A, 0x010203] and points["label"].tolist() == [4, 0]
    empty = semantic_cloud_msg(Header(), np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros(0, np.uint8))
    assert empty.width == 0 and len(empty.data) == 0
