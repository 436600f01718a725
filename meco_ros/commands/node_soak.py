"""`meco node-soak`: the perception node over a long run (default 10 minutes) with every output
subscribed, clouds included; samples its RSS, threads, open fds, FPS and latency every few
seconds into soak.json + soak.png and prints the pass criteria; the logic lives in
meco_ros.bench.node_soak (needs rclpy)."""
from __future__ import annotations

from . import delegate

register, run = delegate("node-soak",
                         "long run of the perception node: RSS/threads/fds/FPS/latency over time",
                         __doc__, "meco_ros.bench.node_soak")
