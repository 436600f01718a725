"""Real DDS between processes: large best-effort images with config/fastdds_profile.xml, and
the project's own messages (Stats, Prediction).

The image checks run a publisher and a subscriber as two processes with the Fast DDS profile
given explicitly (not inherited from conftest.py): a 640x480 and a 1280x720 rgb8 stream sent
best effort at 30 Hz arrive, pixel-exact. What the profile changes is seen at run time too:
each process reports the shared-memory segment Fast DDS allocated for it (128 MB with the
profile; about 0.5 MB with Fast DDS defaults, smaller than one 640x480 rgb8 frame).

The control runs the same pair with Fast DDS defaults (FASTDDS_DEFAULT_PROFILES_FILE unset, run
from an empty folder so no DEFAULT_FASTDDS_PROFILES.xml is picked up): the small segment is
asserted, and small frames are asserted to arrive (the setup works). How many large frames get
through is printed, not asserted: environment.md says none do, but with this machine's wheels
(Fast DDS 3.2, rmw_fastrtps 9.3) a varying part of them arrives (measured 8-44 of 60), so
"none arrive" does not hold here and cannot be a test.

Every handshake is an event: each side says "matched" once its endpoints matched, the
publisher sends only after both sides did, and stays up until told to quit.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import QoSProfile

from meco_ros.image_conversion import imgmsg_to_cv2
from meco_ros.proc import Process
from conftest import own_domain_id

try:
    from meco_ros.msg import Prediction, Stats
except ImportError as e:  # pragma: no cover - a setup problem, reported as such
    raise ImportError("meco_ros messages are not built: run `make setup` "
                      "(or `bash tools/build_msgs.sh .venv`)") from e

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "config" / "fastdds_profile.xml"
PROFILE_SEGMENT = 128 * 2**20   # <segment_size> of the profile's shared-memory transport
N_FRAMES, RATE_HZ = 60, 30.0

SIDE = r'''
"""One side of a DDS check (run by test_dds_large_images.py); every line it prints is a report.

    side.py image-pub TOPIC HxW[,HxW..] N RATE   frame i of each size on TOPIC/hH_wW, best effort
    side.py image-sub TOPIC HxW[,HxW..] N SECONDS  receives until N frames of every size arrived, or
                                                 "stop" came on stdin and no frame for 1 s, or SECONDS
    side.py stats TOPIC | side.py prediction TOPIC  5 messages, reliable

Each prints "segment BYTES.." (its own Fast DDS shared-memory segments), "matched" once all its
endpoints matched; a publisher then waits for "go" on stdin, publishes, prints "sent N" and waits
for "quit" (image) or for every message to be acknowledged (stats, prediction).
"""
import json, os, select, sys, time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image

from meco_ros.image_conversion import cv2_to_imgmsg, imgmsg_to_cv2


def say(text):
    print(text, flush=True)


def stdin_line(timeout):
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    return sys.stdin.readline().strip() if ready else ""


def pattern(h, w, i):
    return ((np.arange(h * w * 3, dtype=np.uint32) + i) % 251).astype(np.uint8).reshape(h, w, 3)


def own_segments():
    """Sizes of the Fast DDS segments this process maps (right after start-up: only its own)."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "/dev/shm/fastdds_" in line}
    return [os.stat(p).st_size for p in sorted(paths) if "_port" not in p and not p.endswith("_el")]


def wait_matched(node, endpoints, count):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(count(e) > 0 for e in endpoints):
        rclpy.spin_once(node, timeout_sec=0.05)
    if not all(count(e) > 0 for e in endpoints):
        sys.exit("endpoints not matched within 30 s")
    say("matched")


mode, topic = sys.argv[1], sys.argv[2]
rclpy.init()
node = rclpy.create_node("meco_dds_" + mode.replace("-", "_"))
say("segment " + " ".join(str(s) for s in own_segments()))
if mode.startswith("image"):
    sizes = [tuple(int(v) for v in s.split("x")) for s in sys.argv[3].split(",")]
    n = int(sys.argv[4])
    topics = {hw: f"{topic}/h{hw[0]}_w{hw[1]}" for hw in sizes}
if mode == "image-pub":
    rate = float(sys.argv[5])
    pubs = {hw: node.create_publisher(Image, t, qos_profile_sensor_data) for hw, t in topics.items()}
    wait_matched(node, pubs.values(), lambda p: p.get_subscription_count())
    if stdin_line(30) != "go":
        sys.exit("no 'go' on stdin within 30 s")
    t0 = time.monotonic()
    for i in range(n):
        for (h, w), pub in pubs.items():
            msg = cv2_to_imgmsg(pattern(h, w, i), "rgb8")
            msg.header.frame_id = str(i)
            msg.header.stamp = node.get_clock().now().to_msg()
            pub.publish(msg)
        time.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))  # the camera's frame rate
    say(f"sent {n}")
    if stdin_line(60) != "quit":  # the writers stay up while the last samples drain
        sys.exit("no 'quit' on stdin within 60 s")
