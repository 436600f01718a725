"""launch/replay_eval.launch.py: the checks of test_launch.py for the replay launch file.

launch/launch_ros exist on ROS 2 machines only: there the description is loaded and its
actions checked; everywhere the file is compiled, checked against the config files it
names, and every `meco replay-eval` option it passes is checked against the real CLI
parser, so it cannot rot silently where it cannot run.
"""
from __future__ import annotations

import ast
import py_compile
import re
from pathlib import Path


from meco_core.cli.app import build_parser

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "replay_eval.launch.py"
ARGS = {"bag", "image_topic", "seg_gt_topic", "depth_gt_topic", "lidar_topic", "info_topic", "extrinsics",
        "checkpoint", "params_file", "inference_size", "rate", "namespace", "out", "timeout", "use_sim_time"}


def _strings() -> set[str]:
    tree = ast.parse(LAUNCH.read_text())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_launch_file_compiles(tmp_path):
    py_compile.compile(str(LAUNCH), cfile=str(tmp_path / "launch.pyc"), doraise=True)


def test_launch_file_references_shipped_files_and_arguments():
    text = LAUNCH.read_text()
    strings = _strings()
    for name in ("golf_cart.yaml", "fastdds_profile.xml"):
        assert name in strings and (REPO / "config" / name).is_file(), name
    assert {"FASTDDS_DEFAULT_PROFILES_FILE", "perception_node", "replay-eval", "--use-running-node",
            "meco_core.cli"} <= strings
    assert "get_package_share_directory" in text and "generate_launch_description" in text
    assert "ExecuteProcess" in text and "OnProcessExit" in text and "Shutdown" in text
    declared = set(re.findall(r'DeclareLaunchArgument\(\s*"([a-z_]+)"', text))
    assert ARGS <= declared, ARGS - declared
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert "launch config" in cmake  # installed to share/meco_ros


def test_options_it_passes_exist_in_the_cli():
    """Every --option in the launch file is one `meco replay-eval` accepts."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    known = {opt for action in sub.choices["replay-eval"]._actions for opt in action.option_strings}
    used = {s for s in _strings() if s.startswith("--")}
    assert used and used <= known, used - known


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
