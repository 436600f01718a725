"""tools/camera_views.py and meco_core.data.camera_turn: a camera turned about its centre sees the same
rays, moved in the image; its depth is the points rotated into it."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from meco_core.classes import GOLF
from meco_core.data.camera_turn import camera_rotation, target_to_source
from meco_core.data.format import DatasetReader, DatasetWriter
from meco_core.geometry import intrinsics_matrix
from tool_modules import load_tool

ROOT = Path(__file__).resolve().parents[1]
views = load_tool("camera_views")
INTR = (150.0, 150.0, 160.3, 91.7)  # principal point off the centre: the turned camera must follow it
SRC_HW = (180, 320)


def _pixel(K: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    p = K @ xyz
    return p[:2] / p[2]


@pytest.mark.parametrize("angles", [(5.0, 0.0, 0.0), (-2.5, 0.0, 0.0), (0.0, 15.0, 0.0), (0.0, 0.0, 5.0),
                                    (3.0, -7.0, 2.0)])
def test_each_3d_point_keeps_its_colour_and_gets_its_rotated_depth(angles) -> None:
    R = camera_rotation(*angles)
    out_hw = views.common_size(INTR, SRC_HW, [R])
    K, K2 = intrinsics_matrix(*INTR), intrinsics_matrix(*views.turned_intrinsics(INTR, out_hw))
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (*SRC_HW, 3), dtype=np.uint8)
    labels = rng.integers(0, GOLF.num_classes, SRC_HW, dtype=np.uint8)
    depth = np.zeros(SRC_HW, np.float32)
    # points on source pixel centres, away from each other so no two share a turned pixel
    points = []
    for v, u in ((40, 60), (90, 160), (140, 250), (100, 100), (60, 220)):
        z = float(rng.uniform(3.0, 40.0))
        depth[v, u] = z
        points.append(np.array([(u - INTR[2]) / INTR[0] * z, (v - INTR[3]) / INTR[1] * z, z]))
    rgb2, depth2, labels2, intr2 = views.turned_view(rgb, depth, labels, INTR, R, out_hw)
    assert rgb2.shape[:2] == depth2.shape == labels2.shape == out_hw
    assert (depth2 > 0).sum() == sum(1 for x in points if 0 <= _pixel(K2, R.T @ x)[0] < out_hw[1] - 0.5
                                     and 0 <= _pixel(K2, R.T @ x)[1] < out_hw[0] - 0.5)
    for x in points:
        x2 = R.T @ x  # the point in the turned camera
        u2, v2 = _pixel(K2, x2)
        if not (0 <= u2 < out_hw[1] - 0.5 and 0 <= v2 < out_hw[0] - 0.5):
            continue
        assert depth2[int(round(v2)), int(round(u2))] == pytest.approx(x2[2], abs=1e-3)
        # the homography sends the turned pixel back to the source pixel on the same ray
        src = target_to_source(K, R, K2) @ np.array([u2, v2, 1.0])
        np.testing.assert_allclose(src[:2] / src[2], _pixel(K, x), atol=1e-6)
    # labels are sampled nearest along the homography (the pixel each turned pixel's ray hits)
    H = target_to_source(K, R, K2)
    for v2 in range(3, out_hw[0], 17):
        for u2 in range(5, out_hw[1], 23):
            src = H @ np.array([u2, v2, 1.0])
            us, vs = src[0] / src[2], src[1] / src[2]
            if min(abs(us % 1 - 0.5), abs(vs % 1 - 0.5)) > 0.05:  # not on a rounding boundary
                assert labels2[v2, u2] == labels[int(round(vs)), int(round(us))]


@pytest.mark.parametrize("angles, axis, expected", [
    ((5.0, 0.0, 0.0), 1, -math.tan(math.radians(5.0))),   # looking down: the horizon rises
    ((-5.0, 0.0, 0.0), 1, math.tan(math.radians(5.0))),
    ((0.0, 15.0, 0.0), 0, -math.tan(math.radians(15.0))),  # looking right: straight ahead moves left
])
def test_the_point_straight_ahead_moves_as_the_angle_says(angles, axis, expected) -> None:
    R = camera_rotation(*angles)
    out_hw = (100, 180)
    fx, fy, cx, cy = views.turned_intrinsics(INTR, out_hw)
    u, v = _pixel(intrinsics_matrix(fx, fy, cx, cy), R.T @ np.array([0.0, 0.0, 1000.0]))
    offset = (u - cx) / fx if axis == 0 else (v - cy) / fy
    assert offset == pytest.approx(expected, abs=1e-9)


def test_roll_clockwise_turns_the_scene_counter_clockwise() -> None:
    R = camera_rotation(0.0, 0.0, 5.0)
    fx, fy, cx, cy = views.turned_intrinsics(INTR, (100, 180))
    u, v = _pixel(intrinsics_matrix(fx, fy, cx, cy), R.T @ np.array([100.0, 0.0, 1000.0]))  # right, on the horizon
    assert u > cx and v < cy  # the horizon rises to the right


def test_common_size_is_the_whole_frame_level_and_smaller_tilted() -> None:
    level = views.common_size(INTR, SRC_HW, [camera_rotation(0, 0, 0)])
    tilted = views.common_size(INTR, SRC_HW, [camera_rotation(0, 0, 0), camera_rotation(5, 0, 0)])
    # level: the largest crop centred on the principal point (2.2 rows off the centre here)
    assert level[0] >= SRC_HW[0] - 2 * 2.2 - 2 and abs(level[1] / level[0] - SRC_HW[1] / SRC_HW[0]) < 0.02
    assert tilted[0] < level[0] and tilted[1] < level[1]
    K = intrinsics_matrix(*INTR)
    K2 = intrinsics_matrix(*views.turned_intrinsics(INTR, tilted))
    assert views._fits(target_to_source(K, camera_rotation(5, 0, 0), K2), tilted, SRC_HW)


def test_cli_writes_each_group_at_one_size_with_its_intrinsics(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "src", GOLF) as writer:
        for i in range(2):
            depth = np.where(rng.random(SRC_HW) < 0.05, rng.uniform(2, 50, SRC_HW), 0).astype(np.float32)
            writer.write("test", f"f{i}", rng.integers(0, 256, (*SRC_HW, 3), dtype=np.uint8), depth,
                         rng.integers(0, GOLF.num_classes, SRC_HW, dtype=np.uint8), intrinsics=INTR)
    out = tmp_path / "views"
    subprocess.run([sys.executable, str(ROOT / "tools" / "camera_views.py"), str(tmp_path / "src"), "--out", str(out)],
                   check=True, capture_output=True)
    for group in ("pitch", "pitch5", "roll", "yaw"):  # the turns: one size per group
        views = sorted(p for p in out.iterdir() if p.name.startswith(group + "_"))
        assert f"{group}_level" in {p.name for p in views} and len(views) >= 3
        shapes = {DatasetReader(p).load("test", "f1").rgb.shape for p in views}
        assert len(shapes) == 1
        sample = DatasetReader(out / f"{group}_level").load("test", "f0")
        h, w = sample.rgb.shape[:2]
        assert sample.intrinsics == pytest.approx((INTR[0], INTR[1], (w - 1) / 2, (h - 1) / 2))
        assert (sample.depth_m > 0).sum() > 0
    # the zoom group: a longer lens on the same sensor, centred crops of the level view at the same focal
    level = DatasetReader(out / "zoom_level").load("test", "f0")
    zoomed = DatasetReader(out / "zoom_x2.2").load("test", "f0")
    assert zoomed.rgb.shape[0] == pytest.approx(level.rgb.shape[0] / 2.2, abs=2)
    assert zoomed.rgb.shape[1] == pytest.approx(level.rgb.shape[1] / 2.2, abs=2)
    assert zoomed.intrinsics[:2] == level.intrinsics[:2]
    h, w = zoomed.rgb.shape[:2]
    dy, dx = (level.rgb.shape[0] - h) // 2, (level.rgb.shape[1] - w) // 2
    np.testing.assert_array_equal(zoomed.rgb[5:-5, 5:-5], level.rgb[dy + 5:dy + h - 5, dx + 5:dx + w - 5])
