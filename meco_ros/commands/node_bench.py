"""`meco node-bench`: the ROS perception node end to end (camera process -> node -> RViz-like
viewer) next to the raw model FPS; the logic lives in meco_ros.bench.node_bench (needs rclpy)."""
from __future__ import annotations

from . import delegate

register, run = delegate("node-bench",
                         "perception node FPS/latency over DDS vs raw model FPS",
                         __doc__, "meco_ros.bench.node_bench")
