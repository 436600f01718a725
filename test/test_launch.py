"""launch/perception.launch.py and the files it ships with.

launch/launch_ros exist on ROS 2 machines only (not on PyPI): there the launch description
is loaded and its actions checked; everywhere the file is at least compiled and checked
against the config files it names, so it cannot rot silently where it cannot run.
"""
from __future__ import annotations

import ast
import py_compile
from pathlib import Path

import pytest
import yaml

from meco_ros import params

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "perception.launch.py"


def test_launch_file_compiles(tmp_path):
    py_compile.compile(str(LAUNCH), cfile=str(tmp_path / "launch.pyc"), doraise=True)


def test_launch_file_references_shipped_files():
    """The files the launch file names exist and are installed where it looks (its logic is
    meco_ros.launch_plan, tested below by starting the nodes it plans)."""
    tree = ast.parse(LAUNCH.read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for name in ("golf_cart.yaml", "fastdds_profile.xml", "perception.rviz"):
        assert name in strings, name
        assert (REPO / "config" / name).is_file(), name
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert "tools/perception_node" in cmake and "launch config" in cmake


def test_params_file_declares_only_known_parameters():
    doc = yaml.safe_load((REPO / "config" / "golf_cart.yaml").read_text())
    (key,) = doc
    assert key == "/**/perception_node"  # matches the node in any namespace
    values = doc[key]["ros__parameters"]
    known = set(params.SPECS) | {"palette", "use_sim_time"}
    assert set(values) <= known, set(values) - known
    for name, value in values.items():
        spec = params.SPECS[name]
        assert type(value) is type(spec.default), (name, value)  # ROS parameters are typed
        if spec.check:
            assert spec.check(value) is None, (name, spec.check(value))


def test_rviz_config_matches_node_topics_and_qos():
    cfg = yaml.safe_load((REPO / "config" / "perception.rviz").read_text())
    displays = {d["Name"]: d for d in cfg["Visualization Manager"]["Displays"]}
    topics = {d["Topic"]["Value"]: d["Topic"] for d in displays.values()}
    # launch defaults: namespace camera, input remapped to image_raw
    assert topics["/camera/image_raw"]["Reliability Policy"] == "Best Effort"
    for name in ("segmentation_color", "depth_color", "depth", "points", "obstacle_points"):
        topic = "/camera/" + params.SPECS[f"topics.{name}"].default
        assert topic in topics, topic
        assert topics[topic]["Reliability Policy"] == "Reliable"  # the node publishes reliable
    assert params.SPECS["qos.output.reliability"].default == "reliable"



def test_launch_description_actions(load_launch):
    from launch import LaunchContext
    from launch.actions import OpaqueFunction, SetEnvironmentVariable
    from launch_ros.actions import Node

    entities, args = load_launch(LAUNCH)
    assert {"namespace", "image", "camera_info", "params_file", "checkpoint", "device", "use_sim_time",
            "rviz"} <= set(args)
    assert any(isinstance(e, SetEnvironmentVariable) for e in entities)
    context = LaunchContext()
    for arg in args.values():
        arg.visit(context)
    (opaque,) = [e for e in entities if isinstance(e, OpaqueFunction)]
    (node,) = opaque.execute(context)
    assert isinstance(node, Node)
    assert node.node_package == "meco_ros" and node.node_executable == "perception_node"
    context.launch_configurations["cameras"] = "front,rear"
    assert [n.expanded_node_namespace for n in opaque.execute(context)] == ["/front", "/rear"]
    rviz = [e for e in entities if isinstance(e, Node) and e.node_executable == "rviz2"]
    assert rviz and rviz[0].condition is not None


def test_launch_plan_one_node_per_camera():
    from meco_ros.launch_plan import perception_plans

    (single,) = perception_plans(params_file="p.yaml")
    assert single.namespace == "camera" and single.overrides == {"use_sim_time": False, "autostart": True}
    assert ("image", "image_raw") in single.remappings
    front, rear = perception_plans(cameras="front, /rear", params_file="p.yaml", checkpoint="m.pt", managed="true")
    assert (front.namespace, rear.namespace) == ("front", "rear")
    assert front.overrides == rear.overrides == {"use_sim_time": False, "autostart": False, "checkpoint": "m.pt"}
    assert "__ns:=/front" in front.command_args() and "autostart:=false" in front.command_args()


@pytest.mark.parametrize("cameras", ["front,front", "front,9rear", "front,re ar"])
def test_launch_plan_rejects_bad_camera_lists(cameras):
    from meco_ros.launch_plan import perception_plans

    with pytest.raises(ValueError, match="camera namespaces"):
        perception_plans(cameras=cameras)


def test_two_cameras_run_as_two_processes_with_namespaced_outputs(tmp_path):
    """cameras:=front,rear as launch would start it: each plan's node as its own process
    (the installed executable with the plan's arguments); frames on /front/image_raw and
    /rear/image_raw come back on /front/depth and /rear/depth."""
    import os
    import random
    import signal
    import time

    import numpy as np
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from meco_ros.image_conversion import cv2_to_imgmsg
    from meco_ros.launch_plan import perception_plans
    from meco_ros.proc import ros_env, start_node

    overlay = tmp_path / "dev.yaml"
    overlay.write_text(yaml.safe_dump({"/**/perception_node": {"ros__parameters": {
        "checkpoint": "", "model": "meco", "model_config": "backbone=vit_tiny_patch16_224,channels=32",
        "device": "cpu", "inference_size": [64, 96], "threads": 1, "warmup_iterations": 0}}}))
    prefix = f"t{os.getpid()}"
    plans = perception_plans(cameras=f"{prefix}/front,{prefix}/rear", params_file=str(overlay))
    env = ros_env(domain_id=random.randint(101, 200), OMP_NUM_THREADS="1")
    nodes = [start_node(plan.command_args(), env) for plan in plans]
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
    client = rclpy.create_node("cameras_test", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(client)
    try:
        for node in nodes:
            assert node.wait_for("ready", 120), node.output[-3000:]
        assert len({n.popen.pid for n in nodes}) == 2
        got = {plan.namespace: [] for plan in plans}
        pubs = {}
        for ns in got:
            client.create_subscription(Image, f"/{ns}/depth", got[ns].append,
                                       QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
            pubs[ns] = client.create_publisher(Image, f"/{ns}/image_raw", qos_profile_sensor_data)
        frame = cv2_to_imgmsg(np.full((48, 64, 3), 90, np.uint8), "rgb8")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(got.values()):
            for pub in pubs.values():
                pub.publish(frame)
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.02)
        assert all(got.values()), {ns: len(v) for ns, v in got.items()}
        assert all((m[0].height, m[0].width) == (48, 64) for m in got.values())
    finally:
        executor.shutdown()
        client.destroy_node()
        rclpy.shutdown(context=ctx)
        codes = [n.stop(signal.SIGINT, timeout=30) for n in nodes]
    assert codes == [0, 0], [n.output[-2000:] for n in nodes]
