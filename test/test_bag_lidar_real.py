"""The lidar-from-bag path on real camera + lidar frames (../shared/data): KITTI object frames
(two cameras: 1224x370 and 1242x375, per-frame intrinsics) and the RELLIS-3D frame
(1920x1200, one camera) go `meco data kitti|rellis` -> `make-bag --lidar` -> `from-bag`,
and come back with the same images, the same intrinsics (per frame where the camera
changes) and the same sparse lidar depth."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from meco_core.bags import BagReader, camera_info_from_msg
from meco_core.cli import main
from meco_core.data.format import DatasetReader

pytestmark = pytest.mark.timeout(120)

WITHIN_M = 0.01  # a depth pixel "comes back" when within 1 cm
MIN_BACK = 0.99  # of the original depth pixels
MAX_NEW = 0.001  # depth where there was none, as a fraction of the original depth pixels


def meco(*argv: str) -> None:
    assert main([str(a) for a in argv]) == 0, f"meco {' '.join(map(str, argv))} failed"


@pytest.fixture(scope="module")
def converted(shared_data: Path, tmp_path_factory) -> dict[str, Path]:
    """The shared KITTI and RELLIS frames as meco datasets (split 'test')."""
    root = tmp_path_factory.mktemp("real")
    meco("data", "kitti", "--root", shared_data / "kitti_object_sample", "--out", root / "kitti")
    meco("data", "rellis", "--root", shared_data / "rellis3d_example", "--out", root / "rellis")
    return {"kitti": root / "kitti", "rellis": root / "rellis"}


def bag_name(tmp: Path, name: str, storage: str) -> Path:
    return tmp / (name + (".bag" if storage == "ros1" else ""))


@pytest.mark.parametrize("name, storage", [("kitti", "mcap"), ("kitti", "sqlite3"), ("rellis", "sqlite3"),
                                           ("rellis", "mcap"), ("kitti", "ros1")])
def test_lidar_round_trip_real_frames(converted, tmp_path, name, storage):
    src_root = converted[name]
    bag, out = bag_name(tmp_path, name, storage), tmp_path / "out"
    meco("data", "make-bag", "--data", src_root, "--out", bag, "--storage", storage, "--lidar")
    meco("data", "from-bag", "--bag", bag, "--out", out, "--split", "test")

    src, got = DatasetReader(src_root), DatasetReader(out)
    names = src.names("test")
    assert len(names) == (3 if name == "kitti" else 1)
    with BagReader(bag) as r:  # each frame's camera_info: its own K and size
        infos = [camera_info_from_msg(m.msg) for m in r.messages(["/camera/camera_info"])]
    assert len(infos) == len(names) == len(got.names("test"))
    cams = []
    for info, a, b in zip(infos, names, got.names("test"), strict=True):
        x, y = src.load("test", a), got.load("test", b)
        h, w = x.rgb.shape[:2]
        assert (info.width, info.height) == (w, h)
        assert np.allclose(info.K[[0, 1, 0, 1], [0, 1, 2, 2]], x.intrinsics, rtol=0, atol=1e-9)
        assert np.array_equal(x.rgb, y.rgb)
        assert y.intrinsics is not None and np.allclose(y.intrinsics, x.intrinsics, rtol=0, atol=1e-9)
        cams.append((w, h, *x.intrinsics))
        ref, dep = x.depth_m, y.depth_m
        assert dep is not None
        n_ref = int((ref > 0).sum())
        back = int(((ref > 0) & (dep > 0) & (np.abs(dep - ref) <= WITHIN_M)).sum())
        new = int(((ref == 0) & (dep > 0)).sum())
        print(f"{name}/{storage} {a}: {w}x{h} {back}/{n_ref} depth pixels back within 1 cm, {new} new, "
              f"max |err| {np.abs(dep - ref)[(ref > 0) & (dep > 0)].max() * 1000:.2f} mm")
        assert n_ref > 5000
        assert back >= MIN_BACK * n_ref
        assert new <= MAX_NEW * n_ref
    meta = yaml.safe_load((out / "dataset.yaml").read_text())
    if name == "kitti":  # two cameras: the intrinsics come back per frame, none in dataset.yaml
        assert len(set(cams)) == 2 and {c[:2] for c in cams} == {(1224, 370), (1242, 375)}
        assert "intrinsics" not in meta
        assert len(list((out / "test" / "camera").glob("*.txt"))) == 3
    else:  # one camera: dataset-level intrinsics, as before
        assert got.intrinsics == src.intrinsics
        assert not (out / "test" / "camera").exists() or not any((out / "test" / "camera").iterdir())


def test_make_bag_frame_without_intrinsics(converted, tmp_path, capsys):
    """A frame with no intrinsics of its own (and none for the dataset) is named; --intrinsics fills in."""
    data = tmp_path / "kitti"
    shutil.copytree(converted["kitti"], data)
    (data / "test" / "camera" / "000001.txt").unlink()
    capsys.readouterr()
    assert main(["data", "make-bag", "--data", str(data), "--out", str(tmp_path / "b"), "--lidar"]) == 1
    err = capsys.readouterr().err
    assert "test/000001" in err and "--intrinsics" in err
    assert not (tmp_path / "b" / "metadata.yaml").exists()
    meco("data", "make-bag", "--data", data, "--out", tmp_path / "b2", "--storage", "mcap", "--lidar",
         "--intrinsics", "721.5377,721.5377,609.5593,172.854")
    meco("data", "from-bag", "--bag", tmp_path / "b2", "--out", tmp_path / "o", "--split", "test")
    got = DatasetReader(tmp_path / "o")
    intr = [got.load("test", n).intrinsics for n in got.names("test")]
    assert intr[1] == intr[2] == (721.5377, 721.5377, 609.5593, 172.854) and intr[0][0] == 707.0493
