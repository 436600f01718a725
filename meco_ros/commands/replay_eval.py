"""`meco replay-eval`: replay a rosbag through the ROS perception node and score it.

Starts the perception node (the vehicle's executable and params file, with the
checkpoint override) unless --use-running-node, publishes the bag's camera frames with
their original stamps, collects depth and segmentation, matches them to the bag's ground
truth by header stamp and reports the metrics of `meco eval` plus node FPS, latency
p50/p95/p99 and frames sent/scored/dropped: report.json, report.md and PNGs in --out.

Ground truth: --depth-gt-topic (Image 32FC1 m or 16UC1 mm) or --lidar-topic (PointCloud2,
projected with --info-topic's CameraInfo and --extrinsics YAML or the bag's /tf_static),
and --seg-gt-topic (mono8 class ids, 255 = ignore) in the class set --gt-classes (default: the one
`meco data make-bag` records in the bag, else the model's; ids the model does not have are an
error, never a score), remapped to the model's classes as `meco eval` does. Modes: --closed-loop (default; every
frame scored) or --rate R (Hz, or 'bag' for the recorded timing; real time, drops counted).
The logic lives in meco_ros.replay.evaluator (rclpy is imported only when this runs).
"""
from __future__ import annotations

import argparse
import os



def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("replay-eval", help="replay a rosbag through the perception node: metrics, FPS, latency",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from meco_core.options import add_options
    from meco_ros.replay.config import ReplayConfig  # light: no torch, no rclpy

    add_options(p, ReplayConfig)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from meco_ros.proc import ros_env  # no rclpy: only environment defaults

    for key, value in ros_env().items():  # loopback discovery + large-image Fast DDS profile, before rclpy
        os.environ.setdefault(key, value)
    from meco_ros.replay.evaluator import main_from_args

    return main_from_args(args)
