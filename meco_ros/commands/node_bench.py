"""`meco node-bench`: the ROS perception node end to end (camera process -> node -> RViz-like
viewer) next to the raw model FPS; the logic lives in meco_ros.bench.node_bench (needs rclpy)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("node-bench", help="perception node FPS/latency over DDS vs raw model FPS",
                              description=__doc__)
    from meco_ros.bench.node_bench import add_arguments  # light: rclpy/torch are imported when it runs

    add_arguments(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from meco_ros.bench.node_bench import main_from_args

    return main_from_args(args)
