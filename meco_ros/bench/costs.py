"""The cost of single steps of the node's pipeline, measured in isolation for `meco node-bench`:
what a frame's conversion in and out, and a subscribed semantic cloud, cost per frame.

Kept out of the node's modules: the node runs these steps, the benchmark times them.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from meco_core.geometry import backproject_depth
from meco_ros.image_conversion import cv2_to_imgmsg, imgmsg_to_cv2
from meco_ros.node import outputs as out


def benchmark_conversion(height: int = 480, width: int = 640, n: int = 200) -> dict[str, float]:
    """Time rgb8 cv2_to_imgmsg + imgmsg_to_cv2 round trips on rclpy messages (per-frame cost
    the node pays twice per frame, in and out)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    imgmsg_to_cv2(cv2_to_imgmsg(img, "rgb8"), "rgb8")  # warm-up: lazy message import
    to_ms, from_ms = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        msg = cv2_to_imgmsg(img, "rgb8")
        t1 = time.perf_counter()
        out = imgmsg_to_cv2(msg, "rgb8")
        float(out[0, 0, 0])  # touch the view
        t2 = time.perf_counter()
        to_ms.append((t1 - t0) * 1e3)
        from_ms.append((t2 - t1) * 1e3)
    total = [a + b for a, b in zip(to_ms, from_ms)]
    return {"height": height, "width": width, "n": n,
            "frames_per_s": 1e3 * n / sum(total), "median_ms": statistics.median(total),
            "median_to_msg_ms": statistics.median(to_ms),
            "median_from_msg_ms": statistics.median(from_ms)}


def benchmark_clouds(height: int = 480, width: int = 640, stride: int = 2, n: int = 50) -> dict[str, float]:
    """Median ms to build `points` (back-projection + PointCloud2 message) from a height x width
    depth image at `stride`: what a subscribed cloud costs the node per frame."""
    from std_msgs.msg import Header

    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 80.0, (height, width)).astype(np.float32)
    labels = rng.integers(0, 5, (height, width), dtype=np.uint8)
    color = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    K = np.array([[500.0, 0, width / 2], [0, 500.0, height / 2], [0, 0, 1]])
    times = []
    for _ in range(n + 3):
        t0 = time.perf_counter()
        xyz, rows, cols = backproject_depth(depth, K, stride)
        out.semantic_cloud_msg(Header(), xyz, color[rows, cols], labels[rows, cols])
        times.append((time.perf_counter() - t0) * 1e3)
    return {"height": height, "width": width, "stride": stride, "points": int(len(xyz)),
            "median_ms": statistics.median(times[3:])}
