"""Fault cases against the real `perception_node` process (issue 20): camera restarts, image
size and camera_info changes, stamp and clock jumps, a parameter storm, lifecycle cycling,
malformed compressed images.

Why real processes: every case starts the installed `perception_node` executable
(meco_ros.proc.start_node, config/golf_cart.yaml plus a few overrides) in a namespace of
its own on the context's ROS domain, and talks to it over real DDS from a client in this
process (`Client`) or, for the camera restarts, from separate camera processes
(`python -m meco_ros.bench.faults.node_cases camera ...`), so what is measured is what a vehicle
would see. With `ctx.checkpoint` None the node runs the random-weight dev model at a small
inference size (the pipeline is the same, and the cases stay fast on a small CPU).

Every wait has a timeout; every case stops its node (SIGINT, then SIGKILL) and its
helpers, whatever happens.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import signal
import struct
import sys
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from meco_core.stamps import NS_PER_S, stamp_to_ns, to_stamp
from meco_ros.bench.faults.base import FaultContext, fault_case
from meco_ros.dds_shm import MIN_AGE_S, STALE_CHECK_PERIOD_S, segment_names
from meco_ros.proc import REPO, Process, node_ros_args, ros_env, start_node

PARAMS_FILE = REPO / "config" / "golf_cart.yaml"
NODE_READY_TIMEOUT_S = 180.0  # model build + warm-up (a real checkpoint may export ONNX first)
DEV_INFERENCE_SIZE = [96, 128]  # dev model: small network input, the outputs still follow the camera size


# ================================================================ the node under test
def dev_config(ctx: FaultContext) -> str:
    """The dev model's config: the context's, else the project default."""
    from meco_core.defaults import DEV_MODEL_CONFIG

    return ctx.dev_model_config or DEV_MODEL_CONFIG


def node_overrides(ctx: FaultContext, **extra: object) -> dict[str, object]:
    """Parameters every case sets: fast status (stats every 0.5 s, warnings every 0.5 s) and,
    for the dev model, a small inference size on one thread (2 shared cores)."""
    values: dict[str, object] = {"stats_period": 0.5, "log_throttle": 0.5}
    if ctx.checkpoint is None:
        values.update(inference_size=DEV_INFERENCE_SIZE, threads=1, warmup_iterations=1)
    values.update(extra)
    return values


@dataclass
class NodeUnderTest:
    """A started perception_node: its process, namespace and domain, and /proc figures."""

    proc: Process
    ns: str
    domain_id: int

    @property
    def pid(self) -> int:
        return self.proc.popen.pid

    def alive(self) -> bool:
        return self.proc.alive()

    def fqn(self, name: str) -> str:
        """A fully qualified name under the node (its services)."""
        return f"{self.ns}/perception_node/{name}"

    def resources(self) -> dict[str, int]:
        """RSS (kB), threads and open file descriptors from /proc: what a leak shows in."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {"rss_kb": int(fields["VmRSS"].split()[0]), "threads": int(fields["Threads"]),
                "fds": len(os.listdir(f"/proc/{self.pid}/fd"))}

    def log_tail(self, n: int = 1500) -> str:
        return self.proc.output[-n:]


@contextmanager
def running_node(ctx: FaultContext, case: str, ready_text: str = "ready", **overrides: object
                 ) -> Iterator[NodeUnderTest]:
    """Start perception_node for one case and stop it at the end (SIGINT, SIGKILL if it hangs)."""
    ns = f"/meco_faults_{case}_{os.getpid()}"
    args = node_ros_args(PARAMS_FILE, ns, ctx.checkpoint, dev_config(ctx), **node_overrides(ctx, **overrides))
    proc = start_node(args, ros_env(domain_id=ctx.domain_id, OMP_NUM_THREADS="1"), echo=ctx.verbose)
    try:
        if not proc.wait_for(ready_text, NODE_READY_TIMEOUT_S):
            raise RuntimeError(f"perception_node did not print {ready_text!r} within {NODE_READY_TIMEOUT_S:g} s:\n"
                               f"{proc.output[-3000:]}")
        yield NodeUnderTest(proc, ns, ctx.domain_id)
    finally:
        if proc.stop(signal.SIGINT, timeout=20) is None:
            proc.stop(signal.SIGKILL, timeout=5)


# ================================================================ the client (this process)
def ros_stamp(ns: int) -> Any:
    """builtin_interfaces/Time of a time in nanoseconds."""
    from builtin_interfaces.msg import Time

    return to_stamp(ns, Time)


@dataclass(frozen=True)
class Received:
    """One output message as the client saw it."""

    wall: float  # time.time() at receipt
    stamp_ns: int
    height: int
    width: int


def ensure_ros_env() -> None:
    """This process's DDS settings as the node's (loopback, the project's Fast DDS profile):
    without the profile's large shared-memory segment a big message (a 1280x720 frame, 50 MB
    of noise) never leaves this process. Fast DDS reads it once, at the first participant."""
    for key, value in ros_env().items():
        if key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_IMPLEMENTATION"):
            os.environ.setdefault(key, value)


