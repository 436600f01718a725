"""The node's building blocks without DDS: mailbox, input checks, outputs, parameter checks."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo

from conftest import own_domain_id
from meco_ros.node import outputs, params
from meco_ros.node.frames import Frame, InvalidFrame, check_raw, frame_to_rgb
from meco_ros.image_conversion import cv2_to_imgmsg
from meco_ros.node.monitoring import PipelineStats, RateLimitedLog
from meco_ros.node.worker import Mailbox, Stage


def test_mailbox_keeps_only_the_newest():
    box: Mailbox[int] = Mailbox()
    assert box.put(1) is None
    assert box.put(2) == 1  # 1 was superseded: the caller counts it dropped
    assert box.get(0.1) == 2 and box.get(0.05) is None
    assert box.put_wait(3, 0.1) and not box.put_wait(4, 0.05)  # hand-over never replaces
    assert box.get(0.1) == 3 and box.put_wait(4, 0.1)
    box.close()
    assert box.get(1.0) is None and not box.put_wait(5, 1.0)


def test_worker_processes_newest_and_survives_errors():
    box: Mailbox[int] = Mailbox()
    seen, errors = [], []
    holding, gate, done = threading.Event(), threading.Event(), threading.Event()

    def process(item: int) -> None:
        holding.set()
        assert gate.wait(5), "the test never opened the gate"
        if item == 0:
            raise RuntimeError("bad frame")
        seen.append(item)
        done.set()

    worker = Stage(box, process, errors.append)
    worker.start()
    box.put(0)
    assert holding.wait(5), "the worker never took frame 0"  # it holds frame 0 at the gate
    dropped = [box.put(i) for i in range(1, 6)]
    gate.set()
    assert done.wait(5), "no frame processed after the error"
    assert worker.stop(5)
    assert seen == [5] and len(errors) == 1 and dropped == [None, 1, 2, 3, 4]


def test_niced_stage_lowers_only_its_own_thread():
    """The publish stage yields the cores to inference: its thread (not the process) is reniced."""
    import os

    box: Mailbox[int] = Mailbox()
    seen: list[tuple[int, int]] = []
    done = threading.Event()
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def process(_: int) -> None:
        seen.append((threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        done.set()

    worker = Stage(box, process, lambda exc: None, nice=5)
    worker.start()
    box.put(1)
    assert done.wait(5), "the niced stage processed nothing"
    assert worker.stop(5)
    assert seen and seen[0][1] == min(19, before + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_check_raw_cases():
    rgb = np.zeros((20, 30, 3), np.uint8)
    good = cv2_to_imgmsg(rgb, "rgb8")
    assert check_raw(good, 16).shape == (20, 30, 3)
    cases = {
        "encoding": dict(encoding="rgb9000"), "empty": dict(height=0), "step": dict(step=10),
        "data": dict(data=good.data[:100]), "tiny": dict(), "nonfinite": None,
    }
    for case, fields in cases.items():
        if case == "nonfinite":
            msg = cv2_to_imgmsg(np.full((20, 30), np.nan, np.float32), "32FC1")
        else:
            msg = cv2_to_imgmsg(rgb, "rgb8")
            for k, v in fields.items():
                setattr(msg, k, v)
        with pytest.raises(InvalidFrame) as info:
            check_raw(msg, 25 if case == "tiny" else 16)
        assert info.value.case == case
    bgr = cv2_to_imgmsg(np.dstack([np.zeros((20, 30), np.uint8)] * 2 + [np.full((20, 30), 9, np.uint8)]), "bgr8")
    out = frame_to_rgb(Frame(bgr, False, check_raw(bgr, 16)), 16)
    assert (out[..., 0] == 9).all() and (out[..., 2] == 0).all()


def test_camera_intrinsics_from_camera_info():
    """camera_info -> (fx, fy, cx, cy) of the image in hand, or None (with the reason) when it is
    for another size (binning and ROI taken into account), uncalibrated, or its K is invalid."""
    from meco_ros.node.frames import camera_intrinsics

    info = CameraInfo(width=160, height=120, k=[400.0, 0, 80.5, 0, 410.0, 60.5, 0, 0, 1])
    assert camera_intrinsics(info, 120, 160) == ((400.0, 410.0, 80.5, 60.5), None)
    intr, why = camera_intrinsics(info, 240, 320)   # a camera_info for another size is not rescaled
    assert intr is None and "160x120" in why and "320x240" in why
    intr, why = camera_intrinsics(CameraInfo(), 120, 160)
    assert intr is None and "uncalibrated" in why
    for k in ([0.0, 0, 80, 0, 410.0, 60, 0, 0, 1], [400.0, 0, 80, 0, -1.0, 60, 0, 0, 1],
              [400.0, 0, 80, 0, float("nan"), 60, 0, 0, 1], [400.0, 0, float("inf"), 0, 410.0, 60, 0, 0, 1]):
        intr, why = camera_intrinsics(CameraInfo(width=160, height=120, k=k), 120, 160)
        assert intr is None and "K" in why, k
    # REP 104: K and size at full resolution; the published image is the ROI, binned
    binned = CameraInfo(width=320, height=240, binning_x=2, binning_y=2, k=[800.0, 0, 160, 0, 820.0, 120, 0, 0, 1])
    assert camera_intrinsics(binned, 120, 160)[0] == (400.0, 410.0, 80.0, 60.0)
    assert camera_intrinsics(binned, 240, 320)[0] is None
    roi = CameraInfo(width=1280, height=960, k=[1000.0, 0, 640, 0, 1000.0, 480, 0, 0, 1])
    roi.roi.x_offset, roi.roi.y_offset, roi.roi.width, roi.roi.height = 320, 240, 640, 480
    assert camera_intrinsics(roi, 480, 640)[0] == (1000.0, 1000.0, 320.0, 240.0)


def test_frame_camera_counts_ignored_infos_and_logs_each_change_once():
    from meco_core.camera import check_intrinsics
    from meco_ros.node.frames import FrameCamera

    warns, notes = [], []
    cam = FrameCamera(lambda key, msg: warns.append(msg), lambda key, msg: notes.append(msg))
    for _ in range(3):
        assert cam.for_image(120, 160) is None      # no camera_info yet: the default camera, said once
    assert len(notes) == 1 and "no camera_info" in notes[0] and cam.status.startswith("default")
    cam.info = CameraInfo(width=320, height=240, k=[400.0, 0, 160, 0, 400.0, 120, 0, 0, 1])
    for _ in range(3):
        assert cam.for_image(120, 160) is None      # another size: ignored, counted, warned once
    assert cam.ignored == 3 and len(warns) == 1 and "320x240" in warns[0] and "ignored" in warns[0]
    assert "320x240" in cam.status
    cam.info = CameraInfo(width=160, height=120, k=[400.0, 0, 80, 0, 0.0, 60, 0, 0, 1])
    assert cam.for_image(120, 160) is None and cam.ignored == 4 and len(warns) == 2   # a new reason: warned
    cam.info = CameraInfo(width=160, height=120, k=[400.0, 0, 80, 0, 410.0, 60, 0, 0, 1])
    for _ in range(2):
        intr = cam.for_image(120, 160)
        assert intr == (400.0, 410.0, 80.0, 60.0) and check_intrinsics(intr) == intr   # what infer() takes
    assert len(notes) == 2 and "fy 410.0" in notes[1] and cam.status.startswith("camera_info")
    assert cam.for_image(120, 160, enabled=False) is None and "use_camera_info is false" in cam.status
    assert cam.ignored == 4 and len(warns) == 2


def test_colorize():
    depth = np.array([[np.nan, 0.5, 5.0, 80.0, np.inf]], np.float32)
    col = outputs.colorize_depth(depth, 80.0)
    assert col.shape == (1, 5, 3) and col.dtype == np.uint8
    assert (col[0, 0] == 0).all() and not (col[0, 1] == col[0, 3]).all()
    lut = outputs.palette_lut([10, 20, 30, 40, 50, 60])
    labels = np.array([[0, 1, 255]], np.uint8)
    assert outputs.colorize_labels(labels, lut).tolist() == [[[10, 20, 30], [40, 50, 60], [0, 0, 0]]]
    rgb = np.full((1, 3, 3), 200, np.uint8)
    assert outputs.colorize_labels(labels, lut, 0.5, rgb)[0, 0].tolist() == [105, 110, 115]


def test_scale_camera_info_undoes_binning_and_roi():
    info = CameraInfo(width=1280, height=960, binning_x=2, binning_y=2, distortion_model="plumb_bob")
    info.k = [1000.0, 0, 640, 0, 1000.0, 480, 0, 0, 1]
    info.p = [1000.0, 0, 640, -50.0, 0, 1000.0, 480, 0, 0, 0, 1, 0]
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 0, 0, 0, 0
    out = outputs.scale_camera_info(info, 240, 320, header=info.header)
    # binned image is 640x480 -> output 320x240: overall factor 1/4 of full resolution
    assert (out.width, out.height, out.binning_x) == (320, 240, 0)
    assert np.allclose(out.k, [250, 0, 160, 0, 250, 120, 0, 0, 1])
    assert np.allclose(out.p, [250, 0, 160, -12.5, 0, 250, 120, 0, 0, 0, 1, 0])
    roi = CameraInfo(width=1280, height=960, k=info.k, p=info.p)
    roi.roi.x_offset, roi.roi.y_offset, roi.roi.width, roi.roi.height = 320, 240, 640, 480
    out = outputs.scale_camera_info(roi, 480, 640, header=roi.header)
    assert np.allclose(out.k, [1000, 0, 320, 0, 1000, 240, 0, 0, 1])


def test_parameter_checks():
    ok = params.validate([Parameter("precision", value="bf16"), Parameter("inference_size", value=[96, 128])])
    assert ok.successful
    for name, value, words in [("precision", "int4", "fp32"), ("inference_size", [-1, 128], "16 <= H, W"),
                               ("inference_size", [96], "[H, W]"), ("device", "gpu", "cuda"),
                               ("palette", [1, 2, 3, 4], "3 per class"), ("topics.depth", "", "topic"),
                               ("model_config", "[1, 2]", "mapping")]:
        res = params.validate([Parameter(name, value=value)])
        assert not res.successful and name in res.reason and words in res.reason, (name, res.reason)
    res = params.validate([Parameter("palette", value=[1, 2, 3])], num_classes=5)
    assert not res.successful and "5 classes" in res.reason
    # a backend that fixed the size (ONNX): an invalid size is refused with its own reason (it
    # used to raise inside the callback and end the node), another valid size as fixed
    fixed = {"inference_size": (240, 320), "precision": "fp32"}
    res = params.validate([Parameter("inference_size", value=[15, 128])], fixed=fixed)
    assert not res.successful and "16 <= H, W" in res.reason, res.reason
    res = params.validate([Parameter("inference_size", value=[96, 128])], fixed=fixed)
    assert not res.successful and "fixed at" in res.reason, res.reason
    assert params.validate([Parameter("inference_size", value=[240, 320])], fixed=fixed).successful
    assert params.parse_model_config("backbone=vit_tiny_patch16_224,channels=32") == \
        {"backbone": "vit_tiny_patch16_224", "channels": 32}
    assert params.parse_model_config("{channels: 32}") == {"channels": 32}
    d = params.descriptor("threads", params.SPECS["threads"])
    assert d.integer_range[0].to_value == 256 and not d.read_only
    assert params.descriptor("device", params.SPECS["device"]).read_only


def test_rate_limited_log_per_case():
    got: list[str] = []
    log = RateLimitedLog(got.append, period=60)
    for _ in range(3):
        log("a", "A")
        log("b", "B")
    assert got == ["A", "B"]
    log.period = 0
    log("a", "A")
    assert got[-1] == "A (2 similar suppressed)"


def test_pipeline_stats_window():
    s = PipelineStats()
    s.count("received", 3)
    s.count("invalid", case="step")
    s.record(10.0, {"inference": 5.0})
    s.record(30.0, {"inference": 7.0})
    w = s.roll()
    assert (w["received"], w["processed"], w["invalid"]) == (3, 2, 1)
    assert w["latency_ms"] == 20.0 and w["stages_ms"]["inference"] == 6.0
    assert w["invalid_by_case"] == {"step": 1}
    assert s.roll()["processed"] == 2 and s.roll()["fps"] == 0.0  # totals persist, window resets


def test_node_bench_analysis():
    from meco_ros.bench.node_bench import analyse

    # 20 s of outputs at 10 Hz whose latency grows (a backlog): the last-10-s p95 must show it
    t = np.arange(200) / 10.0
    lat = np.where(t < 10, 0.05, 0.05 + (t - 10) * 0.02)
    received = [(1000 + ti, 1000 + ti + li, (0, 0)) for ti, li in zip(t, lat)]
    a = analyse(received)
    assert abs(a["fps"] - 10.0) < 0.1
    assert abs(a["first_p95_ms"] - 50.0) < 1e-6 and a["last_p95_ms"] > 200.0


def test_node_bench_end_to_end_reports_both_references(tmp_path):
    """`meco node-bench` on the random-weight dev model, briefly: the raw grid covers every
    thread count, the best configuration and the node's own are both reported."""
    import json

    from meco_core.cli import main as meco

    out = tmp_path / "nb.json"
    code = meco(["node-bench", "--dev", "--duration", "3", "--rate", "10", "--size", "96x128", "--inference-size",
                 "64x96", "--repeats", "2", "--json", str(out), "--quiet", "--domain-id", str(own_domain_id()),
                 "--subscribe", "depth,segmentation"])
    result = json.loads(out.read_text())
    # exit code = the verdict (0: every check passed, 1: one failed); the checks compare speeds,
    # which a shared test machine need not reach, so the code is checked against the verdict
    assert code == (0 if all(result["checks"].values()) else 1), (code, result["checks"])
    grid = result["raw_model"]["grid"]
    assert {(r["backend"], r["threads"], r["streams"]) for r in grid} == \
        {("torch", t, 1) for t in range(1, (os.cpu_count() or 1) + 1)}     # torch: no parallel streams
    best = result["raw_model"]["best"]
    assert best["fps"] == max(r["fps"] for r in grid) > 0
    assert result["raw_model"]["node_config"]["threads"] == result["config"]["threads"]
    assert result["node"]["fps"] > 0 and result["stats"]["frames_processed"] > 0
    assert result["clouds"]["points"] == 48 * 64 and result["clouds"]["median_ms"] > 0
    cpu = result["cpu_cores"]  # where the cores went: the node's threads, by name, and the camera
    assert {"main", "meco-infer-0", "meco-publish"} <= set(cpu["node_threads"]) and cpu["camera"] >= 0
    assert "fps_ge_0.85x_min(best raw, rate)" in result["checks"]
    # only what was subscribed to was received and scored
    assert result["config"]["subscribed"] == ["depth", "segmentation"] == list(result["topics"])
    assert result["topics"]["segmentation"]["latency_ms"]["n"] > 0


