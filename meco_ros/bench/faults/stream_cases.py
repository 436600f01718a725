"""Fault cases on the node's input stream (issue 20): camera publisher restarts, image size
and camera_info changes, stamps and clocks that jump. The node, the client and the frames come
from node_harness.

Why a `main` here: the camera restarts need cameras in processes of their own, to SIGKILL them
like a crashed driver; they run this module (`python -m meco_ros.bench.faults.stream_cases
camera ...`).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from meco_core.stamps import NS_PER_S, stamp_to_ns
from meco_ros.bench.faults.base import FaultContext, fault_case
from meco_ros.bench.bench_camera import camera_info_msg
from meco_ros.bench.faults.node_harness import (Client, NodeUnderTest, Streamer, check_log, client_for,
                                                image_msg, outputs_since, ros_stamp, running_node, set_one, streaming,
                                                summary, wait_until, watch_depth_and_status)
from meco_ros.dds_shm import MIN_AGE_S, STALE_CHECK_PERIOD_S, segment_names
from meco_ros.proc import REPO, Process, ros_env


# ================================================================ 1. camera publisher restarts
CAMERA_RESTARTS = 20
RESUME_LIMIT_S = 1.0


def camera_main(argv: list[str]) -> int:
    """A camera process: wait until the node's subscription matched, then publish a frame
    every 1/rate s (stamped with wall time) until killed; print one JSON line at the first
    publish, so the case knows when the new publisher's first image went out."""
    ap = argparse.ArgumentParser(prog="stream_cases camera")
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
    return 0  # no DDS teardown: the process ends through exit_without_dds_teardown (main)


def start_camera(target: NodeUnderTest, size: str = "240x320", rate: float = 30.0) -> Process:
    """A camera process on the node's image topic, in its domain."""
    cmd = [sys.executable, "-m", "meco_ros.bench.faults.stream_cases", "camera", "--topic", f"{target.ns}/image",
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


# ================================================================ helper processes
def main(argv: list[str] | None = None) -> int:
    """`python -m meco_ros.bench.faults.stream_cases camera ...`: the camera process of case 1."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["camera"]:
        return camera_main(argv[1:])
    print("usage: python -m meco_ros.bench.faults.stream_cases camera --topic T [--size HxW] [--rate HZ]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    from meco_ros.node.process_guards import exit_without_dds_teardown

    exit_without_dds_teardown(main())  # Fast DDS teardown can block (process_guards)
