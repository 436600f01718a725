"""`meco node-soak`: the perception node over a long run (default 10 minutes) with every output
subscribed, clouds included; samples its RSS, threads, open fds, FPS and latency every few
seconds into soak.json + soak.png and prints the pass criteria; the logic lives in
meco_ros.bench.node_soak (needs rclpy)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("node-soak", help="long run of the perception node: RSS/threads/fds/FPS/latency over time",
                              description=__doc__)
    from meco_ros.bench.node_soak import add_arguments  # light: rclpy/torch are imported when it runs

    add_arguments(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from meco_ros.bench.node_soak import main_from_args

    return main_from_args(args)