def test_node_bench_subscribe_option_is_checked():
    """--subscribe takes a subset of the four image outputs that includes depth, else a usage error."""
    import argparse

    from meco_ros.bench.node_bench import _viewer_topics

    assert _viewer_topics("depth, segmentation") == ("depth", "segmentation")
    for bad in ("segmentation", "depth,points", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="includes depth"):
            _viewer_topics(bad)


def test_inference_workers_auto_rule(monkeypatch):
    """Two frames in flight only where they run in parallel: ONNX Runtime on a multi-core CPU."""
    from meco_ros.node.params import resolve_workers

    import torch

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert resolve_workers(0, "onnxruntime", "cpu") == 2
    assert resolve_workers(0, "onnxruntime", "cuda:0") == 1
    assert resolve_workers(0, "onnxruntime", "auto") == (1 if torch.cuda.is_available() else 2)
    assert resolve_workers(0, "torch", "cpu") == 1
    assert resolve_workers(3, "torch", "cpu") == 3       # explicit wins
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert resolve_workers(0, "onnxruntime", "cpu") == 1


@pytest.mark.parametrize("where", ["cleanup", "finalization"])
def test_a_hung_teardown_still_ends_the_process_with_its_exit_code(where):
    """Once a stop has begun, the node process ends by the deadline with the code the stop
    earned, whether DDS teardown blocks in Python (the cleanup calls: the watchdog thread)
    or after it (interpreter finalization / C++ destructors: SIGALRM's default action)."""
    import subprocess
    import sys
    import time

    hang = ("time.sleep(60)" if where == "cleanup"
            else "import atexit; atexit.register(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, []) or time.sleep(60))")
    code = ("import signal, time\n"
            "from meco_ros.node.process_guards import exit_if_teardown_hangs\n"
            f"exit_if_teardown_hangs(3, 'test', deadline_s=0.5)\n{hang}\n"
            "raise SystemExit(3)\n")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - start
    assert took < 20, took  # not the 60 s the teardown would have taken
    if where == "cleanup":
        assert done.returncode == 3 and "shutdown did not finish within" in done.stderr, done
    else:  # the watchdog thread cannot run once Python is finalizing: the alarm ends it
        assert done.returncode in (3, -14), done


