"""Real DDS between two processes with config/fastdds_profile.xml (set by conftest.py).

Without the profile, best-effort 640x480 rgb8 images never arrive under Fast DDS defaults
(environment.md); with it most should. The publisher is a separate Python process, the
subscriber is this test process; nothing is mocked.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image

from meco_ros.image_conversion import imgmsg_to_cv2

try:
    from meco_ros.msg import Prediction, Stats
except ImportError as e:  # pragma: no cover - a setup problem, reported as such
    raise ImportError("meco_ros messages are not built: run `make setup` "
                      "(or `bash tools/build_msgs.sh .venv`)") from e

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[1]
N_FRAMES, RATE_HZ = 60, 30.0

PUBLISHER = r'''
"""Test publisher: waits for a subscriber, then publishes and exits."""
import sys, time
import numpy as np
import rclpy
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image
from meco_ros.image_conversion import cv2_to_imgmsg

mode, topic = sys.argv[1], sys.argv[2]
rclpy.init()
node = rclpy.create_node("meco_test_publisher")
if mode == "image":
    pub = node.create_publisher(Image, topic, qos_profile_sensor_data)
else:
    from meco_ros.msg import Prediction, Stats
    pub = node.create_publisher(Stats if mode == "stats" else Prediction, topic, QoSProfile(depth=10))
deadline = time.monotonic() + 20
while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
    rclpy.spin_once(node, timeout_sec=0.05)
if pub.get_subscription_count() == 0:
    sys.exit("no subscriber matched within 20 s")
time.sleep(0.3)  # let the reader side finish matching too
if mode == "image":
    n, rate = int(sys.argv[3]), float(sys.argv[4])
    img = (np.arange(480 * 640 * 3, dtype=np.uint32) % 251).astype(np.uint8).reshape(480, 640, 3)
    t0 = time.monotonic()
    for i in range(n):
        msg = cv2_to_imgmsg(img, "rgb8")
        msg.header.frame_id = str(i)
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        time.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
elif mode == "stats":
    for i in range(5):
        pub.publish(Stats(fps=29.5, latency_ms=41.25, frames_received=100 + i, frames_processed=42,
                          frames_dropped=3, device="cpu", model="meco_vit_small", precision="fp32"))
        time.sleep(0.1)
else:
    depth = np.linspace(0.5, 80.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    seg = (np.arange(48 * 64) % 11).astype(np.uint8).reshape(48, 64)
    for i in range(5):
        pub.publish(Prediction(depth=cv2_to_imgmsg(depth, "32FC1"),
                               segmentation=cv2_to_imgmsg(seg, "mono8"),
                               class_names=["road", "sky"], class_colors=[128, 64, 128, 70, 130, 180],
                               max_depth=80.0))
        time.sleep(0.1)
time.sleep(1.0)  # keep the writer alive while the last samples drain
node.destroy_node()
rclpy.shutdown()
'''


@pytest.fixture
def ros_node():
    """An rclpy node of its own context in this process."""
    ctx = Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("meco_test_subscriber", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    yield node, executor
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=ctx)


def start_publisher(tmp_path: Path, *args: str) -> subprocess.Popen:
    script = tmp_path / "publisher.py"
    script.write_text(PUBLISHER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(script), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def spin_until_done(executor, proc: subprocess.Popen, timeout: float) -> str:
    """Spin until the publisher exits (plus a short drain), return its output."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.02)
    if proc.poll() is None:
        proc.kill()
    out = proc.communicate()[0]
    assert proc.returncode == 0, f"publisher failed ({proc.returncode}):\n{out}"
    return out


def test_profile_is_in_effect():
    profile = Path(os.environ["FASTDDS_DEFAULT_PROFILES_FILE"])
    assert profile.is_file() and profile.resolve() == (REPO / "config" / "fastdds_profile.xml").resolve()
    text = profile.read_text()
    assert "<segment_size>134217728</segment_size>" in text and "127.0.0.1" in text
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_best_effort_640x480_rgb8_arrives(ros_node, tmp_path):
    node, executor = ros_node
    got: dict[int, float] = {}
    expected = (np.arange(480 * 640 * 3, dtype=np.uint32) % 251).astype(np.uint8).reshape(480, 640, 3)
    bad: list[str] = []

    def on_image(msg: Image) -> None:
        img = imgmsg_to_cv2(msg)
        if img.shape != (480, 640, 3) or not np.array_equal(img, expected):
            bad.append(msg.header.frame_id)
        sent = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        got[int(msg.header.frame_id)] = time.time() - sent

    topic = f"/meco_test/image_{os.getpid()}"
    node.create_subscription(Image, topic, on_image, qos_profile_sensor_data)
    proc = start_publisher(tmp_path, "image", topic, str(N_FRAMES), str(RATE_HZ))
    spin_until_done(executor, proc, timeout=60)
    print(f"received {len(got)}/{N_FRAMES} frames, median latency "
          f"{1e3 * float(np.median(list(got.values()))) if got else float('nan'):.1f} ms")
    assert not bad, f"corrupted frames: {bad[:5]}"
    assert len(got) >= N_FRAMES // 2, f"only {len(got)}/{N_FRAMES} best-effort frames arrived"


def test_stats_message_between_processes(ros_node, tmp_path):
    node, executor = ros_node
    got: list[Stats] = []
    topic = f"/meco_test/stats_{os.getpid()}"
    node.create_subscription(Stats, topic, got.append, QoSProfile(depth=10))
    spin_until_done(executor, start_publisher(tmp_path, "stats", topic), timeout=60)
    assert got, "no Stats message received"
    s = got[0]
    assert (s.fps, s.latency_ms, s.frames_processed, s.frames_dropped) == (29.5, 41.25, 42, 3)
    assert (s.device, s.model, s.precision) == ("cpu", "meco_vit_small", "fp32")
    assert [m.frames_received for m in got] == list(range(100, 100 + len(got)))


def test_prediction_message_between_processes(ros_node, tmp_path):
    node, executor = ros_node
    got: list[Prediction] = []
    topic = f"/meco_test/prediction_{os.getpid()}"
    node.create_subscription(Prediction, topic, got.append, QoSProfile(depth=10))
    spin_until_done(executor, start_publisher(tmp_path, "prediction", topic), timeout=60)
    assert got, "no Prediction message received"
    p = got[-1]
    depth, seg = imgmsg_to_cv2(p.depth), imgmsg_to_cv2(p.segmentation)
    assert p.depth.encoding == "32FC1" and p.segmentation.encoding == "mono8"
    assert np.array_equal(depth, np.linspace(0.5, 80.0, 48 * 64, dtype=np.float32).reshape(48, 64))
    assert np.array_equal(seg, (np.arange(48 * 64) % 11).astype(np.uint8).reshape(48, 64))
    assert list(p.class_names) == ["road", "sky"] and list(p.class_colors) == [128, 64, 128, 70, 130, 180]
    assert p.max_depth == 80.0
