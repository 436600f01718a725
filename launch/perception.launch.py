"""Launch the meco perception node for the golf cart camera (and optionally RViz2).

    ros2 launch meco_ros perception.launch.py
    ros2 launch meco_ros perception.launch.py namespace:=front_camera image:=image_rect \
        checkpoint:=/data/meco_golf.pt device:=cuda rviz:=true
    ros2 launch meco_ros perception.launch.py cameras:=front,rear     # one node (process) per camera
    ros2 launch meco_ros perception.launch.py managed:=true          # for nav2_lifecycle_manager

Arguments:
  cameras         comma-separated camera namespaces, one node each; '' = `namespace` ['']
  namespace       camera namespace the node runs in (its topics are relative)   [camera]
  image           input image topic, relative to the namespace                 [image_raw]
  image_compressed  compressed input topic (used if topics.image_compressed set) [image_raw/compressed]
  camera_info     camera info topic                                            [camera_info]
  params_file     node parameters                                   [share/meco_ros/config/golf_cart.yaml]
  checkpoint      overrides the params file's checkpoint when not empty         ['']
  device          overrides the params file's device (auto|cpu|cuda[:n]) when not empty ['']
  backend         overrides the params file's backend (torch|onnxruntime|tensorrt) when not empty ['']
  managed         true: the nodes wait unconfigured for a lifecycle manager; false:
                  they configure and activate themselves (autostart)          [false]
  use_sim_time    use /clock (bag replay)                                       [false]
  rviz            also start rviz2 with config/perception.rviz                  [false]
  log_level       node log level                                                [info]
  fastdds_profile Fast DDS XML profile put into FASTDDS_DEFAULT_PROFILES_FILE
                  (large shared-memory segments: without it best-effort 640x480 images are
                  never delivered under Fast DDS defaults)      [share/meco_ros/config/fastdds_profile.xml]
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "meco_ros"


def _perception_nodes(context, *args, **kwargs):
    """Built at launch time from meco_ros.launch_plan (tested without launch_ros): one node
    per camera namespace; empty checkpoint/device/backend leave the params file in charge."""
    from meco_ros.launch_plan import perception_plans

    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    plans = perception_plans(**{name: get(name) for name in (
        "cameras", "namespace", "image", "image_compressed", "camera_info", "params_file", "checkpoint", "device",
        "backend", "use_sim_time", "managed", "log_level")})
    return [Node(
        package=PACKAGE,
        executable="perception_node",
        name="perception_node",
        namespace=plan.namespace,
        parameters=[plan.params_file, plan.overrides],
        remappings=list(plan.remappings),
        ros_arguments=["--log-level", plan.log_level],
        output="screen",
        emulate_tty=True,
    ) for plan in plans]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    config = os.path.join(share, "config")
    args = [
        DeclareLaunchArgument("cameras", default_value="",
                              description="comma-separated camera namespaces, one node each ('' = namespace)"),
        DeclareLaunchArgument("namespace", default_value="camera", description="camera namespace"),
        DeclareLaunchArgument("image", default_value="image_raw", description="input image topic"),
        DeclareLaunchArgument("image_compressed", default_value="image_raw/compressed",
                              description="compressed input topic"),
        DeclareLaunchArgument("camera_info", default_value="camera_info", description="camera info topic"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(config, "golf_cart.yaml"),
                              description="node parameters (YAML)"),
        DeclareLaunchArgument("checkpoint", default_value="", description="checkpoint override ('' = params file)"),
        DeclareLaunchArgument("device", default_value="", description="device override ('' = params file)"),
        DeclareLaunchArgument("backend", default_value="", description="backend override ('' = params file)"),
        DeclareLaunchArgument("managed", default_value="false",
                              description="true: wait for a lifecycle manager; false: configure and activate"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock"),
        DeclareLaunchArgument("rviz", default_value="false", description="start rviz2"),
        DeclareLaunchArgument("log_level", default_value="info", description="node log level"),
        DeclareLaunchArgument("fastdds_profile", default_value=os.path.join(config, "fastdds_profile.xml"),
                              description="Fast DDS XML profile (large images)"),
    ]
    return LaunchDescription([
        *args,
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", LaunchConfiguration("fastdds_profile")),
        OpaqueFunction(function=_perception_nodes),
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", os.path.join(config, "perception.rviz")],
            parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
            condition=IfCondition(LaunchConfiguration("rviz")),
            output="screen",
        ),
    ])