def test_the_node_process_leaves_with_its_code_without_finalization():
    """After its own cleanup the console script ends the process at once with main's exit
    code: what was printed is flushed, and a teardown that would hang in finalization
    (here an atexit handler sleeping 60 s) never runs. (Once a node that could not load its
    checkpoint hung there and ended by SIGALRM, -14, instead of its 1.)"""
    import subprocess
    import sys
    import time

    code = ("import atexit, sys, time\n"
            "from meco_ros.node.process_guards import exit_without_finalization\n"
            "atexit.register(lambda: time.sleep(60))\n"
            "print('buffered line', end='')\n"
            "sys.stderr.write('the reason')\n"
            "exit_without_finalization(1)\n")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert time.monotonic() - start < 20
    assert done.returncode == 1 and done.stdout == "buffered line" and "the reason" in done.stderr, done


@pytest.mark.parametrize("beats", [False, True])
def test_a_replay_that_stops_sending_ends_with_tracebacks_not_a_hang(beats):
    """replay-eval's stall guard (faulthandler's C watchdog, which needs no GIL): a process
    whose main thread stops sending for the bound exits 1 with every thread's traceback on
    stderr; one that keeps sending (each send re-arms it) is left alone and ends normally."""
    import subprocess
    import sys
    import time

    body = ("for _ in range(15):\n    g.beat(); time.sleep(0.1)\n" if beats
            else "time.sleep(30)  # stands for a call blocked with the GIL held\n")
    code = ("import time\nfrom meco_ros.replay.stall_guard import StallGuard\n"
            "with StallGuard(0.5) as g:\n" + "".join("    " + line + "\n" for line in body.splitlines()))
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - start < 20
    if beats:
        assert done.returncode == 0 and done.stderr == "", done
    else:
        assert done.returncode == 1 and "most recent call first" in done.stderr, done


