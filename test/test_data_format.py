"""meco-dataset/1: writer/reader round trip, depth precision, merging, validation errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from meco_core.classes import CAMVID, CLASS_SETS, GOLF, REMAPS, ClassSet, get_class_set, make_remap
from meco_core.data.format import FORMAT, DatasetFormatError, DatasetReader, DatasetWriter, depth_to_mm

INTR = dict(fx=100.0, fy=100.0, cx=15.5, cy=11.5, width=32, height=24)


def _sample(seed: int = 0, h: int = 24, w: int = 32):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth = np.zeros((h, w), np.float32)
    idx = rng.choice(h * w, 60, replace=False)  # sparse, lidar-like
    depth.reshape(-1)[idx] = rng.uniform(0.5, 60.0, 60)
    labels = rng.integers(0, GOLF.num_classes, (h, w), dtype=np.uint8)
    labels[:2] = 255
    return rgb, depth, labels


def test_round_trip(tmp_path):
    rgb, depth, labels = _sample()
    with DatasetWriter(tmp_path, GOLF, intrinsics=INTR, source="unit test") as w:
        w.write("train", "a", rgb, depth, labels)
        w.write("train", "b", rgb)  # no depth, no labels
        w.write("val", "c", rgb, labels=labels)
    meta = yaml.safe_load((tmp_path / "dataset.yaml").read_text())
    assert meta["format"] == FORMAT and meta["splits"] == {"train": 2, "val": 1}
    assert meta["classes"]["names"] == GOLF.names and meta["source"] == "unit test"

    r = DatasetReader(tmp_path)
    assert r.class_set.same_classes(GOLF) and r.intrinsics == INTR
    assert r.splits() == ["train", "val"] and r.names("train") == ["a", "b"]
    s = r.load("train", "a")
    assert s.name == "a" and s.rgb.dtype == np.uint8 and np.array_equal(s.rgb, rgb)
    assert s.depth_m.dtype == np.float32 and np.array_equal(s.depth_m > 0, depth > 0)
    assert np.abs(s.depth_m - depth).max() <= 0.0005 + 1e-6  # 1 mm storage
    assert np.array_equal(s.labels, labels)
    b = r.load("train", "b")
    assert b.depth_m is None and b.labels is None
    assert r.load("val", "c").depth_m is None


def test_depth_encoding_invalid_and_range():
    d = np.array([[0.0, np.nan, np.inf, -1.0], [0.0004, 0.0006, 65.535, 70.0]], np.float32)
    mm, far = depth_to_mm(d)
    assert mm.dtype == np.uint16
    assert mm.tolist() == [[0, 0, 0, 0], [0, 1, 65535, 0]] and far == 1


def test_jpg_rewrite_and_merge(tmp_path):
    rgb, depth, labels = _sample()
    with DatasetWriter(tmp_path, GOLF, source="first") as w:
        w.write("train", "a", rgb, depth, labels)
    with DatasetWriter(tmp_path, GOLF, intrinsics=INTR, source="second", image_format="jpg") as w:
        smooth = np.zeros_like(rgb)
        smooth[...] = (200, 50, 10)  # JPEG is exact enough on flat colour; checks RGB order too
        w.write("train", "a", smooth)  # rewrite: old png image, depth and labels must go
        w.write("test", "z", rgb)
    r = DatasetReader(tmp_path)
    assert r.meta["splits"] == {"test": 1, "train": 1}
    assert r.meta["source"] == "first; second" and r.intrinsics == INTR
    s = r.load("train", "a")
    assert s.depth_m is None and s.labels is None
    assert np.abs(s.rgb.astype(int) - smooth).max() <= 4
    assert not (tmp_path / "train" / "image" / "a.png").exists()


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.yaml"):
        DatasetReader(tmp_path)
    rgb, depth, labels = _sample()
    w = DatasetWriter(tmp_path / "d", GOLF, intrinsics=INTR)
    with pytest.raises(DatasetFormatError, match="does not match"):
        w.write("train", "x", rgb, depth[:-1])
    with pytest.raises(DatasetFormatError, match="do not match"):
        w.write("train", "x", rgb, labels=labels[:, :-1])
    with pytest.raises(DatasetFormatError, match="float metres"):
        w.write("train", "x", rgb, (depth * 1000).astype(np.uint16))
    with pytest.raises(DatasetFormatError, match="uint8"):
        w.write("train", "x", rgb, labels=labels.astype(np.int64))
    with pytest.raises(DatasetFormatError, match="outside"):
        w.write("train", "x", rgb, labels=np.full_like(labels, 7))
    with pytest.raises(DatasetFormatError, match=r"\(H, W, 3\) uint8"):
        w.write("train", "x", rgb.astype(np.float32))
    with pytest.raises(DatasetFormatError, match="intrinsics"):
        w.write("train", "x", rgb[:20])
    with pytest.raises(ValueError, match="plain file name"):
        w.write("train", "../x", rgb)
    w.write("train", "ok", rgb)
    w.close()
    with pytest.raises(DatasetFormatError, match="cannot add"):
        DatasetWriter(tmp_path / "d", CAMVID)
    # a corrupted depth file (8-bit instead of 16-bit) and a resized label file are caught on load
    cv2.imwrite(str(tmp_path / "d" / "train" / "depth" / "ok.png"), np.zeros((24, 32), np.uint8))
    r = DatasetReader(tmp_path / "d")
    with pytest.raises(DatasetFormatError, match="16-bit"):
        r.load("train", "ok")
    (tmp_path / "d" / "train" / "depth" / "ok.png").unlink()
    cv2.imwrite(str(tmp_path / "d" / "train" / "seg" / "ok.png"), np.zeros((12, 32), np.uint8))
    with pytest.raises(DatasetFormatError, match="differs"):
        r.load("train", "ok")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "dataset.yaml").write_text("format: other/2\nclasses: {}\n")
    with pytest.raises(DatasetFormatError, match="expected"):
        DatasetReader(tmp_path / "bad")


def test_class_sets_and_remaps():
    assert CLASS_SETS["golf"].names == ["background", "fairway", "hazard", "road", "obstacle"]
    assert CAMVID.num_classes == 11 and CAMVID.colors[3] == (128, 64, 128)
    cs = ClassSet.from_dict(GOLF.to_dict())
    assert cs == GOLF and get_class_set("golf") is GOLF and get_class_set(GOLF.to_dict()) == GOLF
    pal = GOLF.palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8 and pal[255].tolist() == [0, 0, 0]
    img = GOLF.colorize(np.array([[1, 255]], np.uint8))
    assert img.tolist() == [[list(GOLF.colors[1]), [0, 0, 0]]]
    lut = make_remap({1: 2}, default=9)
    assert lut[1] == 2 and lut[0] == 9 and lut[255] == 255
    r = REMAPS["rellis->golf"]
    g = {n: i for i, n in enumerate(GOLF.names)}
    assert r[0] == 255 and r[3] == g["fairway"] and r[31] == g["hazard"] and r[23] == g["road"]
    assert r[17] == g["obstacle"] and r[7] == g["background"] and r[2] == 255  # 2 is not a RELLIS id
    c = REMAPS["camvid->golf"]
    assert c[3] == g["road"] and c[8] == g["obstacle"] and c[0] == g["background"] and c[11] == 255
    with pytest.raises(KeyError):
        get_class_set("nope")
    with pytest.raises(ValueError):
        ClassSet("x", ["a"], [(0, 0, 0), (1, 1, 1)])
