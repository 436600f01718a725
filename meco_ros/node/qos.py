"""QoS profiles of the perception node, built from the qos.* parameters.

Why these defaults:
- Input: best effort, KEEP_LAST 1, volatile (= sensor-data QoS). A best-effort reader
  matches both best-effort and reliable camera drivers, and depth 1 means DDS itself keeps
  only the newest frame: with a slow model, old frames are overwritten, never queued.
- Outputs: reliable, KEEP_LAST 1, volatile. A reliable writer serves reliable readers
  (RViz's default) and best-effort ones; with KEEP_LAST 1 a slow reader cannot make the
  writer block or build a backlog, it just misses frames.
- Stats and diagnostics: reliable, depth 10 (small, infrequent, every one worth having).
"""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

_RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def make_qos(reliability: str, depth: int) -> QoSProfile:
    """KEEP_LAST `depth`, volatile, with the named reliability."""
    if reliability not in _RELIABILITY:
        raise ValueError(f"reliability must be one of {sorted(_RELIABILITY)}; got {reliability!r}")
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth), reliability=_RELIABILITY[reliability],
                      durability=DurabilityPolicy.VOLATILE)


def status_qos() -> QoSProfile:
    """Stats and /diagnostics."""
    return make_qos("reliable", 10)
