"""What `launch/perception.launch.py` starts, as plain data: one perception node per camera.

Kept out of the launch file, which needs launch_ros (not on PyPI), so the plan is tested
here, including by starting its nodes as real processes (`NodePlan.command_args`), and
the launch file only turns each plan into a launch_ros `Node`.

    cameras:=front,rear   -> /front/perception_node and /rear/perception_node, one process
                             each, every topic under its camera's namespace
    managed:=true         -> the nodes wait unconfigured for a lifecycle manager
                             (autostart false); managed:=false configures and activates them
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NODE_NAME = "perception_node"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*")


def is_true(text: str) -> bool:
    return str(text).strip().lower() in ("true", "1", "yes", "on")


def camera_namespaces(cameras: str, namespace: str) -> list[str]:
    """'front,rear' -> ['front', 'rear']; '' -> [namespace]. Names must be valid and distinct."""
    names = [c.strip().strip("/") for c in cameras.split(",") if c.strip()] if cameras.strip() else \
        [namespace.strip().strip("/")]
    bad = [n for n in names if not _NAME.fullmatch(n)]
    if bad:
        raise ValueError(f"camera namespaces must be ROS names like front or cart/front; got {bad}")
    if len(set(names)) != len(names):
        raise ValueError(f"camera namespaces repeat: {names}")
    return names


@dataclass(frozen=True)
class NodePlan:
    """One perception node: where it runs and what it is given."""

    namespace: str
    params_file: str
    overrides: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    log_level: str = "info"

    def command_args(self) -> list[str]:
        """The same node as `perception_node --ros-args ...` arguments (for tests and scripts)."""
        from .proc import param_args

        args = ["--params-file", self.params_file, "-r", f"__ns:=/{self.namespace}", "--log-level", self.log_level,
                *param_args(self.overrides)]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args


def perception_plans(cameras: str = "", namespace: str = "camera", image: str = "image_raw",
                     image_compressed: str = "image_raw/compressed", camera_info: str = "camera_info",
                     params_file: str = "", checkpoint: str = "", device: str = "", backend: str = "",
                     use_sim_time: str = "false", managed: str = "false", log_level: str = "info") -> list[NodePlan]:
    """One NodePlan per camera namespace; empty checkpoint/device/backend leave the params file in charge."""
    overrides: dict[str, Any] = {"use_sim_time": is_true(use_sim_time), "autostart": not is_true(managed)}
    for key, value in (("checkpoint", checkpoint), ("device", device), ("backend", backend)):
        if value:
            overrides[key] = value
    remappings = (("image", image), ("image/compressed", image_compressed), ("camera_info", camera_info))
    return [NodePlan(ns, params_file, dict(overrides), remappings, log_level)
            for ns in camera_namespaces(cameras, namespace)]
