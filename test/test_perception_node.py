"""The perception node as it runs on the cart: a `perception_node` subprocess over real DDS.

The node runs a small RANDOM-weight model (test/dev mode: checkpoint '', model meco,
vit_tiny, 32 channels, camera-aware with canonical focal 250 px, inference 96x128) with config/golf_cart.yaml plus a test overlay;
this test process publishes camera frames and subscribes to every output like RViz
(reliable). Nothing is mocked. One node serves the tests that only talk to it (start-up
costs seconds); each test gets its own test-side rclpy node (the `ros_side` fixture), matched
with the node before it sends anything. A test that stops a node starts its own; the shared
one is stopped with SIGINT when the module ends, and must exit 0 then.
"""
from __future__ import annotations

import math
import os
import re
import signal
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Float64

from meco_core.classes import GOLF
from meco_ros.image_conversion import cv2_to_compressed_imgmsg, cv2_to_imgmsg, imgmsg_to_cv2
from meco_ros.dds_shm import MIN_AGE_S, SHM_DIR, segments_locked_by
from meco_ros.proc import REPO, ros_env, start_node
from conftest import own_domain_id

try:
    from meco_ros.msg import LabelInfo, Prediction, Stats
except ImportError as e:  # pragma: no cover - a setup problem, reported as such
    raise ImportError("meco_ros messages are not built: run `make setup`") from e

pytestmark = pytest.mark.timeout(180)

H, W = 120, 160  # camera size in the tests (small: 2 shared cores)
LOG_THROTTLE_S = 0.5  # log_throttle in OVERLAY
NS = f"/meco_node_test_{os.getpid()}"
OVERLAY = """\
/**/perception_node:
  ros__parameters:
    checkpoint: ""
    model: meco
    model_config: "{backbone: vit_tiny_patch16_224, channels: 32, canonical_focal: 250.0}"
    device: cpu
    inference_size: [96, 128]
    threads: 1
    warmup_iterations: 1
    topics.image_compressed: image/compressed
    log_throttle: 0.5
    stats_period: 0.5
"""
OUTPUT_TOPICS = {"depth": Image, "segmentation": Image, "segmentation/color": Image, "depth/color": Image,
                 "depth/camera_info": CameraInfo, "prediction": Prediction, "points": PointCloud2,
                 "obstacles/points": PointCloud2}


class Harness:
    """Test-side ROS node: publishers like a camera, subscribers like RViz, message logs."""

    def __init__(self, side) -> None:
        self.side, self.node = side, side.node
        self.spin_until, self.call = side.spin_until, side.call
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(Image, "image", qos_profile_sensor_data)
        self.compressed_pub = self.node.create_publisher(CompressedImage, "image/compressed", qos_profile_sensor_data)
        self.info_pub = self.node.create_publisher(CameraInfo, "camera_info", reliable)
        self.got: dict[str, list[Any]] = {t: [] for t in (*OUTPUT_TOPICS, "stats", "diagnostics", "debug")}
        self.subs = {topic: self.node.create_subscription(kind, topic, self.got[topic].append, reliable)
                     for topic, kind in OUTPUT_TOPICS.items()}
        self.subs["stats"] = self.node.create_subscription(Stats, "stats", self.got["stats"].append, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.got["diagnostics"].append, reliable)
        self.node.create_subscription(Float64, "perception_node/debug/processing_time_ms",
                                      self.got["debug"].append, reliable)
        self.seq = 0

    def wait_matched(self, timeout: float = 30.0) -> None:
        """Discovery done both ways: the node reads our camera topics, we read its depth and stats."""
        endpoints = (self.image_pub, self.compressed_pub, self.info_pub, self.subs["depth"], self.subs["stats"])
        assert self.side.wait_matched(*endpoints, timeout=timeout), \
            f"not matched with the node within {timeout} s"

    def stamp(self) -> tuple[Any, str]:
        self.seq += 1
        return self.node.get_clock().now().to_msg(), f"cam_{self.seq}"

    def send_until(self, make: Callable[[Any, str], Any], pub, topics: tuple[str, ...] = ("depth",),
                   timeout: float = 20.0, period: float = 0.4) -> dict[str, Any]:
        """Publish fresh frames every `period` s until one frame's outputs arrived on all `topics`;
        return them. (Best effort can lose a frame: resending is normal.)"""
        sent: set[tuple[int, int, str]] = set()
        found: dict[str, Any] = {}

        def complete() -> bool:
            for key in sent:
                hit = {t: m for t in topics for m in self.got[t]
                       if (m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id) == key}
                if len(hit) == len(topics):
                    found.update(hit)
                    return True
            return False

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stamp, frame_id = self.stamp()
            pub.publish(make(stamp, frame_id))
            sent.add((stamp.sec, stamp.nanosec, frame_id))
            if self.spin_until(complete, min(period, max(0.0, deadline - time.monotonic()))):
                return found
        raise AssertionError(f"no frame produced outputs on all of {topics} within {timeout} s "
                             f"(received: { {t: len(v) for t, v in self.got.items()} })")

    def latest_stats(self, timeout: float = 5.0) -> Stats:
        n = len(self.got["stats"])
        assert self.spin_until(lambda: len(self.got["stats"]) > n, timeout), "no stats message"
        return self.got["stats"][-1]

    def set_params(self, **values: Any) -> list:
        req = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
        return self.call(SetParameters, f"{NS}/perception_node/set_parameters", req).results

    def get_param(self, name: str) -> Any:
        res = self.call(GetParameters, f"{NS}/perception_node/get_parameters", GetParameters.Request(names=[name]))
        return Parameter.from_parameter_msg(ParameterMsg(name=name, value=res.values[0])).value