class Client:
    """A ROS node in this process, in the node's domain and namespace, spun on a thread:
    records outputs (receipt time, stamp, size), the node's Stats and /diagnostics, calls
    services. Why a thread: cases publish and wait on the main thread while messages keep
    arriving."""

    def __init__(self, target: NodeUnderTest, name: str) -> None:
        from meco_ros.side_node import SideNode

        ensure_ros_env()
        self.target = target
        self.side = SideNode(name, namespace=target.ns, domain_id=target.domain_id).open()
        self.node = self.side.node
        self._lock = threading.Lock()
        self.outputs: dict[str, list[Received]] = {}
        self.stats: list[Any] = []
        self.diagnostics: list[dict[str, str]] = []
        self._clients: dict[str, Any] = {}

    # ---- subscriptions ----
    def watch(self, topic: str, msg_type: type) -> None:
        """Record every message on `topic` (reliable, like RViz)."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        log = self.outputs.setdefault(topic, [])

        def on_msg(msg: Any) -> None:
            rec = Received(time.time(), stamp_to_ns(msg.header.stamp), int(getattr(msg, "height", 0)),
                           int(getattr(msg, "width", 0)))
            with self._lock:
                log.append(rec)
        self.node.create_subscription(msg_type, topic, on_msg, QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))

    def watch_status(self) -> None:
        """The node's Stats and its own /diagnostics status (key -> value)."""
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from meco_ros.msg import Stats

        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Stats, "stats", self._on_stats, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)

    def _on_stats(self, msg: Any) -> None:
        with self._lock:
            self.stats.append(msg)

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith(f"{self.target.ns}/perception_node"):
                with self._lock:
                    self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def publisher(self, topic: str, msg_type: type, sensor: bool = True) -> Any:
        """Best effort like a camera driver (sensor data QoS), or reliable."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

        qos = qos_profile_sensor_data if sensor else QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        return self.node.create_publisher(msg_type, topic, qos)

    # ---- spinning, waiting, reading ----
    def start(self) -> "Client":
        self.side.spin()
        return self

    def received(self, topic: str) -> list[Received]:
        with self._lock:
            return list(self.outputs.get(topic, []))

    def latest_stats(self) -> Any | None:
        with self._lock:
            return self.stats[-1] if self.stats else None

    def latest_diagnostics(self) -> dict[str, str]:
        with self._lock:
            return dict(self.diagnostics[-1]) if self.diagnostics else {}

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 10.0) -> Any | None:
        """A service call answered within `timeout` s (None if not). Clients are cached: a
        parameter storm must not create a thousand of them."""
        client = self._client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            return None
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            future.cancel()
            return None
        return future.result()

    def _client(self, srv_type: type, name: str) -> Any:
        if name not in self._clients:
            self._clients[name] = self.node.create_client(srv_type, name)
        return self._clients[name]

    def close(self) -> None:
        self.side.stop()


def watch_depth_and_status(client: Client) -> None:
    """A client's subscriptions in most cases: the depth output, the node's stats and diagnostics."""
    from sensor_msgs.msg import Image

    client.watch("depth", Image)
    client.watch_status()


@contextmanager
def client_for(target: NodeUnderTest, name: str, setup: Callable[[Client], None]) -> Iterator[Client]:
    """A started Client (subscriptions made by `setup` before spinning), closed at the end."""
    client = Client(target, name)
    try:
        setup(client)
        yield client.start()
    finally:
        client.close()


def wait_until(cond: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll `cond` until true or `timeout` s passed (the client spins on its own thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


# ================================================================ frames
def test_image(h: int, w: int) -> Any:
    """A deterministic colourful HxW RGB frame (horizon, path, a post)."""
    import numpy as np

    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    img[..., 1] = np.where(y > h // 2, 150, 60).astype(np.uint8)
    img[..., 2] = (y * 255 // max(h - 1, 1)).astype(np.uint8)
    img[h // 3: h - h // 8, w // 2: w // 2 + max(w // 40, 2)] = (220, 20, 60)
    return img


def image_msg(h: int, w: int, frame_id: str = "camera") -> Any:
    """An rgb8 sensor_msgs/Image of test_image(h, w) (restamped before each publish)."""
    from meco_ros.image_conversion import cv2_to_imgmsg

    msg = cv2_to_imgmsg(test_image(h, w), "rgb8")
    msg.header.frame_id = frame_id
    return msg


def camera_info_msg(h: int, w: int, frame_id: str = "camera") -> Any:
    """A calibrated CameraInfo for an h x w image (about 70 deg HFOV, centred)."""
    from sensor_msgs.msg import CameraInfo

    f = w / (2 * math.tan(math.radians(35)))
    info = CameraInfo(height=h, width=w, distortion_model="plumb_bob", d=[0.0] * 5)
    info.k = [f, 0.0, w / 2, 0.0, f, h / 2, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, w / 2, 0.0, 0.0, f, h / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.frame_id = frame_id
    return info


class Streamer:
    """A camera in this process: publishes the current frame (and camera_info, if set) at
    `rate` Hz on a thread, stamped by `clock()` (ns); remembers the size sent per stamp, so
    outputs can be checked against the image they came from. The case swaps `frame`,
    `info` and `clock` between phases."""

    def __init__(self, client: Client, rate: float, frame: Any, clock: Callable[[], int] | None = None,
                 topic: str = "image") -> None:
        from sensor_msgs.msg import CameraInfo, Image

        self.pub = client.publisher(topic, Image)
        self.info_pub = client.publisher("camera_info", CameraInfo, sensor=False)
        self.rate, self.frame, self.info = rate, frame, None
        self.clock = clock or time.time_ns
        self.sent: dict[int, tuple[int, int]] = {}  # stamp ns -> (height, width)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-camera", daemon=True)

    def start(self) -> "Streamer":
        self._thread.start()
        return self

    def _run(self) -> None:
        period = 1.0 / self.rate
        next_t = time.monotonic()
        while not self._stop.is_set():
            frame, info, now = self.frame, self.info, self.clock()
            frame.header.stamp = ros_stamp(now)
            if info is not None:
                info.header.stamp = frame.header.stamp
                self.info_pub.publish(info)
            self.sent[now] = (int(frame.height), int(frame.width))
            self.pub.publish(frame)
            next_t = max(next_t + period, time.monotonic())  # behind (a slow publish): no catch-up burst
            self._stop.wait(next_t - time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3)


@contextmanager
def streaming(client: Client, rate: float, frame: Any, clock: Callable[[], int] | None = None) -> Iterator[Streamer]:
    streamer = Streamer(client, rate, frame, clock).start()
    try:
        yield streamer
    finally:
        streamer.stop()


def outputs_since(client: Client, topic: str, since_ns: int, until_ns: int | None = None) -> list[Received]:
    """Outputs whose stamps fall in [since_ns, until_ns)."""
    return [r for r in client.received(topic) if r.stamp_ns >= since_ns and (until_ns is None or r.stamp_ns < until_ns)]


def summary(values: list[float]) -> str:
    """'median x, max y' of seconds, in ms."""
    if not values:
        return "none"
    s = sorted(values)
    return f"median {s[len(s) // 2] * 1e3:.0f} ms, max {s[-1] * 1e3:.0f} ms"


def check_log(target: NodeUnderTest) -> str | None:
    """A Python traceback in the node's log is a failure whatever else happened."""
    out = target.proc.output
    return "Traceback in the node's log" if "Traceback" in out else None


# ================================================================ 1. camera publisher restarts
CAMERA_RESTARTS = 20
RESUME_LIMIT_S = 1.0


def camera_main(argv: list[str]) -> int:
    """A camera process: wait until the node's subscription matched, then publish a frame
    every 1/rate s (stamped with wall time) until killed; print one JSON line at the first
    publish, so the case knows when the new publisher's first image went out."""
    ap = argparse.ArgumentParser(prog="node_cases camera")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--size", default="240x320")
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    h, w = (int(v) for v in args.size.split("x"))
    rclpy.init()
    node = rclpy.create_node(f"fault_camera_{os.getpid()}")
    pub = node.create_publisher(Image, args.topic, qos_profile_sensor_data)
    msg = image_msg(h, w)
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    end, period, first = time.monotonic() + args.max_seconds, 1.0 / args.rate, True
    while time.monotonic() < end:
        now = time.time_ns()
        msg.header.stamp = ros_stamp(now)
        pub.publish(msg)
        if first:
            print(json.dumps({"first_stamp_ns": now, "matched": pub.get_subscription_count() > 0}), flush=True)
            first = False
        time.sleep(period)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def start_camera(target: NodeUnderTest, size: str = "240x320", rate: float = 30.0) -> Process:
    """A camera process on the node's image topic, in its domain."""
    cmd = [sys.executable, "-m", "meco_ros.bench.faults.node_cases", "camera", "--topic", f"{target.ns}/image",
           "--size", size, "--rate", str(rate)]
    return Process(cmd, env=ros_env(domain_id=target.domain_id), cwd=REPO)


