"""tools/hfov_crops.py: a centre crop is the same scene seen through a longer lens."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from meco_core.classes import GOLF
from meco_core.data.format import DatasetReader, DatasetWriter
from tool_modules import load_tool

ROOT = Path(__file__).resolve().parents[1]


def _project(point, intr):
    fx, fy, cx, cy = intr
    x, y, z = point
    return fx * x / z + cx, fy * y / z + cy


def test_crop_keeps_every_3d_point_on_its_pixel_and_has_the_asked_fov(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    h, w = 60, 200
    intr = (70.0, 70.0, 97.3, 31.2)  # off-centre principal point: the crop must follow cx
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth = rng.uniform(1.0, 40.0, (h, w)).astype(np.float32)
    labels = rng.integers(0, GOLF.num_classes, (h, w), dtype=np.uint8)
    with DatasetWriter(tmp_path / "src", GOLF) as writer:
        writer.write("test", "f0", rgb, depth, labels, intrinsics=intr)

    out = tmp_path / "crops"
    subprocess.run([sys.executable, str(ROOT / "tools" / "hfov_crops.py"), str(tmp_path / "src"),
                    "--hfov", "60", "--out", str(out)], check=True, capture_output=True)
    crop = DatasetReader(out / "hfov60").load("test", "f0")
    fx, fy, cx, cy = crop.intrinsics
    cw = crop.rgb.shape[1]
    assert cw == round(2 * 70.0 * math.tan(math.radians(30.0)))
    assert math.isclose(2 * math.degrees(math.atan(cw / 2 / fx)), 60.0, abs_tol=1.0)
    assert (fx, fy, cy) == (70.0, 70.0, 31.2)
    # a 3D point straight ahead and one off-axis land on pixels holding the same data
    for point in ((0.0, 0.0, 10.0), (-2.0, 1.0, 8.0), (3.0, -1.5, 12.0)):
        u0, v0 = (int(round(c)) for c in _project(point, intr))
        u1, v1 = (int(round(c)) for c in _project(point, crop.intrinsics))
        assert 0 <= u1 < cw
        np.testing.assert_array_equal(crop.rgb[v1, u1], rgb[v0, u0])
        assert crop.labels[v1, u1] == labels[v0, u0]
        assert abs(crop.depth_m[v1, u1] - depth[v0, u0]) <= 0.001


def test_frames_already_narrower_are_skipped() -> None:
    class Frame:
        rgb = np.zeros((10, 20, 3), np.uint8)
        depth_m = labels = None
        intrinsics = (100.0, 100.0, 10.0, 5.0)  # 11 deg wide

    assert load_tool("hfov_crops").crop_to_hfov(Frame(), 45.0) is None
