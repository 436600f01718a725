"""launch/replay_eval.launch.py, judged by what it starts: the perception node and `meco
replay-eval --use-running-node` against it, which replays a bag to a report; the replay's exit
ends the launch (OnProcessExit -> Shutdown) and the node then stops cleanly.

launch and launch_ros are not installable here (environment.md): test/launch_standin.py runs
the launch file's own code (arguments, OpaqueFunction, lookups through the ament index) and
starts the processes launch_ros would start. Where launch_ros exists, the description is also
loaded with it (test_launch_description_actions).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml

from meco_core.cli.app import build_parser
from meco_ros.dds_shm import segment_names, segments_locked_by

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "replay_eval.launch.py"
ARGS = {"bag", "image_topic", "seg_gt_topic", "depth_gt_topic", "lidar_topic", "info_topic", "extrinsics",
        "checkpoint", "params_file", "inference_size", "rate", "namespace", "out", "timeout", "use_sim_time"}


def _node_parameters(cmd: list[str]) -> dict:
    """The parameters a planned node gets: its params files, in order (later ones win)."""
    values: dict = {}
    for i, arg in enumerate(cmd):
        if arg == "--params-file":
            for section in yaml.safe_load(Path(cmd[i + 1]).read_text()).values():
                values.update(section["ros__parameters"])
    return values


def test_replay_launch_replays_a_bag_through_its_node_to_a_report(standin_launch, make_checkpoint, tmp_path):
    """A 3-frame bag made by `meco data make-bag`, replayed closed loop by the launch's two
    processes: the replay exits 0 with every frame scored, then the launch's shutdown (SIGINT)
    stops the node with 0."""
    from meco_core.cli import main
    from meco_ros.proc import Process

    data, bag, out = tmp_path / "drive", tmp_path / "bag", tmp_path / "out"
    assert main(["data", "synth", "--out", str(data), "--n", "3", "--seed", "3", "--size", "64x96", "--split", "test"]) == 0
    assert main(["data", "make-bag", "--data", str(data), "--out", str(bag), "--storage", "mcap"]) == 0
    namespace = f"/meco_replay_launch_{os.getpid()}"
    plan, env = standin_launch("replay_eval.launch.py", bag=str(bag), image_topic="/camera/image_raw",
                               seg_gt_topic="/camera/segmentation", depth_gt_topic="/camera/depth",
                               checkpoint=make_checkpoint("meco"), inference_size="input", namespace=namespace,
                               out=str(out), timeout="30")
    assert [(p.name, p.is_node, p.ends_launch) for p in plan.processes] == [
        ("meco_ros/perception_node", True, False), ("replay_eval", False, True)]
    node_plan, replay_plan = plan.processes
    assert _node_parameters(node_plan.cmd)["backend"] == "onnxruntime"  # the shipped params file's, unchanged
    node = Process(node_plan.cmd, env=env, cwd=tmp_path)
    replay = Process(replay_plan.cmd, env=env, cwd=tmp_path)  # started together, as launch does
    owned: set[str] = set()  # the two processes' Fast DDS segments (not another test's: xdist)
    try:
        deadline = time.monotonic() + 240
        while replay.alive() and time.monotonic() < deadline:
            owned |= segments_locked_by(node.popen.pid) | segments_locked_by(replay.popen.pid)
            time.sleep(0.2)
        code = replay.popen.poll()
        if code is None:
            replay.popen.send_signal(signal.SIGUSR1)  # its threads' stacks into the output below
            time.sleep(2)
        assert code == 0, f"replay-eval exit {code}:\n{replay.output[-3000:]}\n--- node:\n{node.output[-3000:]}"
    finally:  # the launch's Shutdown: every process still running gets SIGINT
        replay_code = replay.stop(signal.SIGINT, timeout=30)
        node_code = node.stop(signal.SIGINT, timeout=30)
    assert (replay_code, node_code) == (0, 0), node.output[-3000:]
    # Neither left its Fast DDS shared memory behind: the node destroys its participant, the
    # replay (which skips that teardown, see exit_without_dds_teardown) unlinks its own.
    assert owned and not owned & set(segment_names()), (owned, set(segment_names()))
    doc = json.loads((out / "report.json").read_text())
    assert (doc["frames_sent"], doc["frames_scored"], doc["frames_dropped"]) == (3, 3, 0), doc["problems"]
    assert doc["run"]["node"] == "already running" and doc["run"]["node_namespace"] == namespace


@pytest.mark.parametrize("depth_gt", [{"depth_gt_topic": "/cam/depth"}, {"lidar_topic": "/points"}])
def test_every_option_it_passes_is_one_the_cli_accepts(standin_launch, depth_gt):
    """Every launch argument set (depth ground truth from a depth topic or from a lidar, which
    the CLI takes one at a time): the replay command the launch file builds parses with the real
    `meco replay-eval` parser into the values given, and the node gets the overrides asked for."""
    given = dict(bag="/data/drive", image_topic="/cam/image", seg_gt_topic="/cam/labels", gt_classes="camvid",
                 info_topic="/cam/info", extrinsics="/x.yaml", checkpoint="/m.pt", inference_size="240x320",
                 rate="30", namespace="ns", out="/tmp/o", timeout="7", use_sim_time="true", **depth_gt)
    plan, _ = standin_launch("replay_eval.launch.py", **given)
    node_plan, replay_plan = plan.processes
    assert replay_plan.cmd[:3] == [sys.executable, "-m", "meco_core.cli"]
    args = build_parser().parse_args(replay_plan.cmd[3:])  # an option the CLI does not take exits 2 here
    assert args.command == "replay-eval" and args.use_running_node and args.use_sim_time
    for name in ("bag", "image_topic", "seg_gt_topic", "gt_classes", "info_topic", "extrinsics", "checkpoint", "out",
                 *depth_gt):
        assert getattr(args, name) == given[name], name
    assert (args.node_namespace, float(args.timeout), float(args.rate)) == ("/ns", 7.0, 30.0)
    values = _node_parameters(node_plan.cmd)
    assert (values["checkpoint"], values["inference_size"], values["use_sim_time"]) == ("/m.pt", [240, 320], True)
    assert "__ns:=/ns" in node_plan.cmd
    assert set(plan.arguments) >= ARGS


def test_launch_description_actions(load_launch):
    from launch import LaunchContext
    from launch.actions import ExecuteProcess, OpaqueFunction, SetEnvironmentVariable
    from launch_ros.actions import Node

    entities, args = load_launch(LAUNCH)
    assert ARGS <= set(args)
    assert any(isinstance(e, SetEnvironmentVariable) for e in entities)
    context = LaunchContext()
    context.launch_configurations.update(bag="/data/drive", image_topic="/camera/image_raw", rate="30",
                                         lidar_topic="/points", use_sim_time="true", inference_size="240x320")
    for arg in args.values():
        if arg.name not in context.launch_configurations:
            arg.visit(context)
    (opaque,) = [e for e in entities if isinstance(e, OpaqueFunction)]
    node, replay, handler = opaque.execute(context)
    assert isinstance(node, Node)
    assert node.node_package == "meco_ros" and node.node_executable == "perception_node"
    assert isinstance(replay, ExecuteProcess)
    cmd = " ".join(part.perform(context) if hasattr(part, "perform") else str(part)
                   for parts in replay.cmd for part in (parts if isinstance(parts, list) else [parts]))
    for piece in ("replay-eval", "--use-running-node", "--bag /data/drive", "--image-topic /camera/image_raw",
                  "--rate 30", "--lidar-topic /points", "--use-sim-time", "--node-namespace /meco_replay"):
        assert piece in cmd, (piece, cmd)
    assert handler is not None
