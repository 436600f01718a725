"""The shared harness of the fault cases against the real `perception_node` process (issue 20):
the node under test, a client in this process, test frames and a camera that streams them, the
parameter service calls, and the small measures the cases report. The cases themselves live in
stream_cases (camera restarts, image size and camera_info, stamp and clock jumps), control_cases
(parameter storm, lifecycle cycling) and input_cases (malformed compressed images).

Why real processes: every case starts the installed `perception_node` executable
(meco_ros.proc.start_node, config/golf_cart.yaml plus a few overrides) in a namespace of
its own on the context's ROS domain, and talks to it over real DDS from a client in this
process (`Client`) or, for the camera restarts, from separate camera processes
(`python -m meco_ros.bench.faults.stream_cases camera ...`), so what is measured is what a vehicle
would see. With `ctx.checkpoint` None the node runs the random-weight dev model at a small
inference size (the pipeline is the same, and the cases stay fast on a small CPU).

Every wait has a timeout; every case stops its node (SIGINT, then SIGKILL) and its
helpers, whatever happens.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from meco_core.stamps import stamp_to_ns, to_stamp
from meco_ros.bench.faults.base import FaultContext
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


# ================================================================ parameters over services
# (the parameter storm, and the clock case's switch to the wall clock)
# rcl_interfaces/ParameterType ids and the ParameterValue field of each
PTYPE_FIELDS = {1: "bool_value", 2: "integer_value", 3: "double_value", 4: "string_value", 5: "byte_array_value",
                6: "bool_array_value", 7: "integer_array_value", 8: "double_array_value", 9: "string_array_value"}


def param_value_msg(ptype: int, value: Any) -> Any:
    """rcl_interfaces/ParameterValue of an explicit type (NOT_SET: type 0, no value)."""
    from rcl_interfaces.msg import ParameterValue

    msg = ParameterValue(type=ptype)
    if ptype:
        setattr(msg, PTYPE_FIELDS[ptype], [bytes([b]) for b in value] if ptype == 5 else value)
    return msg


def set_one(client: Client, target: NodeUnderTest, name: str, ptype: int, value: Any) -> Any | None:
    """One /set_parameters request with one parameter; its SetParametersResult (None: no answer)."""
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.srv import SetParameters

    req = SetParameters.Request(parameters=[ParameterMsg(name=name, value=param_value_msg(ptype, value))])
    res = client.call(SetParameters, target.fqn("set_parameters"), req, timeout=5.0)
    return res.results[0] if res is not None and res.results else None
