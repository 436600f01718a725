"""Bag layer and bag importers: make-bag -> from-bag round trips (sqlite3, mcap, ROS 1), bags
written by rosbags' own Writer, damaged bags, missing topics, and the real RELLIS frame."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import StoragePlugin, Writer as Ros2Writer
from rosbags.typesys import Stores, get_typestore

from meco_core.bags import (
    BagError,
    BagReader,
    BagWriter,
    MissingTopicError,
    TfTree,
    UnknownTypeError,
    camera_info_from_msg,
    cloud_to_xyz,
    matrix_to_quat,
    pointcloud2_msg,
    ros2_typestore,
)
from meco_core.bag_options import ImportBagOptions, MakeBagOptions
from meco_core.classes import GOLF
from meco_core.bags.lidar_projection import load_extrinsics
from meco_core.bags.to_dataset import import_bag
from meco_core.data.format import DatasetReader, DatasetWriter
from meco_core.bags.from_dataset import T_BASE_CAMERA, T_BASE_LIDAR, make_bag
from meco_core.data.rellis import convert_rellis_frame, read_camera_info, read_transform
from meco_core.geometry import (
    intrinsics_matrix,
    invert_transform,
    make_transform,
    project_points,
    quat_to_matrix,
    sparse_depth_image,
    transform_points,
)

RELLIS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rellis3d_example"
H, W = 48, 64
INTR = dict(fx=50.0, fy=52.0, cx=31.5, cy=23.0, width=W, height=H)
STORAGES = ("sqlite3", "mcap", "ros1")
pytestmark = pytest.mark.timeout(120)


def bag_path(tmp: Path, name: str, storage: str) -> Path:
    return tmp / (name + (".bag" if storage == "ros1" else ""))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """5 frames with dense depth (a hole of no data, 2-60 m), labels and intrinsics."""
    root = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    with DatasetWriter(root, GOLF, intrinsics=INTR) as w:
        for i in range(5):
            depth = (2.0 + 1.2 * yy + 0.01 * xx + 0.37 * i).astype(np.float32)
            depth[5:8, 10:20] = 0
            w.write("test", f"f{i:03d}", rng.integers(0, 256, (H, W, 3), dtype=np.uint8), depth_m=depth,
                    labels=rng.integers(0, 5, (H, W), dtype=np.uint8))
    return root


def assert_same_depth_at_hits(ref: np.ndarray, got: np.ndarray, min_hits: int) -> None:
    hit = got > 0
    assert hit.sum() >= min_hits
    assert (ref[hit] > 0).all()
    assert np.abs(ref[hit] - got[hit]).max() <= 0.0015  # 16-bit mm PNG quantisation


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("storage", STORAGES)
def test_round_trip_lidar_tf_static(dataset, tmp_path, storage):
    bag = bag_path(tmp_path, "drive", storage)
    made = make_bag(dataset, bag, storage=storage, lidar=True, verbose=False)
    assert made["frames"] == 5 and made["clouds"] == 5
    stats = import_bag(bag, tmp_path / "out", split="val", seg_topic="/camera/segmentation", verbose=False)
    assert stats["image_topic"] == "/camera/image_raw" and stats["cloud_topic"] == "/lidar/points"
    assert stats["frames_written"] == 5 and stats["matched"] == 5 and stats["unmatched"] == 0
    assert stats["extrinsics"].startswith("/tf_static")
    src, out = DatasetReader(dataset), DatasetReader(tmp_path / "out")
    assert out.intrinsics == src.intrinsics == INTR  # exact
    for a, b in zip(src.names("test"), out.names("val"), strict=True):
        x, y = src.load("test", a), out.load("val", b)
        assert np.array_equal(x.rgb, y.rgb)
        assert np.array_equal(x.labels, y.labels)
        assert_same_depth_at_hits(x.depth_m, y.depth_m, min_hits=int((x.depth_m > 0).sum()))
    with BagReader(bag) as r:  # camera_info intrinsics exact in the bag itself
        info = next(iter(r.messages(["/camera/camera_info"])))
        cam = camera_info_from_msg(info.msg)
        assert np.array_equal(cam.K, intrinsics_matrix(50.0, 52.0, 31.5, 23.0)) and (cam.width, cam.height) == (W, H)
        assert cam.frame_id == "camera_optical_frame"


def _extrinsics_yaml(path: Path, T_camera_lidar: np.ndarray, inverse: bool = False) -> Path:
    T = invert_transform(T_camera_lidar) if inverse else T_camera_lidar
    w, x, y, z = matrix_to_quat(T[:3, :3])
    t = T[:3, 3]
    key = "T_lidar_camera" if inverse else "T_camera_lidar"
    path.write_text(yaml.safe_dump({key: {"q": dict(w=w, x=x, y=y, z=z),
                                          "t": dict(x=float(t[0]), y=float(t[1]), z=float(t[2]))}}))
    return path


@pytest.mark.parametrize("inverse", [False, True])
def test_extrinsics_from_yaml_and_rings(dataset, tmp_path, inverse):
    bag = tmp_path / "drive"
    make_bag(dataset, bag, lidar=True, lidar_rings=8, verbose=False)
    T_camera_lidar = invert_transform(T_BASE_CAMERA) @ T_BASE_LIDAR
    yml = _extrinsics_yaml(tmp_path / "ext.yaml", T_camera_lidar, inverse)
    assert np.allclose(load_extrinsics(yml), T_camera_lidar, atol=1e-12)
    stats = import_bag(bag, tmp_path / "out", extrinsics=yml, verbose=False)
    assert stats["extrinsics"] == "given" and stats["matched"] == 5
    src, out = DatasetReader(dataset), DatasetReader(tmp_path / "out")
    for a, b in zip(src.names("test"), out.names("train"), strict=True):
        ref, got = src.load("test", a).depth_m, out.load("train", b).depth_m
        assert_same_depth_at_hits(ref, got, min_hits=8 * 20)
        assert (got > 0).sum() < 0.5 * (ref > 0).sum()  # rings thin the cloud
    # a wrong YAML is really used (not silently replaced by /tf_static)
    bad = _extrinsics_yaml(tmp_path / "bad.yaml", make_transform(np.eye(3), (0, 0, 0)))
    stats = import_bag(bag, tmp_path / "out_bad", extrinsics=bad, verbose=False)
    assert stats["mean_points_per_frame"] < 0.5 * stats_points(tmp_path / "out")


def stats_points(root: Path) -> float:
    r = DatasetReader(root)
    return float(np.mean([(r.load("train", n).depth_m > 0).sum() for n in r.names("train")]))


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_depth_image_topic_and_compressed(dataset, tmp_path, encoding):
    bag = tmp_path / "drive"
    make_bag(dataset, bag, storage="mcap", depth_encoding=encoding, compressed=True, verbose=False)
    with BagReader(bag) as r:
        assert r.topics["/camera/image_raw/compressed"].msgtype == "sensor_msgs/msg/CompressedImage"
        assert "/lidar/points" not in r.topics and "/tf_static" not in r.topics
    stats = import_bag(bag, tmp_path / "out", depth_topic="/camera/depth", verbose=False)
    assert stats["image_topic"] == "/camera/image_raw/compressed" and stats["matched"] == 5
    src, out = DatasetReader(dataset), DatasetReader(tmp_path / "out")
    for a, b in zip(src.names("test"), out.names("train"), strict=True):
        x, y = src.load("test", a), out.load("train", b)
        assert np.array_equal(x.depth_m, y.depth_m)  # dense, exact, holes stay holes
        ok, jpg = cv2.imencode(".jpg", x.rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert np.array_equal(y.rgb, cv2.imdecode(jpg, cv2.IMREAD_COLOR)[:, :, ::-1])  # the JPEG, decoded as RGB


def test_limit_every_and_unmatched(dataset, tmp_path):
    bag = tmp_path / "drive"
    make_bag(dataset, bag, lidar=True, rate_hz=4, verbose=False)
    stats = import_bag(bag, tmp_path / "a", every=2, verbose=False)
    assert stats["frames_written"] == 3 and DatasetReader(tmp_path / "a").names("train")[-1].endswith("000004")
    stats = import_bag(bag, tmp_path / "b", limit=2, verbose=False)
    assert stats["frames_written"] == 2
    stats = import_bag(bag, tmp_path / "c", cloud_topic="none", verbose=False)
    assert stats["frames_written"] == 5 and stats["matched"] == 0
    c = DatasetReader(tmp_path / "c")
    assert not any(c.has_depth("train", n) for n in c.names("train"))


# ------------------------------------------------------------------ bags written by another tool
def _rosbags_writer(path: Path, storage: str):
    if storage == "ros1":
        return Ros1Writer(path), get_typestore(Stores.ROS1_NOETIC)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    return Ros2Writer(path, version=9, storage_plugin=plugin), get_typestore(Stores.ROS2_HUMBLE)


@pytest.mark.parametrize("storage", STORAGES)
def test_import_bag_written_by_rosbags(tmp_path, storage):
    """bgr8 images with padded rows, an organised cloud with extra fields, NaNs, padding and
    big-endian data, stamps that differ from log times, one image without a cloud."""
    path = bag_path(tmp_path, "foreign", storage)
    writer, ts = _rosbags_writer(path, storage)
    T = ts.types
    ros1 = storage == "ros1"
    rng = np.random.default_rng(1)
    K = intrinsics_matrix(60.0, 60.0, 32.0, 24.0)
    T_camera_lidar = make_transform(quat_to_matrix(0.5, -0.5, 0.5, -0.5), (0.05, -0.2, 0.1))  # x fwd, z up lidar

    def header(t_ns: int, frame: str):
        extra = {"seq": 0} if ros1 else {}
        stamp = T["builtin_interfaces/msg/Time"](sec=t_ns // 10**9, nanosec=t_ns % 10**9)
        return T["std_msgs/msg/Header"](**extra, stamp=stamp, frame_id=frame)

    def cloud(t_ns: int, pts: np.ndarray, big: bool):
        n = len(pts)
        order = ">" if big else "<"
        rec = np.zeros(n, dtype=np.dtype({"names": ["y", "x", "z", "intensity", "ring"],
                                          "formats": [order + "f4"] * 4 + [order + "u2"],
                                          "offsets": [4, 8, 12, 16, 20], "itemsize": 32}))
        rec["x"], rec["y"], rec["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
        PF = T["sensor_msgs/msg/PointField"]
        fields = [PF(name="y", offset=4, datatype=7, count=1), PF(name="x", offset=8, datatype=7, count=1),
                  PF(name="z", offset=12, datatype=7, count=1), PF(name="intensity", offset=16, datatype=7, count=1),
                  PF(name="ring", offset=20, datatype=4, count=1)]
        rows = rec.view(np.uint8).reshape(2, -1)  # organised: 2 rows of n/2 points, 8 bytes row padding
        data = np.concatenate([rows, np.zeros((2, 8), np.uint8)], axis=1).reshape(-1)
        return T["sensor_msgs/msg/PointCloud2"](header=header(t_ns, "velodyne"), height=2, width=n // 2, fields=fields,
                                                is_bigendian=big, point_step=32, row_step=32 * (n // 2) + 8,
                                                data=data, is_dense=False)

    ci_arrays = {"D": np.zeros(5), "K": K.reshape(9), "R": np.eye(3).reshape(9),
                 "P": np.hstack([K, np.zeros((3, 1))]).reshape(12)}
    if not ros1:
        ci_arrays = {k.lower(): v for k, v in ci_arrays.items()}
    roi = T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    expected, images = [], []
    with writer:
        c_img = writer.add_connection("/cam/front/image", "sensor_msgs/msg/Image", typestore=ts)
        c_info = writer.add_connection("/cam/front/info", "sensor_msgs/msg/CameraInfo", typestore=ts)
        c_pc = writer.add_connection("/velodyne_points", "sensor_msgs/msg/PointCloud2", typestore=ts)
        ser = ts.serialize_ros1 if ros1 else ts.serialize_cdr
        t0 = 1_600_000_000 * 10**9
        for i in range(3):
            t = t0 + i * 100_000_000
            bgr = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            padded = np.zeros((48, 64 * 3 + 4), np.uint8)
            padded[:, :192] = bgr.reshape(48, -1)
            img = T["sensor_msgs/msg/Image"](header=header(t, "cam_front"), height=48, width=64, encoding="bgr8",
                                             is_bigendian=0, step=196, data=padded.reshape(-1))
            writer.write(c_img, t + 7_000_000, ser(img, "sensor_msgs/msg/Image"))
            info = T["sensor_msgs/msg/CameraInfo"](header=header(t, "cam_front"), height=48, width=64,
                                                   distortion_model="plumb_bob", **ci_arrays, binning_x=0,
                                                   binning_y=0, roi=roi)
            writer.write(c_info, t + 7_000_000, ser(info, "sensor_msgs/msg/CameraInfo"))
            images.append(bgr[:, :, ::-1])
            if i == 2:  # no cloud within tolerance for the last image
                expected.append(None)
                continue
            cam_pts = np.stack([rng.uniform(-8, 8, 400), rng.uniform(-6, 6, 400), rng.uniform(2, 30, 400)], 1)
            lidar_pts = transform_points(invert_transform(T_camera_lidar), cam_pts).astype(np.float32)
            lidar_pts[::50] = np.nan  # non-dense cloud
            lidar_pts[1::50] = 0.0  # "no return"
            valid = lidar_pts[np.linalg.norm(lidar_pts, axis=1) > 0.3]
            u, v, z, _ = project_points(transform_points(T_camera_lidar, valid), K, 64, 48)
            expected.append(sparse_depth_image(u, v, z, 64, 48))
            tc = t + 20_000_000  # lidar stamp 20 ms after the image
            writer.write(c_pc, tc + 3_000_000, ser(cloud(tc, lidar_pts, big=i == 1), "sensor_msgs/msg/PointCloud2"))
    yml = _extrinsics_yaml(tmp_path / "ext.yaml", T_camera_lidar)
    stats = import_bag(path, tmp_path / "out", extrinsics=yml, tolerance_ms=30, verbose=False)
    assert (stats["frames_written"], stats["matched"], stats["unmatched"]) == (3, 2, 1)
    out = DatasetReader(tmp_path / "out")
    assert out.intrinsics == dict(fx=60.0, fy=60.0, cx=32.0, cy=24.0, width=64, height=48)
    for name, rgb, exp in zip(out.names("train"), images, expected, strict=True):
        s = out.load("train", name)
        assert np.array_equal(s.rgb, rgb)
        if exp is None:
            assert s.depth_m is None
        else:
            assert np.array_equal(s.depth_m > 0, exp > 0) and (exp > 0).sum() > 100
            assert np.abs(s.depth_m - exp).max() <= 0.0005
    # without extrinsics: no /tf_static in this bag -> a clear error naming the frames
    with pytest.raises(BagError, match="velodyne.*cam_front.*--extrinsics"):
        import_bag(path, tmp_path / "out2", verbose=False)


# ------------------------------------------------------------------ bad input
def _truncate(bag: Path, frac: float) -> Path:
    f = next(p for p in bag.iterdir() if p.suffix in (".db3", ".mcap")) if bag.is_dir() else bag
    with open(f, "r+b") as fh:
        fh.truncate(int(f.stat().st_size * frac))
    return f


@pytest.mark.parametrize("storage", STORAGES)
def test_truncated_bag(dataset, tmp_path, storage):
    bag = bag_path(tmp_path, "drive", storage)
    make_bag(dataset, bag, storage=storage, lidar=True, verbose=False)
    _truncate(bag, 0.6)
    got: list[str] = []
    with pytest.raises(BagError) as exc:
        with BagReader(bag) as r:
            for m in r.messages(["/camera/image_raw", "/camera/depth"]):  # what is readable comes first
                got.append(m.topic)
    assert str(bag) in str(exc.value) and "damaged" in str(exc.value)
    assert 0 < len(got) < 10
    with pytest.raises(BagError, match=r"damaged bag: wrote the \d+ frames") as exc:
        import_bag(bag, tmp_path / "out", verbose=False)
    n = len(DatasetReader(tmp_path / "out").names("train"))  # what could be read was kept
    assert 0 < n < 5 and "AnyReaderError" in str(exc.value)


def test_garbage_and_missing_paths(tmp_path):
    with pytest.raises(BagError, match="no such bag"):
        BagReader(tmp_path / "nope.bag")
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(BagError, match="not recoverable"):
        BagReader(junk).open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="not a bag"):
        BagReader(tmp_path / "empty").open()


def test_missing_topic_and_wrong_type(dataset, tmp_path):
    bag = tmp_path / "drive"
    make_bag(dataset, bag, verbose=False)
    listing = r"/nope.*available topics: .*/camera/image_raw \(sensor_msgs/msg/Image, 5 msgs\)"
    with pytest.raises(MissingTopicError, match=listing):
        import_bag(bag, tmp_path / "out", image_topic="/nope", verbose=False)
    with pytest.raises(BagError, match="/camera/camera_info has type sensor_msgs/msg/CameraInfo, expected"):
        import_bag(bag, tmp_path / "out", image_topic="/camera/camera_info", verbose=False)
    with BagReader(bag) as r, pytest.raises(MissingTopicError) as exc:
        list(r.messages(["/lidar/points"]))
    assert "/camera/depth" in exc.value.available


def test_unknown_message_type(tmp_path):
    """A topic whose definition is neither in the bag nor in the typestore: a clear error up front."""
    ts = ros2_typestore()
    bag = tmp_path / "b"
    with BagWriter(bag) as w:
        w.add_topic("/cloud", "sensor_msgs/msg/PointCloud2")
        w.write("/cloud", 1, pointcloud2_msg(ts, np.ones((3, 3)), 1, "lidar"))
    db = next(bag.glob("*.db3"))
    with sqlite3.connect(db) as con:  # rename the type and drop its stored definition
        con.execute("UPDATE topics SET type = 'acme_msgs/msg/Blob'")
        con.execute("DELETE FROM message_definitions")
    meta = bag / "metadata.yaml"
    meta.write_text(meta.read_text().replace("sensor_msgs/msg/PointCloud2", "acme_msgs/msg/Blob"))
    with BagReader(bag) as r:
        assert r.topics["/cloud"].msgtype == "acme_msgs/msg/Blob"
        with pytest.raises(UnknownTypeError, match="acme_msgs/msg/Blob"):
            next(r.messages(["/cloud"]))


def test_writer_refuses_existing_and_bad_names(tmp_path):
    with BagWriter(tmp_path / "a", storage="mcap") as w:
        w.add_topic("/x", "sensor_msgs/msg/PointCloud2")
    with pytest.raises(BagError, match="exists"):
        BagWriter(tmp_path / "a")
    BagWriter(tmp_path / "a", overwrite=True).close()
    with pytest.raises(ValueError, match=r"\*\.bag"):
        BagWriter(tmp_path / "x", storage="ros1")
    (tmp_path / "notabag").mkdir()
    (tmp_path / "notabag" / "precious.txt").write_text("keep me")
    with pytest.raises(BagError, match="refusing"):
        BagWriter(tmp_path / "notabag", overwrite=True)
    assert (tmp_path / "notabag" / "precious.txt").exists()


# ------------------------------------------------------------------ message helpers
def test_tf_chain_and_quaternions():
    rng = np.random.default_rng(3)
    for _ in range(20):
        q = rng.normal(size=4)
        R = quat_to_matrix(*q)
        assert np.allclose(quat_to_matrix(*matrix_to_quat(R)), R, atol=1e-12)
    tree = TfTree()
    tree.add("base_link", "lidar", T_BASE_LIDAR)
    tree.add("/base_link", "camera", T_BASE_CAMERA)  # ROS 1 style leading slash
    T = tree.lookup("camera", "lidar")
    assert np.allclose(T, invert_transform(T_BASE_CAMERA) @ T_BASE_LIDAR)
    assert np.allclose(tree.lookup("lidar", "camera") @ T, np.eye(4))
    with pytest.raises(KeyError, match="known frames"):
        tree.lookup("camera", "gps")


def test_cloud_to_xyz_drops_nan():
    ts = ros2_typestore()
    pts = np.array([[1, 2, 3], [np.nan, 0, 0], [4, 5, 6]], np.float32)
    msg = pointcloud2_msg(ts, pts, 5, "lidar", intensity=np.arange(3))
    assert not msg.is_dense
    assert np.array_equal(cloud_to_xyz(msg), pts[[0, 2]])


def test_projection_with_distortion():
    """plumb_bob distortion is applied; a ray far outside the view that the polynomial folds
    back into the image (k1 < 0) must not produce a ghost point."""
    from meco_core.bags import CameraModel
    from meco_core.bags.lidar_projection import project_cloud

    K = intrinsics_matrix(50.0, 50.0, 31.5, 23.5)
    D = np.array([-0.2, 0.0, 0.0, 0.0, 0.0])
    cam = CameraModel(K=K, width=64, height=48, distortion=D, model="plumb_bob", frame_id="cam")
    rng = np.random.default_rng(5)
    rays = np.stack([rng.uniform(-0.5, 0.5, 300), rng.uniform(-0.4, 0.4, 300), np.ones(300)], 1)
    pts = rays * rng.uniform(2, 20, (300, 1))
    ghost = np.array([[2.5 * 10.0, 0.0, 10.0]])  # x/z = 2.5: distorts to x_d = -0.625 -> column 0
    uv, _ = cv2.projectPoints(ghost.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, D)
    assert 0 <= uv[0, 0, 0] < 64  # the polynomial really folds it into the image
    depth = project_cloud(np.vstack([pts, ghost]), cam, 64, 48)
    uv, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, D)
    u, v = np.floor(uv[:, 0, 0] + 0.5).astype(int), np.floor(uv[:, 0, 1] + 0.5).astype(int)
    expected = sparse_depth_image(u, v, pts[:, 2].astype(np.float32), 64, 48)
    assert np.array_equal(depth, expected) and (expected > 0).sum() > 200


def test_our_bags_read_by_rosbags_image(dataset, tmp_path):
    """Bags from make-bag decode with rosbags' own reader and rosbags-image, also without metadata.yaml."""
    from rosbags.highlevel import AnyReader
    from rosbags.image import message_to_cvimage

    bag = tmp_path / "drive"
    make_bag(dataset, bag, storage="mcap", verbose=False)
    src = DatasetReader(dataset)
    with AnyReader([bag]) as r:
        conn = next(c for c in r.connections if c.topic == "/camera/image_raw")
        conn_d = next(c for c in r.connections if c.topic == "/camera/depth")
        c, _, raw = next(r.messages([conn]))
        img = message_to_cvimage(r.deserialize(raw, c.msgtype), "rgb8")
        c, _, raw = next(r.messages([conn_d]))
        depth = message_to_cvimage(r.deserialize(raw, c.msgtype))
    s = src.load("test", src.names("test")[0])
    assert np.array_equal(img, s.rgb)
    assert np.array_equal(np.nan_to_num(depth, nan=0.0), s.depth_m) and np.isnan(depth).sum() == 30
    (bag / "metadata.yaml").unlink()  # a recording killed before it wrote its metadata
    with BagReader(bag) as r:
        assert r.topics["/camera/image_raw"].count == 5 and not r.salvaged