def first_stamp(camera: Process, timeout: float) -> int | None:
    """The stamp (ns) of the camera process's first published image, from its JSON line."""
    if not camera.wait_for("first_stamp_ns", timeout):
        return None
    line = next(line for line in camera.lines if "first_stamp_ns" in line)
    return int(json.loads(line)["first_stamp_ns"])


def one_restart(client: Client, target: NodeUnderTest) -> dict[str, Any]:
    """Start a camera process, time its first image -> the node's first depth of it, SIGKILL it."""
    started = time.time()
    camera = start_camera(target)
    try:
        first = first_stamp(camera, 20.0)
        if first is None:
            return {"error": f"camera did not publish: {camera.output[-500:]}"}
        got = wait_until(lambda: bool(outputs_since(client, "depth", first)), 10.0)
        out = outputs_since(client, "depth", first)
        if not got or not out:
            return {"error": "no depth output within 10 s of the first image"}
        return {"resume_s": out[0].wall - first / 1e9, "from_process_start_s": out[0].wall - started}
    finally:
        camera.stop(signal.SIGKILL, timeout=5)


@fault_case("camera_restart",
            f"camera publisher process SIGKILLed and restarted {CAMERA_RESTARTS} times: depth resumes within "
            f"{RESUME_LIMIT_S:g} s of the new publisher's first image every time; the shared-memory segments "
            f"the killed publishers leave are freed by the node within {STALE_CHECK_PERIOD_S + MIN_AGE_S + 5:g} s",
            fast=False)
