"""ROS time stamps (builtin_interfaces/Time: sec, nanosec) <-> integer nanoseconds, one rule
for rclpy and rosbags messages alike (duck-typed: anything with .sec and .nanosec)."""
from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp: Any) -> int:
    """A stamp's time in nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def split_ns(ns: int) -> tuple[int, int]:
    """(sec, nanosec) of a time in nanoseconds."""
    return divmod(int(ns), NS_PER_S)


def to_stamp(ns: int, stamp_type: Any) -> Any:
    """A stamp of `stamp_type` (rclpy's builtin_interfaces.msg.Time, a rosbags Time) for a time in
    nanoseconds."""
    sec, nanosec = split_ns(ns)
    return stamp_type(sec=sec, nanosec=nanosec)