def test_sigusr1_dumps_every_threads_stack_and_the_replay_goes_on():
    """`kill -USR1` on a replay-eval process: every thread's stack on stderr, the process carries
    on (what a test that gives up on a stalled replay sends before stopping it)."""
    import signal
    import subprocess
    import sys

    code = ("import threading, time\nfrom meco_ros.replay.stall_guard import dump_stacks_on_sigusr1\n"
            "assert dump_stacks_on_sigusr1()\n"
            "threading.Thread(target=time.sleep, args=(5,), name='side', daemon=True).start()\n"
            "print('ready', flush=True)\ntime.sleep(1.5)\nprint('went on', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "went on" in out, (out, err)
    assert err.count("hread 0x") >= 2 and "most recent call first" in err and "time.sleep" not in out, err


def test_stage_threads_carry_their_names_to_the_os() -> None:
    """top -H and /proc/<pid>/task/*/comm show which node thread uses the CPU."""
    import threading
    import time
    from pathlib import Path

    from meco_ros.node.worker import Mailbox, Stage

    seen: list[str] = []

    def record(_: int) -> None:
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())

    box: Mailbox[int] = Mailbox()
    stage = Stage(box, record, lambda exc: None, "meco-infer-1")
    stage.start()
    box.put(1)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stage.stop(5)
    assert seen == ["meco-infer-1"]


