"""ROS side of replay evaluation: publish bag frames to the perception node, collect what it says.

One rclpy node in its own context, spun on a background thread (like node-bench's viewer)
so that receipt times are taken when messages arrive, not when the replay loop next
looks. Publishes, relative to the perception node's namespace, `image` (or
`image/compressed`) with the camera's sensor-data QoS, `camera_info`, and `/clock` when
asked (what `ros2 bag play --clock` does for `use_sim_time` nodes). Subscribes to
`depth` and `segmentation` (reliable, like RViz), `stats`, and `prediction` until the
first one has told the class names and depth range. It also subscribes to
`segmentation/color` and `depth/color` without using them: the node computes only what
someone subscribes to, and with them it does the work it does on the cart with RViz
watching, which is also what `meco node-bench`'s viewer asks for, so the two FPS compare.

Messages keep the bag's header (stamp and frame_id): outputs are matched back to the
frames by stamp. Every wait has a timeout.
"""
from __future__ import annotations

import array
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from meco_core.stamps import stamp_to_ns, to_stamp

from meco_ros.image_conversion import imgmsg_to_cv2
from meco_ros.node.params import SPECS
from meco_ros.side_node import SideNode

OUTPUTS = ("depth", "segmentation")


@dataclass
class Output:
    """What came back for one stamp: arrays and their receipt times (time.monotonic)."""

    depth: np.ndarray | None = None
    labels: np.ndarray | None = None
    t_depth: float = 0.0
    t_labels: float = 0.0

    def complete(self, wanted: tuple[str, ...] = OUTPUTS) -> bool:
        return all((self.depth if w == "depth" else self.labels) is not None for w in wanted)

    @property
    def received(self) -> float:
        return max(self.t_depth, self.t_labels)


@dataclass
class Meta:
    """Class names and depth range of the model the node runs (from its Prediction message)."""

    class_names: list[str]
    class_colors: list[tuple[int, int, int]]
    max_depth: float


@dataclass
class Collected:
    outputs: dict[int, Output] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)  # stamps in order of completion
    stats: list[Any] = field(default_factory=list)
    meta: Meta | None = None


def _ns_topic(ns: str, name: str) -> str:
    return name if name.startswith("/") else f"{ns.rstrip('/')}/{name}"


def _header(h: Any) -> Header:
    sec, nsec = int(h.stamp.sec), int(h.stamp.nanosec)
    return Header(stamp=Time(sec=sec, nanosec=nsec), frame_id=str(h.frame_id))


def _bytes(data: Any) -> array.array:
    """uint8 ndarray / bytes -> array('B'): the fast path of rclpy's generated setters."""
    buf = array.array("B")
    buf.frombytes(np.ascontiguousarray(data, np.uint8) if isinstance(data, np.ndarray) else bytes(data))
    return buf


def to_ros_image(msg: Any, stamp_ns: int | None = None) -> Image | CompressedImage:
    """rosbags Image/CompressedImage (ROS 1 or 2) -> rclpy message, pixels and header unchanged."""
    header = _header(msg.header)
    if stamp_ns is not None:
        header.stamp = to_stamp(stamp_ns, Time)
    if hasattr(msg, "format"):
        return CompressedImage(header=header, format=str(msg.format), data=_bytes(msg.data))
    out = Image(header=header, height=int(msg.height), width=int(msg.width), encoding=str(msg.encoding),
                is_bigendian=int(msg.is_bigendian), step=int(msg.step))
    out.data = _bytes(msg.data)
    return out


def to_ros_camera_info(msg: Any, stamp_ns: int | None = None) -> CameraInfo:
    """rosbags CameraInfo (ROS 2 k/d/r/p or ROS 1 K/D/R/P) -> rclpy CameraInfo."""
    g = lambda low, up: getattr(msg, low, None) if hasattr(msg, low) else getattr(msg, up)  # noqa: E731
    out = CameraInfo(header=_header(msg.header), height=int(msg.height), width=int(msg.width),
                     distortion_model=str(msg.distortion_model))
    if stamp_ns is not None:
        out.header.stamp = to_stamp(stamp_ns, Time)
    out.d = [float(v) for v in g("d", "D")]
    out.k = [float(v) for v in g("k", "K")]
    out.r = [float(v) for v in g("r", "R")]
    out.p = [float(v) for v in g("p", "P")]
    out.binning_x, out.binning_y = int(msg.binning_x), int(msg.binning_y)
    return out


