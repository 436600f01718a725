"""An RViz-like viewer for the node benchmarks: subscribes reliably to the four image outputs
(or the ones asked for: a navigation stack reads only depth and segmentation) and stats in the
benchmark's process, records each message's stamp and receipt time, and
checks sizes, encodings and frame ids.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

VIEWER_TOPICS = ("depth", "segmentation", "segmentation/color", "depth/color")
EXPECTED_ENCODING = {"depth": "32FC1", "segmentation": "mono8", "segmentation/color": "rgb8", "depth/color": "rgb8"}


def checked_topics(topics: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The image outputs a viewer may read: a subset of VIEWER_TOPICS with depth (the FPS is its)."""
    topics = tuple(topics)
    if "depth" not in topics or set(topics) - set(VIEWER_TOPICS):
        raise ValueError(f"a subset of {','.join(VIEWER_TOPICS)} that includes depth; got {','.join(topics)!r}")
    return topics


@dataclass
class Viewer:
    """RViz-like subscriber: records (stamp, receipt time) per output, checks fields."""

    ns: str
    domain_id: int
    expected_size: tuple[int, int]
    received: dict[str, list[tuple[float, float, tuple[int, int]]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    stats: list[Any] = field(default_factory=list)
    stats_times: list[float] = field(default_factory=list)
    extra_topics: dict[str, Any] = field(default_factory=dict)  # {topic: message type}: recorded, not checked
    topics: tuple[str, ...] = VIEWER_TOPICS  # the image outputs subscribed to (the node skips the others)

    def __post_init__(self) -> None:
        self.topics = checked_topics(self.topics)

    def start(self) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from meco_ros.msg import Stats

        from meco_ros.side_node import SideNode

        self.side = SideNode("meco_bench_viewer", namespace=self.ns, domain_id=self.domain_id).start()
        self.node = self.side.node
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)  # RViz's image default
        for topic in self.topics:
            self.received[topic] = []
            self.node.create_subscription(Image, topic, self._callback(topic), reliable)
        for topic, kind in self.extra_topics.items():
            self.received[topic] = []
            self.node.create_subscription(kind, topic, self._recorder(topic), reliable)
        self.node.create_subscription(Stats, "stats", self._on_stats, QoSProfile(depth=10))

    def _on_stats(self, msg) -> None:
        self.stats_times.append(time.time())
        self.stats.append(msg)

    def _callback(self, topic: str):
        h, w = self.expected_size
        log = self.received[topic]

        def on_msg(msg) -> None:
            now = time.time()
            s = msg.header.stamp
            log.append((s.sec + s.nanosec * 1e-9, now, (s.sec, s.nanosec)))
            if (msg.height, msg.width) != (h, w) or msg.encoding != EXPECTED_ENCODING[topic] \
                    or msg.header.frame_id != "camera":
                self.problems.append(f"{topic}: {msg.width}x{msg.height} {msg.encoding} frame_id "
                                     f"{msg.header.frame_id!r}")
        return on_msg

    def _recorder(self, topic: str):
        log = self.received[topic]

        def on_msg(msg) -> None:
            s = msg.header.stamp
            log.append((s.sec + s.nanosec * 1e-9, time.time(), (s.sec, s.nanosec)))
        return on_msg

    def matched(self) -> bool:
        return all(self.node.count_publishers(self.node.resolve_topic_name(t)) > 0
                   for t in (*self.topics, *self.extra_topics))

    def stop(self) -> None:
        self.side.stop()