def camera_restart(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    from sensor_msgs.msg import Image

    with running_node(ctx, "restart") as target, \
            client_for(target, "fault_restart_viewer", lambda c: c.watch("depth", Image)) as client:
        shm_before = len(segment_names())
        runs = [one_restart(client, target) for _ in range(CAMERA_RESTARTS)]
        shm_after = len(segment_names())
        # the node's janitor (meco_ros.dds_shm) frees the killed cameras' segments on its next pass
        t_freed = time.monotonic()
        freed = wait_until(lambda: len(segment_names()) <= shm_before, STALE_CHECK_PERIOD_S + MIN_AGE_S + 5.0)
        freed_s, shm_end = time.monotonic() - t_freed, len(segment_names())
        alive = target.alive()
        problem = check_log(target)
    errors = [r["error"] for r in runs if "error" in r]
    resume = [r["resume_s"] for r in runs if "resume_s" in r]
    slow = [t for t in resume if t > RESUME_LIMIT_S]
    passed = not errors and not slow and len(resume) == CAMERA_RESTARTS and alive and problem is None and freed
    measured = (f"{len(resume)}/{CAMERA_RESTARTS} restarts resumed; first image -> depth {summary(resume)}; "
                f"process start -> depth {summary([r['from_process_start_s'] for r in runs if 'resume_s' in r])}; "
                f"{len(slow)} over {RESUME_LIMIT_S:g} s; Fast DDS segments in /dev/shm {shm_before} -> {shm_after} "
                f"after the restarts -> {shm_end} "
                f"{f'{freed_s:.0f} s later (freed by the node)' if freed else 'still, after the wait (NOT freed)'}; "
                f"node {'alive' if alive else 'DEAD'}")
    if errors:
        measured += f"; {len(errors)} failed: {errors[0]}"
    if problem:
        measured += f"; {problem}"
    return passed, measured, {"runs": runs, "dds_segments": [shm_before, shm_after, shm_end], "freed_s": freed_s}


# ================================================================ 2. image size and camera_info changes
@dataclass
class SizePhase:
    """One stretch of the size case: an image size and what camera_info does meanwhile."""

    label: str
    size: tuple[int, int]  # (height, width)
    info: tuple[int, int] | None  # camera_info size sent with every frame (None: none)
    info_after_s: float = 0.0  # camera_info starts this late into the phase
    clouds: str = "any"  # "none": no cloud may come from this phase; "some": clouds must come; "any"


SIZE_PHASES = (
    SizePhase("640x480, no camera_info", (480, 640), None, clouds="none"),
    SizePhase("1280x720, camera_info 1.5 s late", (720, 1280), (720, 1280), info_after_s=1.5, clouds="some"),
    SizePhase("320x240, camera_info for 1280x720", (240, 320), (720, 1280), clouds="none"),
    SizePhase("640x480, camera_info for 640x480", (480, 640), (480, 640), clouds="some"),
)
PHASE_S = 2.5


def run_size_phase(client: Client, cam: Streamer, phase: SizePhase) -> tuple[int, int, int]:
    """Stream one phase; (start stamp, stamp the camera_info began, end stamp) in ns."""
    cam.info = None if phase.info_after_s or phase.info is None else camera_info_msg(*phase.info)
    start = time.time_ns()
    cam.frame = image_msg(*phase.size)
    info_from = start
    if phase.info is not None and phase.info_after_s:
        time.sleep(phase.info_after_s)
        info_from = time.time_ns()
        cam.info = camera_info_msg(*phase.info)
    time.sleep(PHASE_S - phase.info_after_s)
    return start, info_from, time.time_ns()


def follows(image: tuple[int, int] | None, output: tuple[int, int]) -> bool:
    """An output follows its image: the image's size, or that size divided by a whole number
    (the node's output_max_pixels shrinks large outputs so, keeping the geometry exact)."""
    if image is None:
        return False
    (h, w), (oh, ow) = image, output
    return oh > 0 and h % oh == 0 and w % ow == 0 and h // oh == w // ow


def judge_size_phase(client: Client, cam: Streamer, phase: SizePhase, span: tuple[int, int, int],
                     stride: int) -> tuple[list[str], str]:
    """Problems of one phase and a one-line account: outputs at the image's size, clouds as
    expected and never bigger than the image allows."""
    start, info_from, end = span
    depth = outputs_since(client, "depth", start, end)
    clouds = outputs_since(client, "points", start, end)
    problems = []
    wrong = [(d.height, d.width) for d in depth if not follows(cam.sent.get(d.stamp_ns), (d.height, d.width))]
    if not depth:
        problems.append(f"{phase.label}: no depth output")
    if wrong:
        problems.append(f"{phase.label}: depth of another size than its image: {wrong[:3]}")
    h, w = phase.size
    max_points = math.ceil(h / stride) * math.ceil(w / stride)
    too_big = [c.width * c.height for c in clouds if c.width * c.height > max_points]
    if too_big:
        problems.append(f"{phase.label}: clouds with more points ({too_big[0]}) than a {w}x{h} image gives")
    early = [c for c in clouds if c.stamp_ns < info_from]
    if phase.clouds == "none" and clouds or phase.info_after_s and early:
        problems.append(f"{phase.label}: clouds published without a camera_info")
    if phase.clouds == "some" and not [c for c in clouds if c.stamp_ns >= info_from]:
        problems.append(f"{phase.label}: no clouds once camera_info was there")
    own = [d for d in depth if cam.sent.get(d.stamp_ns) == phase.size]  # not the previous phase's last frame
    sizes = ", ".join(sorted({f"{d.width}x{d.height}" for d in own}))
    return problems, f"{phase.label}: {len(own)} depth at {sizes or '-'}, {len(clouds)} clouds"


@fault_case("image_size_and_camera_info",
            "image size 640x480 -> 1280x720 -> 320x240 -> 640x480 with camera_info absent, late, disagreeing, "
            "matching: every output at its image's size (or that size / k, output_max_pixels); clouds wait "
            "while there is no camera_info for the image's size (warned), never crash; node alive", fast=True)
def image_size_and_camera_info(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    from sensor_msgs.msg import Image, PointCloud2

    def setup(c: Client) -> None:
        c.watch("depth", Image)
        c.watch("points", PointCloud2)

    problems, lines = [], []
    with running_node(ctx, "size") as target, client_for(target, "fault_size_viewer", setup) as client:
        stride = 2  # cloud.stride of config/golf_cart.yaml's default (params.SPECS)
        with streaming(client, 5.0, image_msg(*SIZE_PHASES[0].size)) as cam:
            wait_until(lambda: bool(client.received("depth")), 20.0)  # discovery, first frame
            for phase in SIZE_PHASES:
                span = run_size_phase(client, cam, phase)
                found, line = judge_size_phase(client, cam, phase, span, stride)
                problems += found
                lines.append(line)
        time.sleep(0.5)
        log = target.proc.output
        warned = {"no camera_info": "no calibrated camera_info" in log,
                  "disagreeing camera_info": "camera_info is for 1280x720" in log and "camera_info ignored" in log}
        alive = target.alive()
        traceback = check_log(target)
    problems += [f"no warning about {what}" for what, ok in warned.items() if not ok]
    if not alive:
        problems.append("node died")
    if traceback:
        problems.append(traceback)
    measured = "; ".join(lines) + f"; warned: {', '.join(k for k, v in warned.items() if v) or 'nothing'}; " \
        f"node {'alive' if alive else 'DEAD'}"
    if problems:
        measured += " | PROBLEMS: " + "; ".join(problems)
    return not problems, measured, {"phases": lines, "warned": warned}


# ================================================================ 3. stamps and clocks that jump
SEC_NS = NS_PER_S
HOUR_NS = 3600 * SEC_NS
JUMP_PHASE_S = 2.5


class SimClock:
    """/clock as `ros2 bag play --clock` publishes it: sim time = origin + wall time elapsed,
    at 100 Hz on a thread; `reset` jumps it (a bag loop). Images are stamped from `now`,
    plus `stamp_offset` (stamps that jump while /clock runs on)."""

    def __init__(self, client: Client, start_ns: int) -> None:
        from rosgraph_msgs.msg import Clock

        self.pub = client.node.create_publisher(Clock, "/clock", 10)
        self._clock_type = Clock
        self.reset(start_ns)
        self.stamp_offset = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-clock", daemon=True)
        self._thread.start()

    def reset(self, sim_ns: int) -> None:
        self._origin = (sim_ns, time.time_ns())

    def now(self) -> int:
        sim, wall = self._origin
        return sim + time.time_ns() - wall

    def stamp(self) -> int:
        return self.now() + self.stamp_offset

    def _run(self) -> None:
        while not self._stop.is_set():
            self.pub.publish(self._clock_type(clock=ros_stamp(self.now())))
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def stamped_phase(client: Client, clock: SimClock, label: str, change: Callable[[], None]) -> tuple[str, int, int]:
    """Apply `change`, stream JUMP_PHASE_S s; (label, depth outputs stamped in the phase, stats
    messages received in it: the status timer runs on the ROS clock that just jumped)."""
    change()
    first, stats_n = clock.stamp(), len(client.stats)
    time.sleep(JUMP_PHASE_S)
    last = clock.stamp()
    return label, len(outputs_since(client, "depth", first, last + 1)), len(client.stats) - stats_n


@fault_case("stamp_and_clock_jumps",
            "node with use_sim_time:=true, /clock at 1e6 s and images stamped by it; then the header stamps jump "
            "back an hour (a bag loop) while /clock runs on; then /clock is reset to 1000 s (a bag loop with "
            "--clock) and the stamps follow; then use_sim_time is set false (wall clock) with stamps an hour back: "
            "in every phase depth outputs at >= half the first phase's count and stats messages keep coming; the "
            "node's clock follows /clock, then the wall clock; node alive", fast=True)
def stamp_and_clock_jumps(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    with running_node(ctx, "clock", use_sim_time=True) as target, \
            client_for(target, "fault_clock_player", watch_depth_and_status) as client:
        clock = SimClock(client, 1_000_000 * SEC_NS)
        try:
            with streaming(client, 10.0, image_msg(240, 320), clock=clock.stamp):
                wait_until(lambda: bool(client.received("depth")), 20.0)
                phases = [stamped_phase(client, clock, "sim time", lambda: None),
                          stamped_phase(client, clock, "stamps an hour back",
                                        lambda: setattr(clock, "stamp_offset", -HOUR_NS)),
                          stamped_phase(client, clock, "/clock reset to 1000 s",
                                        lambda: (setattr(clock, "stamp_offset", 0), clock.reset(1000 * SEC_NS)))]
                node_time = stats_time(client)  # /clock's after the reset?
                phases.append(stamped_phase(client, clock, "wall clock (use_sim_time set false), stamps an hour "
                                            "back", lambda: to_wall_clock(client, target, clock)))
                wall_error = abs(stats_time(client) - time.time())  # the node's clock is the wall clock again
        finally:
            clock.stop()
        alive, traceback = target.alive(), check_log(target)
    return judge_jumps(phases, node_time, wall_error, alive, traceback)


def stats_time(client: Client) -> float:
    """The header stamp (s) of the newest Stats: the node's clock (-1 before any)."""
    stats = client.latest_stats()
    return stamp_to_ns(stats.header.stamp) / SEC_NS if stats is not None else -1.0


def to_wall_clock(client: Client, target: NodeUnderTest, clock: SimClock) -> None:
    """use_sim_time false at run time; stamps from the wall clock minus an hour (a bag played
    without --clock against a live node)."""
    set_one(client, target, "use_sim_time", 1, False)
    clock.reset(time.time_ns())
    clock.stamp_offset = -HOUR_NS


def judge_jumps(phases: list[tuple[str, int, int]], node_time: float, wall_error: float, alive: bool,
                traceback: str | None) -> tuple[bool, str, dict[str, Any]]:
    """Outputs in every phase at >= half the first's, stats in every phase, the node's clock
    following /clock (else use_sim_time did nothing and the case proved nothing)."""
    base = phases[0][1]
    problems = [f"{label}: {n} outputs (first phase: {base})" for label, n, _ in phases[1:] if n < max(3, base / 2)]
    problems += [f"{label}: no stats" for label, _, stats in phases if stats == 0]
    if base == 0:
        problems.append("no outputs before the jumps")
    if not 1000 <= node_time < 1000 + 60:
        problems.append(f"the node's clock reads {node_time:.0f} s after the reset: not following /clock")
    if wall_error > 5.0:
        problems.append(f"the node's clock is {wall_error:.0f} s off the wall clock after use_sim_time false")
    if not alive or traceback:
        problems.append(traceback or "node died")
    measured = ", ".join(f"{label}: {n} depth outputs, {stats} stats in {JUMP_PHASE_S:g} s" for label, n, stats in phases)
    measured += (f"; node clock {node_time:.0f} s after the reset, {wall_error:.1f} s off the wall clock after "
                 f"use_sim_time false; node {'alive' if alive else 'DEAD'}")
    if problems:
        measured += " | PROBLEMS: " + "; ".join(problems)
    return not problems, measured, {"phases": phases, "node_time_after_reset_s": node_time,
                                    "wall_clock_error_s": wall_error}


# ================================================================ 4. parameter storm
PARAM_SETS = 1000
PARAM_STORM_S = 10.0
PARAM_SEED = 20

# rcl_interfaces/ParameterType ids and the ParameterValue field of each
PTYPE_FIELDS = {1: "bool_value", 2: "integer_value", 3: "double_value", 4: "string_value", 5: "byte_array_value",
                6: "bool_array_value", 7: "integer_array_value", 8: "double_array_value", 9: "string_array_value"}


def ptype_of(default: Any) -> int:
    """The ParameterType a declared default has (what the node's static typing requires)."""
    if isinstance(default, bool):
        return 1
    if isinstance(default, int):
        return 2
    if isinstance(default, float):
        return 3
    if isinstance(default, str):
        return 4
    return 9 if default and isinstance(default[0], str) else 7


@dataclass(frozen=True)
class ParamRule:
    """What a declared parameter accepts, written down independently of the node's checks."""

    ptype: int
    runtime: bool
    valid: Callable[[Any], bool] = lambda v: True
    pool: tuple[Any, ...] = ()  # plausible values (valid and invalid) to draw from


def param_rules() -> dict[str, ParamRule]:
    """Every declared parameter: type, run-time or not, the documented allowed values."""
    from meco_core.classes import GOLF
    from meco_core.inference import PRECISIONS, UPSAMPLE_MODES
    from meco_core.visualize import COLORMAPS

    from meco_ros.node.params import SPECS

    def in_range(lo: float, hi: float) -> Callable[[Any], bool]:
        return lambda v: math.isfinite(v) and lo <= v <= hi

    def one_of(options: tuple[str, ...]) -> Callable[[Any], bool]:
        return lambda v: v in options

    def size_ok(v: Any) -> bool:
        return len(v) == 2 and (list(v) == [0, 0] or all(16 <= x <= 8192 for x in v))

    def palette_ok(v: Any) -> bool:
        return 0 < len(v) and len(v) % 3 == 0 and len(v) >= 3 * GOLF.num_classes and all(0 <= x <= 255 for x in v)

    special: dict[str, tuple[Callable[[Any], bool], tuple[Any, ...]]] = {
        "precision": (one_of(PRECISIONS), ("fp32", "bf16", "int4", "FP32", "")),
        "upsample": (one_of(UPSAMPLE_MODES), ("bilinear", "nearest", "cubic")),
        "output_resolution": (one_of(("input", "inference")), ("input", "inference", "native")),
        "depth_colormap": (one_of(tuple(COLORMAPS)), (*COLORMAPS[:3], "rainbow", "")),
        "inference_size": (size_ok, ([96, 128], [64, 96], [128, 160], [15, 128], [96], [-1, 128], [96, 128, 3],
                                     [9000, 96])),
        "palette": (palette_ok, ([c for _ in range(5) for c in (10, 200, 30)], [1, 2], [0] * 15 + [256], [],
                                 [255, 255, 255] * 8)),
        "cloud.obstacle_classes": (lambda v: True, (["obstacle"], [], ["hazard", "no_such_class"])),
    }
    rules: dict[str, ParamRule] = {}
    for name, spec in {**SPECS, "palette": None}.items():
        default = [0, 0, 0] if spec is None else spec.default
        runtime = True if spec is None else spec.runtime
        if runtime and spec is not None and spec.check is not None and name not in special:
            raise RuntimeError(f"parameter_storm has no rule for run-time parameter {name!r}'s check: add it to "
                               "node_cases.param_rules")
        valid, pool = special.get(name, (lambda v: True, ()))
        if spec is not None and spec.range is not None:
            valid = in_range(*spec.range)
            lo, hi = spec.range
            pool = tuple(type(default)(x) for x in (lo, hi, (lo + hi) / 2 if isinstance(default, float) else lo + 1,
                                                    lo - 1, hi + 1)) + ((float("nan"),) if isinstance(default, float)
                                                                        else ())
        rules[name] = ParamRule(ptype_of(default), runtime, valid, pool)
    return rules


# values the node can live with while frames keep flowing (threads etc. stay small)
SAFE_POOLS: dict[str, tuple[Any, ...]] = {
    "threads": (0, 1, 2, -1, 257), "min_image_size": (1, 16, 64, 0, 10001), "max_frame_age": (0.0, 1.0, 5.0, -1.0),
    "cloud.stride": (1, 2, 4, 0, 65), "max_depth": (0.0, 20.0, 80.0, -5.0, float("nan"), float("inf")),
}


def random_name(rng: random.Random) -> str:
    """A name an operator might mistype: garbage, a near miss, empty, unicode, a deep path."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._/~- ü"
    kind = rng.randrange(5)
    if kind == 0:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
    if kind == 1:
        return rng.choice(["outputs.", "cloud.", "qos.input.", "topics.", "diagnostics."]) + \
            "".join(rng.choice(alphabet[:26]) for _ in range(rng.randrange(1, 10)))
    if kind == 2:
        return rng.choice(["", " ", ".", "/", "..", "precision ", "Precision", "inference_size/0", "palette.r"])
    if kind == 3:
        return "x" * rng.randrange(200, 2000)
    return rng.choice(["thread", "precisions", "max-depth", "outputs.depth.color", "cloud_stride"])


def random_value(rng: random.Random, ptype: int) -> Any:
    """A random value of a ParameterType (edge values included: NaN, inf, huge ints, unicode)."""
    ints = (0, 1, -1, 2, 7, 16, 255, 256, 10**6, 2**63 - 1, -2**63)
    floats = (0.0, 0.5, 1.0, -1.0, 2.5, 1e9, float("nan"), float("inf"), -float("inf"), 1e-300)
    strings = ("", "fp16", "bilinear", "input", "turbo", "ü" * 5, "x" * 5000, "a\tb", "{}", "[1, 2]")
    scalar: dict[int, Callable[[], Any]] = {
        1: lambda: rng.random() < 0.5, 2: lambda: rng.choice(ints), 3: lambda: rng.choice(floats),
        4: lambda: rng.choice(strings), 5: lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(8)))}
    if ptype in scalar:
        return scalar[ptype]()
    base = {6: 1, 7: 2, 8: 3, 9: 4}[ptype]
    return [scalar[base]() for _ in range(rng.randrange(0, 7))]


def param_value_msg(ptype: int, value: Any) -> Any:
    """rcl_interfaces/ParameterValue of an explicit type (NOT_SET: type 0, no value)."""
    from rcl_interfaces.msg import ParameterValue

    msg = ParameterValue(type=ptype)
    if ptype:
        setattr(msg, PTYPE_FIELDS[ptype], [bytes([b]) for b in value] if ptype == 5 else value)
    return msg


def draw_param(rng: random.Random, rules: dict[str, ParamRule]) -> tuple[str, int, Any]:
    """(name, type, value): a mix of unknown names, read-only ones, wrong types, and run-time
    parameters with plausible values (valid and invalid)."""
    runtime = sorted(n for n, r in rules.items() if r.runtime)
    roll = rng.random()
    if roll < 0.15:
        return random_name(rng), rng.randrange(0, 10), None
    if roll < 0.25:
        name = rng.choice(sorted(n for n, r in rules.items() if not r.runtime))
        return name, rng.choice([rules[name].ptype, rng.randrange(0, 10)]), None
    name = rng.choice(runtime)
    rule = rules[name]
    if roll < 0.35:
        return name, rng.choice([t for t in range(0, 10) if t != rule.ptype]), None
    pool = SAFE_POOLS.get(name) or rule.pool
    if pool and rng.random() < 0.8:
        return name, rule.ptype, rng.choice(pool)
    return name, rule.ptype, None


def expected_valid(rules: dict[str, ParamRule], name: str, ptype: int, value: Any) -> bool:
    """Whether the node must accept the set (declared, run-time, its type, an allowed value)."""
    rule = rules.get(name)
    if rule is None or not rule.runtime or ptype != rule.ptype:
        return False
    try:
        return bool(rule.valid(value))
    except (TypeError, ValueError):
        return False


def same_value(a: Any, b: Any) -> bool:
    """Read-back equality (lists from arrays, floats exact)."""
    if isinstance(a, (list, tuple)) or hasattr(a, "tolist"):
        return list(a) == list(b)
    return a == b


def fixed_by_backend(rules: dict[str, ParamRule], client: Client, target: NodeUnderTest,
                     initial: dict[str, Any]) -> dict[str, ParamRule]:
    """An ONNX backend (onnxruntime, tensorrt) fixes precision and inference_size at start: then
    only the running values are valid (inference_size: the size /diagnostics reports, or [0, 0]
    = the export's own)."""
    import json
    from dataclasses import replace

    # the backend the node runs (its 'ready' line), not the parameter: the random-weight dev
    # model runs on torch whatever the params file asks for
    running = re.search(r"ready: model .*?\(backend (\w+)", target.proc.output)
    if running is None or running.group(1) == "torch":
        return rules
    size = json.loads(client.latest_diagnostics().get("inference size", "null") or "null")
    sizes = [[0, 0], *([list(size)] if size else [])]
    precision = initial.get("precision")
    return {**rules,
            "inference_size": replace(rules["inference_size"], valid=lambda v: list(v) in sizes),
            "precision": replace(rules["precision"], valid=lambda v: v == precision)}


@dataclass
class StormTally:
    """What the storm saw."""

    sets: int = 0
    expected_valid: int = 0
    accepted: int = 0
    rejected: int = 0
    read_back_ok: int = 0
    no_reason: int = 0
    timeouts: int = 0
    mismatches: list[str] = field(default_factory=list)


def set_one(client: Client, target: NodeUnderTest, name: str, ptype: int, value: Any) -> Any | None:
    """One /set_parameters request with one parameter; its SetParametersResult (None: no answer)."""
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.srv import SetParameters

    req = SetParameters.Request(parameters=[ParameterMsg(name=name, value=param_value_msg(ptype, value))])
    res = client.call(SetParameters, target.fqn("set_parameters"), req, timeout=5.0)
    return res.results[0] if res is not None and res.results else None


def get_values(client: Client, target: NodeUnderTest, names: list[str]) -> list[Any] | None:
    """Current values (python) of `names` over /get_parameters."""
    from rcl_interfaces.srv import GetParameters

    res = client.call(GetParameters, target.fqn("get_parameters"), GetParameters.Request(names=names), timeout=5.0)
    if res is None:
        return None
    return [getattr(v, PTYPE_FIELDS[v.type]) if v.type else None for v in res.values]


def list_names(client: Client, target: NodeUnderTest) -> list[str]:
    """Every parameter name the node has (/list_parameters): a rejected set must not add one."""
    from rcl_interfaces.srv import ListParameters

    res = client.call(ListParameters, target.fqn("list_parameters"), ListParameters.Request(), timeout=5.0)
    return list(res.result.names) if res is not None else []


def storm(client: Client, target: NodeUnderTest, rules: dict[str, ParamRule], rng: random.Random) -> StormTally:
    """PARAM_SETS sets paced over PARAM_STORM_S s; each valid one read back at once."""
    tally = StormTally()
    t0 = time.monotonic()
    for i in range(PARAM_SETS):
        wait = t0 + i * PARAM_STORM_S / PARAM_SETS - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        name, ptype, value = draw_param(rng, rules)
        if value is None and ptype:
            value = random_value(rng, ptype)
        want = expected_valid(rules, name, ptype, value)
        tally.sets += 1
        tally.expected_valid += want
        result = set_one(client, target, name, ptype, value)
        if result is None:
            tally.timeouts += 1
            if not target.alive():  # the node died: say so now, not after the rest of the storm times out
                tally.mismatches.append(f"node died after setting {name[:40]!r}={str(value)[:40]} (type {ptype})")
                break
            continue
        tally.accepted += result.successful
        tally.rejected += not result.successful
        if not result.successful and not result.reason.strip():
            tally.no_reason += 1
        if result.successful != want:
            tally.mismatches.append(f"{name[:40]!r}={str(value)[:40]} (type {ptype}): expected "
                                    f"{'accept' if want else 'reject'}, got "
                                    f"{'accepted' if result.successful else 'rejected: ' + result.reason[:80]}")
        elif want:
            back = get_values(client, target, [name])
            if back is not None and same_value(back[0], value if ptype != 5 else list(value)):
                tally.read_back_ok += 1
            else:
                tally.mismatches.append(f"{name}: set {str(value)[:40]}, read back {str(back)[:40]}")
    return tally


def restore(client: Client, target: NodeUnderTest, rules: dict[str, ParamRule], initial: dict[str, Any]) -> bool:
    """Set every run-time parameter back to its value before the storm."""
    ok = True
    for name, value in initial.items():
        res = set_one(client, target, name, rules[name].ptype, value)
        ok &= res is not None and res.successful
    return ok


@fault_case("parameter_storm",
            f"{PARAM_SETS} /set_parameters calls in {PARAM_STORM_S:g} s with random names, types and values: every "
            "invalid one rejected with a reason, every valid run-time one accepted and read back, outputs "
            "continue (and after restoring), same PID, no restart", fast=True)
def parameter_storm(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    rules = param_rules()
    runtime = sorted(n for n, r in rules.items() if r.runtime)
    with running_node(ctx, "params") as target, \
            client_for(target, "fault_param_client", watch_depth_and_status) as client:
        pid = target.pid
        with streaming(client, 10.0, image_msg(240, 320)) as cam:
            wait_until(lambda: bool(client.received("depth")) and client.latest_stats() is not None, 20.0)
            values = get_values(client, target, runtime) or []
            initial = dict(zip(runtime, values))
            rules = fixed_by_backend(rules, client, target, initial)
            names_before = list_names(client, target)
            start, sent_before, stats_before = time.time_ns(), len(cam.sent), client.latest_stats()
            t0 = time.monotonic()
            tally = storm(client, target, rules, random.Random(PARAM_SEED))
            storm_s = time.monotonic() - t0
            during = len(outputs_since(client, "depth", start))
            sent, stats_after = len(cam.sent) - sent_before, client.latest_stats()
            new_names = sorted(set(list_names(client, target)) - set(names_before))
            restored = len(initial) == len(runtime) and restore(client, target, rules, initial)
            after_ns = time.time_ns()
            resumed = wait_until(lambda: len(outputs_since(client, "depth", after_ns)) >= 3, 10.0)
        same_pid = target.alive() and target.pid == pid and target.proc.output.count("ready: model") == 1
        traceback = check_log(target)
    received = stats_after.frames_received - stats_before.frames_received
    processed = stats_after.frames_processed - stats_before.frames_processed
    problems = []
    if tally.mismatches:
        problems.append(f"{len(tally.mismatches)} wrong answers, e.g. {tally.mismatches[0]}")
    if tally.no_reason:
        problems.append(f"{tally.no_reason} rejections without a reason")
    if tally.timeouts:
        problems.append(f"{tally.timeouts} sets unanswered")
    if not during or not resumed:
        problems.append(f"outputs: {during} during the storm, {'resumed' if resumed else 'NOT resumed'} after")
    if not restored:
        problems.append("restoring the initial values failed")
    if new_names:
        problems.append(f"parameters that appeared: {[n[:40] for n in new_names][:5]}")
    if not same_pid:
        problems.append("node died or restarted")
    if traceback:
        problems.append(traceback)
    measured = (f"{tally.sets} sets in {storm_s:.1f} s: {tally.expected_valid} valid -> {tally.accepted} accepted "
                f"({tally.read_back_ok} read back equal), {tally.rejected} rejected ({tally.no_reason} without a "
                f"reason), {tally.timeouts} unanswered, {len(new_names)} new parameter names; frames during: {sent} sent, "
                f"{received} received, {processed} processed, {during} depth outputs; resumed after restore: "
                f"{resumed}; same PID {pid}: {same_pid}")
    if problems:
        measured += " | PROBLEMS: " + "; ".join(problems)
    return not problems, measured, {"tally": asdict(tally), "seconds": storm_s, "seed": PARAM_SEED}


# ================================================================ 5. lifecycle cycles
LIFECYCLE_CYCLES = 50
RSS_TOLERANCE = 0.05


def transition(client: Client, target: NodeUnderTest, transition_id: int) -> bool:
    """One ~/change_state call (a configure builds and warms up the model: long timeout)."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    res = client.call(ChangeState, target.fqn("change_state"),
                      ChangeState.Request(transition=Transition(id=transition_id)), timeout=120.0)
    return bool(res is not None and res.success)


def one_cycle(client: Client, target: NodeUnderTest) -> dict[str, Any]:
    """configure, activate, a depth output, deactivate, cleanup; then /proc figures."""
    from lifecycle_msgs.msg import Transition

    t0 = time.monotonic()
    row: dict[str, Any] = {}
    for label, tid in (("configure", Transition.TRANSITION_CONFIGURE), ("activate", Transition.TRANSITION_ACTIVATE)):
        if not transition(client, target, tid):
            return {"error": f"{label} failed"}
    since = time.time_ns()
    row["output"] = wait_until(lambda: bool(outputs_since(client, "depth", since)), 15.0)
    for label, tid in (("deactivate", Transition.TRANSITION_DEACTIVATE), ("cleanup", Transition.TRANSITION_CLEANUP)):
        if not transition(client, target, tid):
            return {"error": f"{label} failed"}
    time.sleep(0.3)  # let stopped threads exit before counting them
    row.update(target.resources(), seconds=time.monotonic() - t0)
    return row


@fault_case("lifecycle_cycles",
            f"{LIFECYCLE_CYCLES} configure/activate/deactivate/cleanup cycles over ~/change_state (autostart false): "
            f"outputs in every active phase; after cycle {LIFECYCLE_CYCLES} (unconfigured) RSS within "
            f"{RSS_TOLERANCE:.0%} of cycle 1, threads and open fds equal to cycle 1", fast=False)
def lifecycle_cycles(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    from sensor_msgs.msg import Image

    with running_node(ctx, "lifecycle", ready_text="waiting for lifecycle transitions", autostart=False) as target, \
            client_for(target, "fault_lifecycle_manager", lambda c: c.watch("depth", Image)) as client:
        with streaming(client, 10.0, image_msg(120, 160)):
            rows = [one_cycle(client, target) for _ in range(LIFECYCLE_CYCLES)]
        alive, traceback = target.alive(), check_log(target)
    errors = [r["error"] for r in rows if "error" in r]
    good = [r for r in rows if "error" not in r]
    problems = [f"{len(errors)} cycles failed: {errors[0]}"] if errors else []
    if len(good) < 2:
        return False, "; ".join(problems) or "no complete cycle", {"cycles": rows}
    first, last = good[0], good[-1]
    rss_change = last["rss_kb"] / first["rss_kb"] - 1
    no_output = sum(1 for r in good if not r["output"])
    if no_output:
        problems.append(f"{no_output} active phases without a depth output")
    if abs(rss_change) > RSS_TOLERANCE:
        problems.append(f"RSS {rss_change:+.1%}")
    for key in ("threads", "fds"):
        if last[key] != first[key]:
            problems.append(f"{key} {first[key]} -> {last[key]}")
    if not alive or traceback:
        problems.append(traceback or "node died")
    measured = (f"{len(good)}/{LIFECYCLE_CYCLES} cycles; cycle 1 -> {len(good)}: RSS {first['rss_kb'] / 1024:.0f} -> "
                f"{last['rss_kb'] / 1024:.0f} MB ({rss_change:+.1%}), threads {first['threads']} -> {last['threads']}, "
                f"fds {first['fds']} -> {last['fds']}; RSS max {max(r['rss_kb'] for r in good) / 1024:.0f} MB; "
                f"outputs in {len(good) - no_output} active phases; {summary([r['seconds'] for r in good])} per cycle")
    if problems:
        measured += " | PROBLEMS: " + "; ".join(problems)
    return not problems, measured, {"cycles": rows}


# ================================================================ 6. malformed compressed images
def png_with_size(png: bytes, width: int, height: int, fix_crc: bool = True) -> bytes:
    """A PNG whose IHDR claims width x height (CRC recomputed unless fix_crc is False)."""
    b = bytearray(png)
    b[16:24] = struct.pack(">II", width, height)
    if fix_crc:
        b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)


BURST_PERIOD_S = 1 / 30
NOISE = "50 MB of noise"


def malformed_bursts() -> dict[str, list[tuple[str, bytes]]]:
    """kind -> [(format, data)]: truncated JPEGs, PNGs with lying headers, empty, 50 MB noise."""
    import cv2

    bgr = cv2.cvtColor(test_image(240, 320), cv2.COLOR_RGB2BGR)
    jpg = cv2.imencode(".jpg", bgr)[1].tobytes()
    png = cv2.imencode(".png", bgr)[1].tobytes()
    noise = random.Random(6).randbytes(50 * 1024 * 1024)
    return {
        "truncated JPEG": [("jpeg", jpg[: int(len(jpg) * f)]) for f in (0.05, 0.3, 0.6, 0.9, 0.999)],
        "PNG with a lying header": [("png", png_with_size(png, 4096, 4096)), ("png", png_with_size(png, 320, 2400)),
                                    ("png", png_with_size(png, 30000, 30000)),
                                    ("png", png_with_size(png, 100000, 100000)),
                                    ("png", png_with_size(png, 640, 480, fix_crc=False))],
        "0 bytes": [("jpeg", b""), ("png", b""), ("rgb8; jpeg compressed bgr8", b"")],
        NOISE: [("jpeg", noise), ("png", noise)],
    }


def received_total(client: Client) -> int:
    """frames_received of the newest Stats (0 before the first)."""
    s = client.latest_stats()
    return int(s.frames_received) if s is not None else 0


def send_burst(client: Client, pub: Any, items: list[tuple[str, bytes]], confirm: bool) -> tuple[int, list[int]]:
    """Publish `items` at a camera's rate; (messages sent, their stamps). With `confirm` each
    is resent (up to 4 times, 1.5 s apart) until the node's received counter moves: Fast DDS
    does not always deliver a 50 MB best-effort message, and a message that never reached
    the node says nothing about the node."""
    from sensor_msgs.msg import CompressedImage

    sent, stamps = 0, []
    for fmt, data in items:
        for _ in range(4 if confirm else 1):
            before = received_total(client)
            stamp = time.time_ns()
            msg = CompressedImage(format=fmt, data=data)
            msg.header.stamp, msg.header.frame_id = ros_stamp(stamp), "camera"
            pub.publish(msg)
            stamps.append(stamp)
            sent += 1
            time.sleep(BURST_PERIOD_S)  # a camera's rate: the node's KEEP_LAST 1 input keeps only the newest
            if not confirm or wait_until(lambda n=before: received_total(client) > n, 1.5):
                break
    return sent, stamps


def good_compressed(stamp: int) -> Any:
    """A valid JPEG CompressedImage."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    bgr = cv2.cvtColor(test_image(240, 320), cv2.COLOR_RGB2BGR)
    msg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", bgr)[1].tobytes())
    msg.header.stamp, msg.header.frame_id = ros_stamp(stamp), "camera"
    return msg


def good_frames_answered(client: Client, pub: Any, timeout: float = 15.0) -> bool:
    """Publish good JPEGs every 0.2 s until one of them comes back as depth."""
    since = time.time_ns()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pub.publish(good_compressed(time.time_ns()))
        if wait_until(lambda: bool(outputs_since(client, "depth", since)), 0.2):
            return True
    return False


def counters(client: Client, after: float) -> dict[str, int]:
    """received/processed/dropped/invalid totals from the first Stats sent after `after`
    (time.time()), plus the per-case 'invalid compressed' of /diagnostics."""
    n = len(client.stats)
    wait_until(lambda: len(client.stats) > n + 1 and time.time() > after, 10.0)
    s = client.latest_stats()
    diag = client.latest_diagnostics()
    return {"received": s.frames_received, "processed": s.frames_processed, "dropped": s.frames_dropped,
            "invalid": s.frames_invalid, "errors": s.inference_errors,
            "invalid compressed": int(diag.get("invalid compressed", 0))}


@fault_case("malformed_compressed",
            "bursts at 30 Hz of malformed CompressedImage (5 truncated JPEGs, 5 PNGs with lying headers, 3 x 0 bytes, "
            "2 x 50 MB of noise): every one that reaches the node counted (invalid, or dropped unseen), none "
            "published, "
            "node alive and answering good frames after", fast=True)
def malformed_compressed(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    from sensor_msgs.msg import CompressedImage

    bursts = malformed_bursts()
    with running_node(ctx, "malformed", **{"topics.image_compressed": "image/compressed"}) as target, \
            client_for(target, "fault_malformed_camera", watch_depth_and_status) as client:
        pub = client.publisher("image/compressed", CompressedImage)
        before_ok = good_frames_answered(client, pub)
        time.sleep(0.5)
        before = counters(client, time.time())
        rss_before = target.resources()["rss_kb"]
        sent, stamps = 0, []
        for kind, items in bursts.items():
            n, kind_stamps = send_burst(client, pub, items, confirm=kind == NOISE)
            sent += n
            stamps += kind_stamps
            time.sleep(0.5)
        time.sleep(1.0)
        after = counters(client, time.time())
        rss_after = target.resources()["rss_kb"]
        published = [r for r in client.received("depth") if r.stamp_ns in set(stamps)]
        after_ok = good_frames_answered(client, pub)
        alive, traceback = target.alive(), check_log(target)
    delta = {k: after[k] - before[k] for k in before}
    problems = []
    if not before_ok:
        problems.append("no output for good frames before the bursts")
    small = sum(len(v) for k, v in bursts.items() if k != NOISE)
    if delta["received"] < small + len(bursts[NOISE]):
        problems.append(f"{delta['received']} received of {sent} sent (each small one and one of each 50 MB "
                        "message must arrive)")
    if delta["invalid"] + delta["dropped"] != delta["received"]:
        problems.append(f"invalid {delta['invalid']} + dropped {delta['dropped']} != {delta['received']} received")
    if delta["invalid compressed"] != delta["invalid"]:
        problems.append(f"/diagnostics 'invalid compressed' +{delta['invalid compressed']} != invalid "
                        f"+{delta['invalid']}")
    if delta["errors"]:
        problems.append(f"{delta['errors']} counted as processing errors, not as invalid input")
    if delta["processed"] or published:
        problems.append(f"{delta['processed']} processed, {len(published)} published")
    if not after_ok or not alive:
        problems.append("node not answering good frames after" if alive else "node died")
    if traceback:
        problems.append(traceback)
    measured = (f"{sent} malformed sent ({', '.join(f'{len(v)} {k}' for k, v in bursts.items())}, 50 MB ones resent "
                f"until one arrived): received "
                f"{delta['received']}, invalid {delta['invalid']} ('invalid compressed' in /diagnostics "
                f"+{delta['invalid compressed']}), dropped {delta['dropped']}, errors {delta['errors']}, processed "
                f"{delta['processed']}; "
                f"RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB; good frames answered after: {after_ok}")
    if problems:
        measured += " | PROBLEMS: " + "; ".join(problems)
    return not problems, measured, {"delta": delta, "sent": sent}


# ================================================================ helper processes
def main(argv: list[str] | None = None) -> int:
    """`python -m meco_ros.bench.faults.node_cases camera ...`: the camera process of case 1."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["camera"]:
        return camera_main(argv[1:])
    print("usage: python -m meco_ros.bench.faults.node_cases camera --topic T [--size HxW] [--rate HZ]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