class ReplayLink:
    """Camera publishers and output collectors for one perception node namespace."""

    def __init__(self, namespace: str, compressed: bool = False, image_topic: str | None = None,
                 publish_clock: bool = False) -> None:
        self.ns = namespace if namespace.startswith("/") else "/" + namespace
        self.compressed = compressed
        self.publish_clock = publish_clock
        default_image = SPECS["topics.image"].default
        self.image_topic = _ns_topic(self.ns, image_topic or (default_image + "/compressed" if compressed
                                                              else default_image))
        self.data = Collected()
        self.viewed = 0  # colour images received (not used; see module doc)
        self._cond = threading.Condition()
        self.side: SideNode | None = None
        self.last_stats_at = float("nan")  # monotonic receipt time of the node's newest stats

    # ---- lifecycle ----
    def start(self) -> "ReplayLink":
        self.side = SideNode(f"meco_replay_{time.monotonic_ns() % 100000}").start()
        n = self.node = self.side.node
        kind = CompressedImage if self.compressed else Image
        self.image_pub = n.create_publisher(kind, self.image_topic, qos_profile_sensor_data)
        self.info_pub = n.create_publisher(CameraInfo, self.topic("camera_info"), qos_profile_sensor_data)
        self.clock_pub = n.create_publisher(Clock, "/clock", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)) \
            if self.publish_clock else None
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        n.create_subscription(Image, self.topic("depth"), self._on_output("depth"), reliable)
        n.create_subscription(Image, self.topic("segmentation"), self._on_output("segmentation"), reliable)
        from meco_ros.msg import Prediction, Stats  # generated messages (make setup / colcon)

        for key in ("segmentation_color", "depth_color"):  # like RViz / node-bench (see module doc)
            n.create_subscription(Image, self.topic(key), self._on_view, QoSProfile(
                depth=1, reliability=ReliabilityPolicy.RELIABLE))
        n.create_subscription(Stats, self.topic("stats"), self._on_stats, reliable)
        self._prediction_sub = n.create_subscription(Prediction, self.topic("prediction"), self._on_prediction,
                                                     reliable)
        return self

    def topic(self, key: str) -> str:
        """Absolute name of one of the node's topics (its default relative name in our namespace)."""
        return _ns_topic(self.ns, SPECS[f"topics.{key}"].default)

    def stop(self) -> None:
        if self.side is not None:
            self.side.stop()

    # ---- callbacks (executor thread) ----
    def _on_output(self, which: str):
        def callback(msg: Image) -> None:
            now = time.monotonic()
            arr = np.array(imgmsg_to_cv2(msg), copy=True)
            key = stamp_to_ns(msg.header.stamp)
            with self._cond:
                out = self.data.outputs.setdefault(key, Output())
                was = out.complete()
                if which == "depth":
                    out.depth, out.t_depth = arr.astype(np.float32, copy=False), now
                else:
                    out.labels, out.t_labels = arr, now
                if out.complete() and not was:
                    self.data.order.append(key)
                self._cond.notify_all()
        return callback

    def _on_view(self, msg: Image) -> None:
        self.viewed += 1

    def _on_stats(self, msg: Any) -> None:
        with self._cond:
            self.data.stats.append(msg)
            self.last_stats_at = time.monotonic()
            self._cond.notify_all()

    def _on_prediction(self, msg: Any) -> None:
        if self.data.meta is not None:
            return
        colors = list(msg.class_colors)
        meta = Meta(list(msg.class_names), [tuple(int(c) for c in colors[i:i + 3]) for i in range(0, len(colors), 3)],
                    float(msg.max_depth))
        with self._cond:
            self.data.meta = meta
            self._cond.notify_all()

    # ---- main thread ----
    def drop_prediction(self) -> None:
        """Stop asking for Prediction messages (the node builds them only for subscribers)."""
        if self._prediction_sub is not None:
            self.node.destroy_subscription(self._prediction_sub)
            self._prediction_sub = None

    def matched(self) -> bool:
        """The node subscribes to our images and publishes depth and segmentation."""
        n = self.node
        return (self.image_pub.get_subscription_count() > 0
                and all(n.count_publishers(self.topic(k)) > 0 for k in OUTPUTS))

    @property
    def receiving(self) -> bool:
        """False once this process's receive thread has stopped (an error is in side.error)."""
        return self.side is not None and self.side.running

    def wait(self, predicate, timeout: float) -> bool:
        """Block until predicate() (checked under the lock) or timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def wait_matched(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.matched():
                return True
            time.sleep(0.05)
        return self.matched()

    def publish(self, image: Any, info: Any | None, stamp_ns: int | None = None) -> float:
        """Publish clock (if asked), camera_info, then the image; returns the send time (monotonic)."""
        msg = to_ros_image(image, stamp_ns)
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=msg.header.stamp))
        if info is not None:
            self.info_pub.publish(to_ros_camera_info(info, stamp_ns))
        t = time.monotonic()
        self.image_pub.publish(msg)
        return t

    def output(self, stamp: int) -> Output | None:
        with self._cond:
            return self.data.outputs.get(stamp)

    def pop(self, stamp: int) -> Output | None:
        with self._cond:
            return self.data.outputs.pop(stamp, None)

    def completed_since(self, n: int) -> list[int]:
        """Stamps whose outputs completed after the first n completions."""
        with self._cond:
            return self.data.order[n:]

    def latest_stats(self) -> Any | None:
        with self._cond:
            return self.data.stats[-1] if self.data.stats else None