elif mode == "image-sub":
    seconds = float(sys.argv[5])
    got = {hw: {} for hw in sizes}
    bad = {hw: [] for hw in sizes}
    last = [time.monotonic()]

    def on_image(hw):
        def callback(msg):
            i = int(msg.header.frame_id)
            img = imgmsg_to_cv2(msg)
            if img.shape != (*hw, 3) or not np.array_equal(img, pattern(*hw, i)):
                bad[hw].append(i)
            sent = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            got[hw][i] = time.time() - sent
            last[0] = time.monotonic()
        return callback

    subs = [node.create_subscription(Image, t, on_image(hw), qos_profile_sensor_data) for hw, t in topics.items()]
    wait_matched(node, subs, lambda s: s.get_publisher_count())
    end, stopping = time.monotonic() + seconds, False
    while time.monotonic() < end and any(len(g) < n for g in got.values()):
        rclpy.spin_once(node, timeout_sec=0.02)
        stopping = stopping or stdin_line(0) == "stop"
        if stopping and time.monotonic() - last[0] > 1.0:
            break  # the publisher is done and nothing more comes
    say(json.dumps({f"{h}x{w}": {"received": sorted(got[(h, w)]), "bad": bad[(h, w)],
                                 "median_latency_ms": 1e3 * float(np.median(list(got[(h, w)].values())))
                                 if got[(h, w)] else None} for h, w in sizes}))