def test_no_node_attribute_shadows_rclpys_own() -> None:
    """The node once kept its status timer in `self._timers`, rclpy Node's list of all the
    node's timers: activation replaced it and every earlier timer stopped firing."""
    import re

    import rclpy
    from rclpy.lifecycle import LifecycleNode

    from meco_ros.node import perception_node

    context = rclpy.Context()
    rclpy.init(context=context)  # this test run's ROS_DOMAIN_ID (conftest)
    try:
        bare = LifecycleNode("attribute_probe", context=context)
        rclpy_names = set(vars(bare)) | set(dir(LifecycleNode))
        bare.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    source = open(perception_node.__file__).read()
    assigned = set(re.findall(r"self\.(\w+)\s*(?::[^=\n]+)?=(?!=)", source))
    assert "_activation_timers" in assigned  # the pattern finds the node's attributes
    assert not sorted(assigned & rclpy_names), "node attributes that shadow rclpy's"


def test_a_timer_made_before_activation_fires_after_it() -> None:
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from meco_core.defaults import DEV_MODEL_CONFIG
    from meco_ros.node.perception_node import PerceptionNode
    from meco_ros.proc import REPO

    context = rclpy.Context()
    rclpy.init(context=context)  # this test run's ROS_DOMAIN_ID (conftest)
    node = None
    try:
        node = PerceptionNode(context=context, cli_args=[
            "--ros-args", "--params-file", str(REPO / "config" / "golf_cart.yaml"), "-p", "checkpoint:=''", "-p", "model:=meco",
            "-p", f"model_config:={DEV_MODEL_CONFIG}", "-p", "inference_size:=[64,96]", "-p", "threads:=1",
            "-p", "warmup_iterations:=1", "-p", "backend:=torch"])
        ticks = []
        early = node.create_timer(0.05, lambda: ticks.append(1))
        node.trigger_configure()
        node.trigger_activate()
        assert early in list(node.timers)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 5.0
        while not ticks and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert ticks, "a timer made before activation never fired"
    finally:
        if node is not None:
            node.trigger_deactivate()
            node.close()
            node.destroy_node()
        rclpy.shutdown(context=context)


def test_cpu_by_thread_names_the_thread_that_spends_it() -> None:
    """thread_cpu reads /proc per thread: a named thread burning a core shows about one core, an
    idle one about none, and the process total covers both."""
    from meco_ros.bench.thread_cpu import cpu_cores, describe
    from meco_ros.node.worker import name_native_thread

    stop = threading.Event()

    def burn() -> None:
        name_native_thread("test-burner")
        while not stop.is_set():
            sum(i * i for i in range(1000))

    def idle() -> None:
        name_native_thread("test-idler")
        stop.wait()

    threads = [threading.Thread(target=burn, daemon=True), threading.Thread(target=idle, daemon=True)]
    for t in threads:
        t.start()
    try:
        cpu = cpu_cores(os.getpid(), {"self": os.getpid()}, 0.6)
    finally:
        stop.set()
    assert cpu["node_threads"]["test-burner"] > 0.3, cpu  # a shared test machine may lend it less than a core
    assert cpu["node_threads"]["test-idler"] < 0.05, cpu
    assert cpu["node"] >= cpu["node_threads"]["test-burner"] - 0.05 and abs(cpu["self"] - cpu["node"]) < 0.1
    assert "test-burner" in describe(cpu) and "test-idler" not in describe(cpu)
