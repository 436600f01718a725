"""Replay a rosbag through the meco perception node and score it (`meco replay-eval` under ros2 launch).

    ros2 launch meco_ros replay_eval.launch.py bag:=/data/drive image_topic:=/camera/image_raw \
        seg_gt_topic:=/camera/segmentation depth_gt_topic:=/camera/depth out:=/tmp/replay
    ros2 launch meco_ros replay_eval.launch.py bag:=/data/drive.bag image_topic:=/cam/image \
        lidar_topic:=/velodyne_points rate:=30 use_sim_time:=true

Starts perception_node (same executable and params file as on the cart, in namespace
`namespace`, with the checkpoint / inference-size overrides given here) and runs
`meco replay-eval --use-running-node` against it as a process; the launch shuts down when
the replay has written its report (report.json, report.md, PNGs in `out`).

Arguments:
  bag             bag file or rosbag2 folder (required)
  image_topic     camera topic in the bag, Image or CompressedImage (required)
  seg_gt_topic    label image topic (mono8, 255 = ignore)                        ['']
  gt_classes      class set of the labels (golf, camvid, ycor; '' = the bag's
                  make-bag metadata, else the model's)                           ['']
  depth_gt_topic  depth image topic (32FC1 m / 16UC1 mm)                         ['']
  lidar_topic     PointCloud2 projected as depth ground truth (instead of depth) ['']
  info_topic      CameraInfo topic ('' = the only one in the bag)                ['']
  extrinsics      YAML with T_camera_lidar ('' = the bag's /tf_static)            ['']
  checkpoint      overrides the params file's checkpoint when not empty          ['']
  params_file     node parameters                                [share/meco_ros/config/golf_cart.yaml]
  inference_size  HxW override of the params file ('' = keep, 'input' = camera size) ['']
  rate            '' = closed loop (every frame scored); Hz or 'bag' = real time ['']
  namespace       namespace of the node started here                             [meco_replay]
  out             report directory                                                [replay_out]
  timeout         seconds to wait for one frame's outputs                         [30]
  use_sim_time    node uses /clock; the replay publishes /clock from bag stamps   [false]
  fastdds_profile Fast DDS XML profile (large images)   [share/meco_ros/config/fastdds_profile.xml]
"""
import os
import sys

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "meco_ros"
# launch argument -> `meco replay-eval` option, passed only when not empty
OPTIONAL = {"seg_gt_topic": "--seg-gt-topic", "gt_classes": "--gt-classes", "depth_gt_topic": "--depth-gt-topic",
            "lidar_topic": "--lidar-topic",
            "info_topic": "--info-topic", "extrinsics": "--extrinsics", "checkpoint": "--checkpoint",
            "rate": "--rate"}


def _true(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes", "on")


def _inference_size(text: str):
    """'HxW' -> [H, W]; 'input' -> [0, 0]; '' -> None (params file)."""
    text = text.strip().lower()
    if not text:
        return None
    if text in ("input", "0x0"):
        return [0, 0]
    h, w = (int(v) for v in text.split("x"))
    return [h, w]


def _actions(context, *args, **kwargs):
    """Built at launch time so empty arguments leave the params file / the tool's defaults in charge."""
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    namespace = "/" + get("namespace").strip("/")
    sim_time = _true(get("use_sim_time"))
    overrides = {"use_sim_time": sim_time, "topics.image_compressed": "image/compressed"}
    if get("checkpoint"):
        overrides["checkpoint"] = get("checkpoint")
    size = _inference_size(get("inference_size"))
    if size is not None:
        overrides["inference_size"] = size
    node = Node(
        package=PACKAGE,
        executable="perception_node",
        name="perception_node",
        namespace=namespace,
        parameters=[get("params_file"), overrides],
        output="screen",
        emulate_tty=True,
    )
    cmd = [sys.executable, "-m", "meco_core.cli", "replay-eval", "--use-running-node", "--node-namespace", namespace,
           "--bag", get("bag"), "--image-topic", get("image_topic"), "--out", get("out"), "--timeout", get("timeout")]
    for arg, option in OPTIONAL.items():
        if get(arg):
            cmd += [option, get(arg)]
    if sim_time:
        cmd.append("--use-sim-time")
    replay = ExecuteProcess(cmd=cmd, name="replay_eval", output="screen")
    done = RegisterEventHandler(OnProcessExit(target_action=replay, on_exit=[
        EmitEvent(event=Shutdown(reason="replay evaluation finished"))]))
    return [node, replay, done]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    config = os.path.join(share, "config")
    args = [
        DeclareLaunchArgument("bag", description="bag file or rosbag2 folder"),
        DeclareLaunchArgument("image_topic", description="camera topic in the bag (Image or CompressedImage)"),
        DeclareLaunchArgument("seg_gt_topic", default_value="", description="label image topic (mono8)"),
        DeclareLaunchArgument("gt_classes", default_value="",
                              description="class set of the labels ('' = the bag's metadata, else the model's)"),
        DeclareLaunchArgument("depth_gt_topic", default_value="", description="depth image topic (32FC1/16UC1)"),
        DeclareLaunchArgument("lidar_topic", default_value="", description="PointCloud2 as depth ground truth"),
        DeclareLaunchArgument("info_topic", default_value="", description="CameraInfo topic ('' = auto)"),
        DeclareLaunchArgument("extrinsics", default_value="", description="T_camera_lidar YAML ('' = /tf_static)"),
        DeclareLaunchArgument("checkpoint", default_value="", description="checkpoint override ('' = params file)"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(config, "golf_cart.yaml"),
                              description="node parameters (YAML)"),
        DeclareLaunchArgument("inference_size", default_value="", description="HxW override ('' = params file)"),
        DeclareLaunchArgument("rate", default_value="", description="'' = closed loop; Hz or 'bag' = real time"),
        DeclareLaunchArgument("namespace", default_value="meco_replay", description="namespace of the node"),
        DeclareLaunchArgument("out", default_value="replay_out", description="report directory"),
        DeclareLaunchArgument("timeout", default_value="30", description="seconds per frame's outputs"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock from the bag"),
        DeclareLaunchArgument("fastdds_profile", default_value=os.path.join(config, "fastdds_profile.xml"),
                              description="Fast DDS XML profile (large images)"),
    ]
    return LaunchDescription([
        *args,
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", LaunchConfiguration("fastdds_profile")),
        OpaqueFunction(function=_actions),
    ])
