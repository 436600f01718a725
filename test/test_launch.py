"""launch/perception.launch.py, judged by what it starts: its nodes come up with the shipped
params file and answer on the topics it remaps.

launch and launch_ros are not installable here (environment.md): test/launch_standin.py runs
the launch file's own code (arguments, OpaqueFunction, lookups through the ament index) and
starts the processes launch_ros would start. Where launch_ros exists, the description is also
loaded with it (test_launch_description_actions). The launch logic itself is
meco_ros.launch_plan, tested here as plain Python too.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml

from meco_ros.node import params

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "perception.launch.py"


def test_params_file_declares_only_known_parameters():
    """Kept as a check of the file's content: rclpy silently ignores a parameter the node does
    not declare, so a misspelt key in the params file cannot show in any run of the node."""
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
    """Kept as a check of the file's content: rviz2 is not installable here, so RViz cannot be
    started against the node to show that it subscribes to these topics with these QoS."""
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


def test_two_camera_launch_starts_a_node_per_camera_that_answers(standin_launch, make_checkpoint, ros_side,
                                                                 tmp_path):
    """cameras:=front,rear as `ros2 launch` starts it: two perception_node processes from the
    package's lib/ (found through the ament index), with the package's golf_cart.yaml (the
    params_file default, through the ament index), the launch's overrides, its image_raw remap
    and its Fast DDS profile. Frames on /front/image_raw and /rear/image_raw come back on
    /front/depth and /rear/depth; SIGINT (the launch's shutdown) ends each with 0."""
    import numpy as np
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from meco_ros.image_conversion import cv2_to_imgmsg
    from meco_ros.proc import Process

    checkpoint = make_checkpoint("meco")
    prefix = f"t{os.getpid()}"
    plan, env = standin_launch("perception.launch.py", cameras=f"{prefix}/front,{prefix}/rear",
                               checkpoint=checkpoint, backend="torch", device="cpu")
    assert plan.skipped == ["rviz2/rviz2"]  # rviz:=false by default
    assert [p.name for p in plan.processes] == ["meco_ros/perception_node"] * 2
    share = Path(env["AMENT_PREFIX_PATH"].split(os.pathsep)[0]) / "share" / "meco_ros"
    for p in plan.processes:  # the package's params file and Fast DDS profile, found through the ament index
        assert p.cmd[p.cmd.index("--params-file") + 1] == str(share / "config" / "golf_cart.yaml")
    assert plan.env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(share / "config" / "fastdds_profile.xml")
    nodes = [Process(p.cmd, env=env, cwd=tmp_path) for p in plan.processes]
    try:
        for node in nodes:
            assert node.wait_for("ready", 120), node.output[-3000:]
        assert len({n.popen.pid for n in nodes}) == 2  # one process per camera
        ros = ros_side("cameras_test", domain_id=int(env["ROS_DOMAIN_ID"]))
        namespaces = [f"{prefix}/front", f"{prefix}/rear"]
        got: dict[str, list] = {ns: [] for ns in namespaces}
        subs = [ros.node.create_subscription(Image, f"/{ns}/depth", got[ns].append,
                                             QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
                for ns in namespaces]
        pubs = {ns: ros.node.create_publisher(Image, f"/{ns}/image_raw", qos_profile_sensor_data) for ns in namespaces}
        assert ros.wait_matched(*subs, *pubs.values(), timeout=30), "the nodes never matched image_raw / depth"
        frame = cv2_to_imgmsg(np.full((48, 64, 3), 90, np.uint8), "rgb8")
        for _ in range(100):  # best effort: resend until each camera's frame came back
            for ns, pub in pubs.items():
                if not got[ns]:
                    pub.publish(frame)
            if ros.spin_until(lambda: all(got.values()), 0.5):
                break
        assert all(got.values()), {ns: len(v) for ns, v in got.items()}
        assert all((m[0].height, m[0].width) == (48, 64) for m in got.values())
        res = ros.call(GetParameters, f"/{prefix}/front/perception_node/get_parameters",
                       GetParameters.Request(names=["checkpoint", "backend", "autostart"]))
        values = [Parameter.from_parameter_msg(ParameterMsg(name="p", value=v)).value for v in res.values]
        assert values == [checkpoint, "torch", True]  # the launch's overrides reached the node
    finally:
        codes = [n.stop(signal.SIGINT, timeout=30) for n in nodes]
    assert codes == [0, 0], [n.output[-2000:] for n in nodes]