def make_image(h: int = H, w: int = W) -> np.ndarray:
    """Deterministic colourful frame (a horizon, a path, a post)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    img[..., 1] = np.where(y > h // 2, 150, 60).astype(np.uint8)
    img[..., 2] = (y * 255 // max(h - 1, 1)).astype(np.uint8)
    cv2.rectangle(img, (w // 2, h // 3), (w // 2 + 6, h - 10), (220, 20, 60), -1)
    return img


def raw_msg(arr: np.ndarray, encoding: str, before: Callable[[], None] | None = None):
    def make(stamp, frame_id):
        if before:
            before()  # e.g. (re)publish camera info: the first one may precede discovery
        msg = cv2_to_imgmsg(arr, encoding)
        msg.header.stamp, msg.header.frame_id = stamp, frame_id
        return msg
    return make


def camera_info(h: int, w: int) -> CameraInfo:
    """Calibration of an h x w image (the node builds depth/camera_info and the clouds only from a
    camera_info of the image's own size)."""
    info = CameraInfo(height=h, width=w, distortion_model="plumb_bob", d=[0.1, -0.2, 0.0, 0.0, 0.0])
    info.k = [400.0, 0.0, w / 2, 0.0, 410.0, h / 2, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [400.0, 0.0, w / 2, 0.0, 0.0, 410.0, h / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.frame_id = "calib"
    return info


@pytest.fixture(scope="module")
def node_proc(tmp_path_factory):
    overlay = tmp_path_factory.mktemp("params") / "test_overlay.yaml"
    overlay.write_text(OVERLAY)
    env = ros_env(OMP_NUM_THREADS="1")
    proc = start_node(["--params-file", str(REPO / "config" / "golf_cart.yaml"), "--params-file", str(overlay),
                       "-r", f"__ns:={NS}"], env)
    ready = proc.wait_for("ready", timeout=120)
    assert ready, f"node did not become ready:\n{proc.output}"
    yield proc
    # it served every test of the module: it must still stop cleanly (tests that stop a node own theirs)
    code = proc.stop(signal.SIGINT, timeout=20)
    assert code == 0 and "Traceback" not in proc.output, f"exit code {code}\n{proc.output[-3000:]}"


@pytest.fixture
def ros(node_proc, ros_side):
    """This test's side of the shared node: a fresh rclpy node, matched with it."""
    h = Harness(ros_side("meco_node_test", namespace=NS))
    h.wait_matched()
    return h


def _diag_values(ros, cond: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> dict[str, str]:
    """Key/values of the node's newest /diagnostics status once `cond` holds for them."""
    def values() -> dict[str, str]:
        for d in reversed(ros.got["diagnostics"]):
            for st in d.status:
                if "perception_node" in st.name:
                    return {kv.key: kv.value for kv in st.values}
        return {}

    ros.spin_until(lambda: cond(values()), timeout)
    return values()


def test_camera_info_intrinsics_scale_the_depth(ros, node_proc):
    """The node passes camera_info's K to the Estimator: the same image with fy doubled gives
    exactly twice the depth (canonical-focal model). Without camera_info, with one for another
    size and with an invalid K, the default camera applies (the last two counted as ignored).
    First in the module: no camera_info has been sent to this node before."""
    from meco_core.camera import default_intrinsics

    image = make_image()

    def depth_with(info: CameraInfo | None, words: str) -> np.ndarray:
        """The depth of a frame inferred with `info` in effect. A frame carries no link to its
        camera_info, but the diagnostics name the camera the newest frame was inferred with:
        frames (each after the camera_info) are sent until they name `words`, then one more."""
        before = (lambda: ros.info_pub.publish(info)) if info is not None else None
        make = raw_msg(image, "rgb8", before)
        deadline = time.monotonic() + 30
        while True:
            ros.send_until(make, ros.image_pub, ("depth",))
            if words in _diag_values(ros, lambda v: words in v.get("camera", ""), 2.0).get("camera", ""):
                break
            assert time.monotonic() < deadline, f"the node never used the camera_info ({words}): {_diag_values(ros, bool)}"
        found = ros.send_until(make, ros.image_pub, ("depth",))
        return imgmsg_to_cv2(found["depth"]).astype(np.float64)

    def info_with(fy: float, h: int = H, w: int = W) -> CameraInfo:
        return CameraInfo(height=h, width=w, k=[200.0, 0.0, w / 2, 0.0, fy, h / 2, 0.0, 0.0, 1.0])

    warned = [time.monotonic()]  # when the node last had reason to log a camera_info warning
    d_default = depth_with(None, "no camera_info")
    v = _diag_values(ros, lambda v: v.get("camera", "").startswith("default"))
    assert "no camera_info" in v["camera"] and v["canonical focal px"] == "250", v
    assert node_proc.output.count("no camera_info received yet") == 1, "said once in the log"
    d1, d2 = depth_with(info_with(150.0), "fy 150.0"), depth_with(info_with(300.0), "fy 300.0")
    valid = np.isfinite(d1)
    assert valid.any() and np.array_equal(np.isfinite(d2), valid) and np.array_equal(np.isfinite(d_default), valid)
    np.testing.assert_allclose(d2[valid], 2.0 * d1[valid], rtol=1e-5)
    fy_default = default_intrinsics(H, W)[1]   # the documented default camera, at the image's size
    np.testing.assert_allclose(d_default[valid], d1[valid] * fy_default / 150.0, rtol=1e-5)
    v = _diag_values(ros, lambda v: "fy 300.0" in v.get("camera", ""))
    assert v["camera"].startswith("camera_info") and v["camera_info ignored"] == "0", v
    assert float(v["depth scale"]) == pytest.approx(300.0 * 96 / H / 250.0)
    # another size (not rescaled), then an invalid K: ignored, counted, the default camera again.
    # The node logs a camera_info warning at most once per log_throttle (0.5 s here), and only when
    # what it uses changes: the second case starts once that window has passed, or its warning
    # would be swallowed (see the report of issue 21's test work).
    for info, words in ((info_with(300.0, 2 * H, 2 * W), f"{2 * W}x{2 * H}"), (info_with(0.0), "K has")):
        assert ros.spin_until(lambda: time.monotonic() - warned[0] > LOG_THROTTLE_S, 2 * LOG_THROTTLE_S)
        np.testing.assert_allclose(depth_with(info, words)[valid], d_default[valid], rtol=1e-5)
        warned[0] = time.monotonic()
        v = _diag_values(ros, lambda v, words=words: words in v.get("camera", ""))
        assert v["camera"].startswith("default") and words in v["camera"], v
        assert node_proc.wait_for(words, 5) and node_proc.wait_for("camera_info ignored", 5), node_proc.output[-2000:]
    assert int(v["camera_info ignored"]) >= 2, v


def test_outputs_carry_input_header_encoding_and_size(ros, node_proc):
    info = camera_info(H, W)
    found = ros.send_until(raw_msg(make_image(), "rgb8", lambda: ros.info_pub.publish(info)), ros.image_pub,
                           tuple(OUTPUT_TOPICS))
    expected = {"depth": "32FC1", "segmentation": "mono8", "segmentation/color": "rgb8", "depth/color": "rgb8"}
    for topic, enc in expected.items():
        m = found[topic]
        assert (m.encoding, m.height, m.width) == (enc, H, W), topic
    depth = imgmsg_to_cv2(found["depth"])
    assert depth.dtype == np.float32 and np.all(np.isnan(depth) | (depth > 0))
    labels = imgmsg_to_cv2(found["segmentation"])
    assert labels.max() < GOLF.num_classes
    ci = found["depth/camera_info"]
    assert (ci.height, ci.width) == (H, W)
    assert np.allclose(ci.k, [400.0, 0, W / 2, 0, 410.0, H / 2, 0, 0, 1])
    assert np.allclose(ci.p, [400.0, 0, W / 2, 0, 0, 410.0, H / 2, 0, 0, 0, 1, 0])
    assert list(ci.d) == list(info.d) and ci.distortion_model == "plumb_bob"
    pred = found["prediction"]
    assert list(pred.class_names) == GOLF.names
    assert list(pred.class_colors) == [c for rgb in GOLF.colors for c in rgb]
    assert (pred.depth.height, pred.depth.width, pred.segmentation.encoding) == (H, W, "mono8")
    assert pred.depth.header.stamp == pred.header.stamp
    # status outputs
    stats = ros.latest_stats()
    assert stats.frames_processed >= 1 and stats.device == "cpu" and "meco" in stats.model
    assert stats.precision == "fp32"
    assert ros.spin_until(lambda: any(s.inference_ms > 0 and s.fps > 0 for s in ros.got["stats"]), 5)
    # debug timing topic: keep frames coming until its subscription has matched too
    deadline = time.monotonic() + 15
    while not ros.got["debug"] and time.monotonic() < deadline:
        ros.image_pub.publish(raw_msg(make_image(), "rgb8")(*ros.stamp()))
        ros.spin_until(lambda: bool(ros.got["debug"]), 0.3)
    assert ros.got["debug"] and ros.got["debug"][-1].data > 0
    assert ros.spin_until(lambda: bool(ros.got["diagnostics"]), 5)
    names = [s.name for d in ros.got["diagnostics"] for s in d.status]
    assert any("perception_node" in n for n in names), names
    assert node_proc.output.count("UNTRAINED MODEL") == 1, "the dev-mode warning, once, in the ROS log"


@pytest.mark.parametrize("encoding", ["bgr8", "rgba8", "bgra8", "mono8", "mono16"])
def test_input_encodings(ros, encoding):
    rgb = make_image()
    arr = {"bgr8": lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), "rgba8": lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA),
           "bgra8": lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA), "mono8": lambda: rgb[..., 1].copy(),
           "mono16": lambda: rgb[..., 1].astype(np.uint16) * 257}[encoding]()
    found = ros.send_until(raw_msg(arr, encoding), ros.image_pub, ("depth", "segmentation/color"))
    assert (found["depth"].height, found["depth"].width) == (H, W)


def _malformed() -> dict[str, Image]:
    good = cv2_to_imgmsg(make_image(), "rgb8")

    def variant(**fields: Any) -> Image:
        msg = Image(height=good.height, width=good.width, encoding=good.encoding, step=good.step, data=good.data)
        for k, v in fields.items():
            setattr(msg, k, v)
        return msg

    nan = np.full((H, W), np.nan, np.float32)
    return {
        "unknown encoding": variant(encoding="rgb9000"),
        "zero size": variant(height=0, width=0, step=0, data=[]),
        "data shorter than step*height": variant(data=good.data[: len(good.data) // 2]),
        "wrong step": variant(step=W * 2),
        "tiny image": cv2_to_imgmsg(make_image(4, 4), "rgb8"),
        "NaN-filled 32FC1": cv2_to_imgmsg(nan, "32FC1"),
        "NaN-filled 32FC3": cv2_to_imgmsg(np.dstack([nan] * 3), "32FC3"),
    }


def test_malformed_inputs_are_counted_and_do_not_stop_the_node(ros, node_proc):
    before = ros.latest_stats().frames_invalid
    bad_jpeg = CompressedImage(format="jpeg", data=b"\xff\xd8 definitely not a jpeg")
    sends = [(msg, ros.image_pub) for msg in _malformed().values()] + [(bad_jpeg, ros.compressed_pub)]
    for msg, pub in sends:  # one at a time: the node keeps one waiting frame (KEEP_LAST 1)
        counted = ros.got["stats"][-1].frames_invalid
        for _ in range(3):  # best effort: sent again if it was lost
            msg.header.stamp, msg.header.frame_id = ros.stamp()
            pub.publish(msg)
            if ros.spin_until(lambda counted=counted: ros.got["stats"][-1].frames_invalid > counted, 3.0):
                break
    expected = before + len(sends)
    assert ros.spin_until(lambda: ros.got["stats"] and ros.got["stats"][-1].frames_invalid >= expected, 10), \
        f"frames_invalid {ros.got['stats'][-1].frames_invalid}, expected {expected}\n{node_proc.output[-3000:]}"
    assert node_proc.alive()
    # good frames keep flowing
    found = ros.send_until(raw_msg(make_image(), "rgb8"), ros.image_pub, ("depth", "segmentation"))
    assert found["depth"].width == W
    log = node_proc.output
    for case in ("encoding", "empty", "data", "step", "tiny", "nonfinite", "compressed"):
        assert f"invalid input image ({case})" in log, case
    diag = {kv.key: kv.value for s in ros.got["diagnostics"][-1].status for kv in s.values}
    assert int(diag["frames invalid"]) >= expected


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_input(ros, fmt):
    bgr = cv2.cvtColor(make_image(), cv2.COLOR_RGB2BGR)

    def make(stamp, frame_id):
        msg = cv2_to_compressed_imgmsg(bgr, "bgr8", fmt)
        msg.header.stamp, msg.header.frame_id = stamp, frame_id
        return msg

    found = ros.send_until(make, ros.compressed_pub, ("depth", "segmentation"))
    assert (found["segmentation"].height, found["segmentation"].width) == (H, W)


def test_parameter_validation_over_the_service(ros):
    cases = {"precision": "int4", "inference_size": [-1, 128], "upsample": "cubic", "threads": -1,
             "segmentation_blend": 1.5, "palette": [1, 2], "device": "cuda"}
    for name, value in cases.items():
        (res,) = ros.set_params(**{name: value})
        assert not res.successful, name
        assert name in res.reason, (name, res.reason)
    (res,) = ros.set_params(precision="int4")
    assert "fp32" in res.reason  # the reason says what is allowed
    (res,) = ros.set_params(device="cuda")
    assert "read-only" in res.reason
    assert ros.get_param("precision") == "fp32"
    (res,) = ros.set_params(segmentation_blend=0.25)
    assert res.successful
    assert math.isclose(ros.get_param("segmentation_blend"), 0.25)


def test_runtime_change_output_resolution_and_camera_info(ros):
    (res,) = ros.set_params(output_resolution="inference")
    assert res.successful
    try:
        info = camera_info(H, W)
        found = ros.send_until(raw_msg(make_image(), "rgb8", lambda: ros.info_pub.publish(info)), ros.image_pub,
                               ("depth", "depth/camera_info"))
        assert (found["depth"].height, found["depth"].width) == (96, 128)
        ci = found["depth/camera_info"]
        assert (ci.height, ci.width) == (96, 128)
        sx, sy = 128 / W, 96 / H
        assert np.allclose([ci.k[0], ci.k[2], ci.k[4], ci.k[5]], [400 * sx, W / 2 * sx, 410 * sy, H / 2 * sy])
    finally:
        (res,) = ros.set_params(output_resolution="input")
        assert res.successful


def _cloud_points(msg: PointCloud2) -> np.ndarray:
    from meco_ros.node.outputs import CLOUD_DTYPE

    assert [(f.name, f.offset) for f in msg.fields] == [("x", 0), ("y", 4), ("z", 8), ("rgb", 12), ("label", 16)]
    assert msg.point_step == CLOUD_DTYPE.itemsize and msg.height == 1 and msg.is_dense
    return np.frombuffer(bytes(msg.data), CLOUD_DTYPE)


def test_semantic_clouds_match_the_published_images_of_the_same_stamp(ros):
    """Every depth pixel on the stride grid lands at ((u-cx) z/fx, (v-cy) z/fy, z), with the
    label and colour the segmentation images show at (u, v); obstacles/points holds exactly
    the points of the configured classes."""
    results = ros.set_params(**{"cloud.obstacle_classes": ["fairway", "obstacle", "no_such_class"],
                                "cloud.stride": 3})
    assert all(r.successful for r in results)
    info = camera_info(H, W)
    topics = ("depth", "segmentation", "segmentation/color", "depth/camera_info", "points", "obstacles/points")
    found = ros.send_until(raw_msg(make_image(), "rgb8", lambda: ros.info_pub.publish(info)), ros.image_pub, topics)
    depth, labels = imgmsg_to_cv2(found["depth"]), imgmsg_to_cv2(found["segmentation"])
    color = imgmsg_to_cv2(found["segmentation/color"])
    fx, _, cx, _, fy, cy = found["depth/camera_info"].k[:6]
    assert found["points"].header.frame_id == found["depth"].header.frame_id   # the camera's frame, same stamp
    rows, cols = np.mgrid[0:H:3, 0:W:3]
    z = depth[rows, cols].astype(np.float64)
    valid = np.isfinite(z) & (z > 0)
    u, v, z = cols[valid], rows[valid], z[valid]
    expected = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1)
    points = _cloud_points(found["points"])
    assert len(points) == valid.sum() > 0
    got = np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert (points["label"] == labels[v, u]).all()
    rgb = points["rgb"]
    np.testing.assert_array_equal(np.stack([rgb >> 16 & 255, rgb >> 8 & 255, rgb & 255], axis=1), color[v, u])
    obstacles = _cloud_points(found["obstacles/points"])
    wanted = np.isin(points["label"], [GOLF.names.index("fairway"), GOLF.names.index("obstacle")])
    assert len(obstacles) == wanted.sum()
    np.testing.assert_array_equal(obstacles["z"], points["z"][wanted])


def test_late_subscriber_receives_the_latched_label_map(ros):
    from meco_ros.node.publishing import latched_qos

    got: list = []
    ros.node.create_subscription(LabelInfo, "label_map", got.append, latched_qos())   # joins long after start
    assert ros.spin_until(lambda: bool(got), 10), "no label map for a late subscriber"
    msg = got[-1]
    assert [(c.class_id, c.class_name) for c in msg.class_map] == list(enumerate(GOLF.names))
    palette = list(ros.get_param("palette"))
    assert list(msg.class_colors) == palette[: 3 * GOLF.num_classes] and msg.ignore_id == 255
    new = [255 - c for c in palette]   # a palette change is published again
    (res,) = ros.set_params(palette=new)
    assert res.successful
    assert ros.spin_until(lambda: list(got[-1].class_colors) == new[: 3 * GOLF.num_classes], 10)
    (res,) = ros.set_params(palette=palette)
    assert res.successful


def test_sigint_stops_cleanly_while_frames_flow(tmp_path, ros_side):
    """SIGINT while frames are being processed: exit code 0 within 20 s, no traceback. The node
    is this test's own: no other test depends on it."""
    proc, env, ns = _own_dev_node(tmp_path, "sigint")
    try:
        assert proc.wait_for("ready", 120), proc.output[-3000:]
        ros = ros_side("meco_sigint_test", namespace=ns, domain_id=int(env["ROS_DOMAIN_ID"]))
        depth: list[Image] = []
        sub = ros.node.create_subscription(Image, "depth", depth.append,
                                           QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
        pub = ros.node.create_publisher(Image, "image", qos_profile_sensor_data)
        assert ros.wait_matched(sub, pub, timeout=30), "not matched with the node"
        frame = cv2_to_imgmsg(make_image(), "rgb8")
        for _ in range(100):  # until outputs flow
            pub.publish(frame)
            if ros.spin_until(lambda: len(depth) >= 2, 0.2):
                break
        assert len(depth) >= 2, proc.output[-3000:]
        pub.publish(frame)  # one more in flight as the signal comes
        own_segments = segments_locked_by(proc.popen.pid)
        t = time.monotonic()
        code = proc.stop(signal.SIGINT, timeout=20)
        took = time.monotonic() - t
    finally:
        if proc.alive():
            proc.stop(signal.SIGKILL, 5)
    assert code == 0, f"exit code {code} after SIGINT\n{proc.output[-3000:]}"
    assert took < 20
    assert "Traceback" not in proc.output, proc.output[-3000:]
    # a clean stop takes its shared-memory segments with it (rclpy's LifecycleNode kept them alive)
    assert own_segments, "the node holds no Fast DDS segment lock: is /proc/locks readable?"
    left = {name for name in own_segments if (SHM_DIR / name).exists()}
    assert not left, f"the stopped node left its Fast DDS segments in /dev/shm: {sorted(left)}"


def _own_dev_node(tmp_path, suffix: str, *extra: str):
    """(process, env, namespace) of a test/dev node of its own: its namespace, its DDS domain."""
    ns = f"{NS}_{suffix}"
    env = ros_env(domain_id=own_domain_id(), OMP_NUM_THREADS="1")
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(OVERLAY)
    proc = start_node(["--params-file", str(REPO / "config" / "golf_cart.yaml"), "--params-file", str(overlay),
                       "-r", f"__ns:={ns}", *extra], env)
    return proc, env, ns


@pytest.mark.shared_shm
def test_node_removes_dead_processes_dds_segments_and_says_so(tmp_path, ros_side):
    """A segment planted before the node starts (a killed process's, by its unlocked lock file)
    is gone, logged with its size, and counted in /diagnostics; the node's own remain. Marked
    shared_shm: any other process's janitor could remove the planted file first, so it runs
    alone (Makefile)."""
    stale = SHM_DIR / f"fastdds_{os.getpid():016x}"  # as a killed DDS process leaves it
    stale.write_bytes(b"\1" * 65536)
    Path(f"{stale}_el").write_bytes(b"")
    time.sleep(MIN_AGE_S + 0.1)  # old enough for the node to judge
    proc, env, ns = _own_dev_node(tmp_path, "janitor")
    try:
        assert proc.wait_for("ready", 120), proc.output[-3000:]
        assert not stale.exists() and not Path(f"{stale}_el").exists()
        assert re.search(r"removed [1-9]\d* stale Fast DDS shared-memory segment\(s\) \(\d+ MB\)", proc.output), \
            proc.output[-2000:]
        ros = ros_side("meco_node_test_janitor", namespace=ns, domain_id=int(env["ROS_DOMAIN_ID"]))
        diags: list[DiagnosticArray] = []
        ros.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)

        def removed() -> int:
            return max((int(kv.value) for d in diags for s in d.status if "perception_node" in s.name
                        for kv in s.values if kv.key == "stale DDS segments removed"), default=0)

        assert ros.spin_until(lambda: removed() >= 1, 20), [d.status for d in diags[-1:]]
        own = segments_locked_by(proc.popen.pid)
        assert own and all((SHM_DIR / name).exists() for name in own), own  # in use: kept
        assert proc.stop(signal.SIGINT, timeout=20) == 0, proc.output[-3000:]
    finally:
        if proc.alive():
            proc.stop(signal.SIGKILL, 5)
        for path in (stale, Path(f"{stale}_el")):
            path.unlink(missing_ok=True)


def test_sigterm_no_subscribers_and_missing_checkpoint(tmp_path, ros_side):
    """A second node: without output subscribers it skips inference; SIGTERM ends it with 0.
    A node whose checkpoint does not exist exits 1 with a message that says what to do."""
    proc, env, ns = _own_dev_node(tmp_path, "b")
    missing = start_node(["-p", "checkpoint:=no/such.pt", "-r", f"__ns:={ns}"], env)
    try:
        assert missing.popen.wait(60) == 1
        assert "checkpoint not found" in missing.output and "model:=meco" in missing.output
        assert proc.wait_for("ready", 120), proc.output
        ros = ros_side("meco_node_test_b", namespace=ns, domain_id=int(env["ROS_DOMAIN_ID"]))
        node = ros.node
        diags: list[DiagnosticArray] = []
        node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
        assert ros.wait_matched(pub, timeout=30), "the node never subscribed to our images"
        frame = cv2_to_imgmsg(make_image(), "rgb8")

        def values() -> dict[str, str]:
            return {kv.key: kv.value for d in diags[-1:] for s in d.status for kv in s.values}

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and int(values().get("frames skipped", 0)) < 3:
            frame.header.stamp = node.get_clock().now().to_msg()
            pub.publish(frame)
            ros.spin_until(lambda: int(values().get("frames skipped", 0)) >= 3, 0.2)
        v = values()
        assert int(v.get("frames skipped", 0)) >= 3, v
        assert v["frames processed"] == "0", v
        assert proc.stop(signal.SIGTERM, timeout=20) == 0, proc.output[-3000:]
    finally:
        for p in (missing, proc):
            if p.alive():
                p.stop(signal.SIGKILL, 5)


def test_managed_node_follows_lifecycle_transitions(tmp_path, ros_side):
    """autostart false: the node waits unconfigured (no topics); configure loads the model and
    creates its publishers as rclpy lifecycle publishers (advertised, silent: no image
    subscription yet); activate brings the subscriptions and outputs; deactivate removes the
    subscriptions and silences the publishers; cleanup releases the model and the publishers,
    and it can be configured and activated again. Driven over the lifecycle
    services from this process, as nav2_lifecycle_manager or `ros2 lifecycle set` would."""
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    proc, env, ns = _own_dev_node(tmp_path, "managed", "-p", "autostart:=false")
    ros = ros_side("lifecycle_test", namespace=ns, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = ros.node
    depth: list[Image] = []
    node.create_subscription(Image, "depth", depth.append, QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    pub = node.create_publisher(Image, "image", qos_profile_sensor_data)

    def call(srv_type, name: str, request):
        return ros.call(srv_type, f"{ns}/perception_node/{name}", request, timeout=120)  # configure loads the model

    def state() -> int:
        return call(GetState, "get_state", GetState.Request()).current_state.id

    def transition(tid: int) -> bool:
        return call(ChangeState, "change_state", ChangeState.Request(transition=Transition(id=tid))).success

    def publishers() -> int:
        return node.count_publishers(f"{ns}/depth")

    def subscribers() -> int:
        return node.count_subscribers(f"{ns}/image")

    def frames_arrive() -> bool:
        """Frames (resent: best effort) until one comes back; False after 50."""
        n = len(depth)
        assert ros.wait_matched(pub, timeout=30), "the active node never subscribed to our images"
        for _ in range(50):
            msg = cv2_to_imgmsg(make_image(), "rgb8")
            msg.header.stamp = node.get_clock().now().to_msg()
            pub.publish(msg)
            if ros.spin_until(lambda: len(depth) > n, 0.2):
                return True
        return False

    try:
        assert proc.wait_for("waiting for lifecycle transitions", 60), proc.output
        assert state() == State.PRIMARY_STATE_UNCONFIGURED and publishers() == 0
        assert transition(Transition.TRANSITION_CONFIGURE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        assert ros.spin_until(lambda: publishers() == 1, 10), "configured: depth publisher not advertised"
        assert subscribers() == 0  # inactive: the node takes no images
        assert transition(Transition.TRANSITION_ACTIVATE)
        assert state() == State.PRIMARY_STATE_ACTIVE
        assert frames_arrive(), proc.output[-3000:]
        assert transition(Transition.TRANSITION_DEACTIVATE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        assert ros.spin_until(lambda: subscribers() == 0, 10), "still subscribed to images after deactivate"
        n = len(depth)
        for _ in range(5):  # the frames go nowhere: no outputs while inactive
            pub.publish(cv2_to_imgmsg(make_image(), "rgb8"))
            ros.spin_until(lambda: len(depth) > n, 0.2)
        assert len(depth) == n, "outputs while inactive"
        assert transition(Transition.TRANSITION_CLEANUP)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert proc.wait_for("model released", 10), proc.output[-3000:]  # the log line may trail the reply
        assert ros.spin_until(lambda: publishers() == 0, 10), "publishers left after cleanup"
        assert transition(Transition.TRANSITION_CONFIGURE) and transition(Transition.TRANSITION_ACTIVATE)
        assert frames_arrive(), proc.output[-3000:]
        assert proc.alive()
    finally:
        code = proc.stop(signal.SIGINT, timeout=30)
    assert code == 0, proc.output[-3000:]


def test_ament_prefix_executable_starts_from_another_ros_environment():
    """`ros2 launch` from another ROS-wheel environment hands its bootstrap marker and its own
    LD_LIBRARY_PATH down; the installed executable must still find this environment's ROS
    and message libraries (it used to die: 'Could not import rosidl_typesupport_c')."""
    import sys
    from pathlib import Path

    from meco_ros.proc import Process

    exe = Path(sys.prefix) / "lib" / "meco_ros" / "perception_node"
    if not exe.is_file():
        pytest.skip(f"no ament prefix at {sys.prefix} (make setup installs it)")
    env = ros_env(domain_id=own_domain_id(), OMP_NUM_THREADS="1", _ROS_WHEELS_BOOTSTRAP_COMPLETE="1",
                  LD_LIBRARY_PATH="/opt/another_ros_env/lib")
    proc = Process([str(exe), "--ros-args", "-p", "checkpoint:=''", "-p", "model:=meco", "-p",
                    "model_config:=backbone=vit_tiny_patch16_224,channels=32", "-p", "warmup_iterations:=0",
                    "-p", "device:=cpu", "-r", f"__ns:={NS}_prefix"], env=env, cwd="/")
    try:
        assert proc.wait_for("ready", 60), proc.output[-3000:]
    finally:
        code = proc.stop(signal.SIGINT, timeout=30)
    assert code == 0, proc.output[-3000:]