else:
    from meco_ros.msg import Prediction, Stats

    pub = node.create_publisher(Stats if mode == "stats" else Prediction, topic, QoSProfile(depth=10))
    wait_matched(node, [pub], lambda p: p.get_subscription_count())
    if stdin_line(30) != "go":
        sys.exit("no 'go' on stdin within 30 s")
    depth = np.linspace(0.5, 80.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    seg = (np.arange(48 * 64) % 11).astype(np.uint8).reshape(48, 64)
    for i in range(5):
        if mode == "stats":
            pub.publish(Stats(fps=29.5, latency_ms=41.25, frames_received=100 + i, frames_processed=42,
                              frames_dropped=3, device="cpu", model="meco_vit_small", precision="fp32"))
        else:
            pub.publish(Prediction(depth=cv2_to_imgmsg(depth, "32FC1"), segmentation=cv2_to_imgmsg(seg, "mono8"),
                                   class_names=["road", "sky"], class_colors=[128, 64, 128, 70, 130, 180],
                                   max_depth=80.0))
    say("sent 5")
    if not pub.wait_for_all_acked(rclpy.duration.Duration(seconds=30)):  # reliable: delivered, then exit
        sys.exit("not every message was acknowledged within 30 s")
node.destroy_node()
rclpy.try_shutdown()
'''


class Side(Process):
    """One side as a subprocess (meco_ros.proc.Process): stdout lines collected on a thread (waits
    are for lines, with a timeout), stdin for the handshake, stderr kept in a file for the
    failure message."""

    def __init__(self, script: Path, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.stderr = cwd / f"side_{args[0]}_{id(self)}.err"
        super().__init__([sys.executable, str(script), *args], env=env, cwd=cwd, stdin=True, stderr=self.stderr)

    def line(self, prefix: str, timeout: float) -> str:
        """The first stdout line starting with `prefix` (asserts it comes within `timeout`)."""
        with self._cond:
            self._cond.wait_for(lambda: any(x.startswith(prefix) for x in self.lines) or not self._reader.is_alive(),
                                timeout)
            found = next((x for x in self.lines if x.startswith(prefix)), None)
        assert found is not None, f"no {prefix!r} line within {timeout} s: {self.report()}"
        return found

    def finish(self, timeout: float = 30) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            return -9

    def report(self) -> str:
        return f"exit {self.popen.poll()}; stdout {self.lines[-5:]}; stderr {self.stderr.read_text()[-2000:]}"

    def segment(self) -> int:
        """Size of the largest Fast DDS shared-memory segment of this side's own (the one large
        samples can use; with the profile Fast DDS also keeps a small one of its defaults)."""
        sizes = [int(v) for v in self.line("segment", 30).split()[1:]]
        assert sizes, f"no Fast DDS shared-memory segment in this process: {self.report()}"
        return max(sizes)


@pytest.fixture
def side(tmp_path):
    """side(args, profile) -> Side; profile None = Fast DDS defaults. Each test gets a DDS domain
    of its own (nothing else on it) and a folder of its own to run in; all sides are ended."""
    script = tmp_path / "side.py"
    script.write_text(SIDE)
    domain = str(own_domain_id())
    started: list[Side] = []

    def start(args: list[str], profile: Path | None = PROFILE) -> Side:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FASTDDS_") and k != "RMW_FASTRTPS_USE_QOS_FROM_XML"}
        env.update(ROS_DOMAIN_ID=domain, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
                   OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
        if profile is not None:
            env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
        s = Side(script, args, env, tmp_path)
        started.append(s)
        return s

    start.domain = int(domain)
    yield start
    for s in started:
        if s.popen.poll() is None:
            s.popen.kill()
            s.popen.wait(5)


def image_run(side, sizes: str, profile: Path | None, n: int = N_FRAMES, rate: float = RATE_HZ):
    """Subscriber and publisher on one topic; returns (results per size, sub segment, pub segment)."""
    topic = f"/meco_test/images_{os.getpid()}"
    sub = side(["image-sub", topic, sizes, str(n), "60"], profile)
    pub = side(["image-pub", topic, sizes, str(n), str(rate)], profile)
    segments = sub.segment(), pub.segment()
    sub.line("matched", 30)
    pub.line("matched", 30)
    pub.send("go")
    pub.line("sent", 60)
    sub.send("stop")
    result = json.loads(sub.line("{", 70))
    pub.send("quit")
    assert sub.finish() == 0, sub.report()
    assert pub.finish() == 0, pub.report()
    return result, segments


def test_best_effort_640x480_and_1280x720_rgb8_arrive_with_the_profile(side):
    result, segments = image_run(side, "480x640,720x1280", PROFILE)
    print({k: (len(v["received"]), v["median_latency_ms"]) for k, v in result.items()})
    assert all(s >= PROFILE_SEGMENT for s in segments), segments  # the profile's transport is the one in use
    for size, r in result.items():
        assert not r["bad"], f"{size}: corrupted frames {r['bad'][:5]}"
        assert len(r["received"]) >= N_FRAMES // 2, f"{size}: only {len(r['received'])}/{N_FRAMES} frames arrived"


def test_control_fast_dds_defaults_have_a_segment_smaller_than_one_frame(side):
    """What the profile fixes: by default Fast DDS gives each process a shared-memory segment
    smaller than one 640x480 rgb8 frame (921,600 bytes), so such a frame cannot go through shared
    memory. The same pair delivers small frames (the setup is sound); the large ones that still
    arrive by other paths are counted in the output (see the module docstring)."""
    result, segments = image_run(side, "48x64,480x640", None, n=30)
    print("Fast DDS defaults:", {k: (len(v["received"]), v["median_latency_ms"]) for k, v in result.items()})
    assert all(0 < s < 480 * 640 * 3 for s in segments), segments
    assert len(result["48x64"]["received"]) >= 15 and not result["48x64"]["bad"], result["48x64"]


def _receive(ros_side, side, mode: str, msg_type, n: int = 5) -> list:
    """`mode` messages from a publisher process, received by this test process (same domain)."""
    ros = ros_side("meco_dds_test", domain_id=side.domain)
    got: list = []
    topic = f"/meco_test/{mode}_{os.getpid()}"
    sub = ros.node.create_subscription(msg_type, topic, got.append, QoSProfile(depth=10))
    pub = side([mode, topic])
    pub.line("matched", 30)
    assert ros.wait_matched(sub, timeout=30), "the publisher process never matched this subscription"
    pub.send("go")
    assert ros.spin_until(lambda: len(got) >= n, 30), f"{len(got)}/{n} {mode} messages: {pub.report()}"
    assert pub.finish() == 0, pub.report()
    return got


def test_stats_message_between_processes(ros_side, side):
    got = _receive(ros_side, side, "stats", Stats)
    s = got[0]
    assert (s.fps, s.latency_ms, s.frames_processed, s.frames_dropped) == (29.5, 41.25, 42, 3)
    assert (s.device, s.model, s.precision) == ("cpu", "meco_vit_small", "fp32")
    assert [m.frames_received for m in got] == list(range(100, 105))


def test_prediction_message_between_processes(ros_side, side):
    got = _receive(ros_side, side, "prediction", Prediction)
    p = got[-1]
    depth, seg = imgmsg_to_cv2(p.depth), imgmsg_to_cv2(p.segmentation)
    assert p.depth.encoding == "32FC1" and p.segmentation.encoding == "mono8"
    assert np.array_equal(depth, np.linspace(0.5, 80.0, 48 * 64, dtype=np.float32).reshape(48, 64))
    assert np.array_equal(seg, (np.arange(48 * 64) % 11).astype(np.uint8).reshape(48, 64))
    assert list(p.class_names) == ["road", "sky"] and list(p.class_colors) == [128, 64, 128, 70, 130, 180]
    assert p.max_depth == 80.0