# ------------------------------------------------------------------ the real RELLIS frame
@pytest.mark.skipif(not RELLIS_DIR.is_dir(), reason="shared RELLIS example not found")
def test_rellis_frame_through_a_bag(tmp_path):
    jpg = next(RELLIS_DIR.glob("frame*.jpg"))
    raw = np.fromfile(next(RELLIS_DIR.glob("*.bin")), np.float32).reshape(-1, 4)
    fx, fy, cx, cy = read_camera_info(RELLIS_DIR / "camera_info.txt")
    key, T_yaml = read_transform(RELLIS_DIR / "transforms.yaml")
    h, w = cv2.imread(str(jpg)).shape[:2]
    bag = tmp_path / "rellis"
    t = 1_581_624_663_149_000_000
    with BagWriter(bag, storage="mcap") as b:
        ts = b.typestore
        from meco_core.bags import camera_info_msg, header_msg, tf_message

        b.add_topic("/pylon_camera_node/image_raw/compressed", "sensor_msgs/msg/CompressedImage")
        b.add_topic("/pylon_camera_node/camera_info", "sensor_msgs/msg/CameraInfo")
        b.add_topic("/os1_cloud_node/points", "sensor_msgs/msg/PointCloud2")
        b.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        # rellis.py: the yaml holds the camera pose in the lidar frame (T_lidar_camera)
        b.write("/tf_static", t, tf_message(ts, [("os1_cloud_node", "pylon_camera_node", T_yaml)], t))
        img = ts.types["sensor_msgs/msg/CompressedImage"](header=header_msg(ts, t, "pylon_camera_node"),
                                                           format="bgr8; jpeg compressed bgr8",
                                                           data=np.fromfile(jpg, np.uint8))
        b.write("/pylon_camera_node/image_raw/compressed", t, img)
        b.write("/pylon_camera_node/camera_info", t,
                camera_info_msg(ts, intrinsics_matrix(fx, fy, cx, cy), w, h, t, "pylon_camera_node"))
        b.write("/os1_cloud_node/points", t + 30_000_000,
                pointcloud2_msg(ts, raw[:, :3], t + 30_000_000, "os1_cloud_node", intensity=raw[:, 3]))
    stats = import_bag(bag, tmp_path / "from_bag", split="test", verbose=False)
    assert stats["matched"] == 1 and "os1_cloud_node -> pylon_camera_node" in stats["extrinsics"]
    ref_stats = convert_rellis_frame(RELLIS_DIR, tmp_path / "ref", split="test")
    assert ref_stats["direction"] == "inverse"
    ref, got = DatasetReader(tmp_path / "ref"), DatasetReader(tmp_path / "from_bag")
    assert got.intrinsics == ref.intrinsics
    a, b_ = ref.load("test", ref.names("test")[0]), got.load("test", got.names("test")[0])
    assert np.array_equal(a.rgb, b_.rgb)
    assert np.array_equal(a.depth_m > 0, b_.depth_m > 0) and (a.depth_m > 0).sum() == ref_stats["depth_pixels"]
    assert np.abs(a.depth_m - b_.depth_m).max() <= 0.001


def _data_parser():
    """The parser of `meco data` alone (what `meco` builds for it)."""
    import argparse

    from meco_core.cli.commands import data as data_cmd

    parser = argparse.ArgumentParser()
    data_cmd.register(parser.add_subparsers(dest="command"))
    return parser


def test_options_objects_and_their_command_line(dataset, tmp_path):
    """make-bag / from-bag options are MakeBagOptions / ImportBagOptions fields: the command's
    defaults are the dataclass's, flags named otherwise reach their fields, and the functions
    take an options object, its fields as keywords, and nothing else."""
    from meco_core.options import from_args

    parser = _data_parser()
    args = parser.parse_args(["data", "make-bag", "--data", "d", "--out", "o"])
    assert from_args(MakeBagOptions, args) == MakeBagOptions()
    args = parser.parse_args(["data", "from-bag", "--bag", "b", "--out", "o"])
    assert from_args(ImportBagOptions, args) == ImportBagOptions()
    args = parser.parse_args(["data", "make-bag", "--data", "d", "--out", "o", "--rate", "4", "--camera-frame", "cam",
                              "--depth-topic", "none", "--lidar"])
    o = from_args(MakeBagOptions, args)
    assert (o.rate_hz, o.frame_id, o.depth_topic, o.lidar_topic) == (4.0, "cam", None, "/lidar/points")
    with pytest.raises(TypeError, match="'rate'"):  # the flag's name is not the field's
        make_bag(dataset, tmp_path / "never", rate=4)
    assert not (tmp_path / "never").exists()
    made = make_bag(dataset, tmp_path / "drive", MakeBagOptions(storage="mcap", lidar=True, verbose=False), limit=3)
    assert (made["storage"], made["frames"], made["clouds"]) == ("mcap", 3, 3)
    stats = import_bag(tmp_path / "drive", tmp_path / "out", ImportBagOptions(split="val", verbose=False), every=2)
    assert stats["frames_written"] == 2 and DatasetReader(tmp_path / "out").names("val")


def test_cli_make_bag_and_from_bag(dataset, tmp_path, capsys):
    """`meco data make-bag` / `from-bag` options reach the functions (parser of the data command only)."""
    parser = _data_parser()

    def run(*argv: str) -> int:
        args = parser.parse_args(["data", *argv])
        return args.handler(args)

    bag = tmp_path / "drive.bag"
    assert run("make-bag", "--data", str(dataset), "--out", str(bag), "--storage", "ros1", "--lidar",
               "--lidar-rings", "12", "--depth-encoding", "16UC1", "--seg-topic", "none") == 0
    with BagReader(bag) as r:
        assert "/camera/segmentation" not in r.topics and r.topics["/lidar/points"].count == 5
    assert run("from-bag", "--bag", str(bag), "--out", str(tmp_path / "out"), "--split", "val",
               "--tolerance-ms", "10", "--every", "2") == 0
    out = capsys.readouterr().out
    assert "3 frames written" in out and "matched 3, unmatched 0" in out
    assert run("from-bag", "--bag", str(bag), "--out", str(tmp_path / "o2"), "--image-topic", "/nope") == 1
    assert "available topics" in capsys.readouterr().err
