"""The node's outputs: which of them are wanted, how one frame's arrays become messages,
and the latched label map.

Kept apart from the node, which wires the pipeline: this decides *what* to build (an
output that is switched off or has no subscriber is never computed, which matters most for
the point clouds) and builds it. Publishers exist only while the node is active (created
on activation, destroyed on deactivation).

Semantic clouds (`points`, `obstacles/points`): each kept pixel (every `cloud.stride`-th row
and column) of the published depth becomes a point in the camera optical frame with the
intrinsics of `depth/camera_info` (the camera's, scaled to the output size): pixel (u, v)
with depth z lands at ((u - cx) z / fx, (v - cy) z / fy, z). Distortion is ignored: the
network's depth is a pinhole image of the (already distorted) input, so for a strongly
distorted lens feed the node a rectified image. Invalid depth (NaN, beyond max_depth: +inf)
and points beyond `cloud.max_range` are dropped. Each point carries the label and the colour
of the published segmentation and segmentation/color images at its pixel.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Float64

from meco_core.classes import ClassSet
from meco_core.geometry import backproject_depth

from . import outputs as out
from .qos import make_qos, status_qos

IMAGE_OUTPUTS = ("depth", "segmentation", "segmentation_color", "depth_color", "prediction")
CLOUD_OUTPUTS = ("points", "obstacle_points")
FRAME_OUTPUTS = IMAGE_OUTPUTS + CLOUD_OUTPUTS
NEEDS_DEPTH = {"depth", "depth_color", "prediction", *CLOUD_OUTPUTS}
NEEDS_LABELS = {"segmentation", "segmentation_color", "prediction", *CLOUD_OUTPUTS}


def latched_qos() -> QoSProfile:
    """Transient local, reliable, depth 1: a late subscriber still gets the last message."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def label_map_msg(msg_type: type, class_set: ClassSet, palette: tuple[int, ...], stamp: Any) -> Any:
    """meco_ros/LabelInfo: ids, names and the node's colours of every class."""
    from meco_ros.msg import VisionClass

    msg = msg_type()
    msg.header.stamp = stamp
    msg.class_map = [VisionClass(class_id=i, class_name=n) for i, n in enumerate(class_set.names)]
    msg.threshold = 0.0
    msg.class_colors = [int(c) for c in palette[: 3 * class_set.num_classes]]
    msg.ignore_id = int(class_set.ignore_index)
    return msg


def class_ids(class_set: ClassSet, names: tuple[str, ...] | list[str]) -> tuple[list[int], list[str]]:
    """(ids of the named classes this class set has, names it lacks)."""
    known = {n: i for i, n in enumerate(class_set.names)}
    return [known[n] for n in names if n in known], [n for n in names if n not in known]


class StatusPublishers:
    """The node's health outputs: stats, /diagnostics and the Autoware-style debug timings."""

    def __init__(self, node: Any, param: Any) -> None:
        from meco_ros.msg import Stats  # generated: tools/build_msgs.sh or colcon

        self.node, self.stats_type = node, Stats
        pub = node.create_lifecycle_publisher
        self.stats = pub(Stats, param("topics.stats"), status_qos())
        self.diagnostics = pub(DiagnosticArray, param("topics.diagnostics"), status_qos())
        self.processing_ms = pub(Float64, "~/debug/processing_time_ms", status_qos())
        self.latency_ms = pub(Float64, "~/debug/pipeline_latency_ms", status_qos())

    def destroy(self) -> None:
        for p in (self.stats, self.diagnostics, self.processing_ms, self.latency_ms):
            self.node.destroy_lifecycle_publisher(p)


class OutputPublishers:
    """Every output publisher of one activation, and the per-frame publishing."""

    def __init__(self, node: Any, param: Any, class_set: ClassSet) -> None:
        from meco_ros.msg import LabelInfo, Prediction

        self.node, self.class_set = node, class_set
        self._prediction_type, self._label_type = Prediction, LabelInfo
        qos = make_qos(param("qos.output.reliability"), param("qos.output.depth"))
        pub = node.create_lifecycle_publisher  # enabled on activate, disabled on deactivate (rclpy)
        self.pubs = {
            "depth": pub(Image, param("topics.depth"), qos),
            "segmentation": pub(Image, param("topics.segmentation"), qos),
            "segmentation_color": pub(Image, param("topics.segmentation_color"), qos),
            "depth_color": pub(Image, param("topics.depth_color"), qos),
            "depth_camera_info": pub(CameraInfo, param("topics.depth_camera_info"), qos),
            "prediction": pub(Prediction, param("topics.prediction"), qos),
            "points": pub(PointCloud2, param("topics.points"), qos),
            "obstacle_points": pub(PointCloud2, param("topics.obstacle_points"), qos),
        }
        self.label_pub = pub(LabelInfo, param("topics.label_map"), latched_qos())

    def destroy(self) -> None:
        for p in (*self.pubs.values(), self.label_pub):
            self.node.destroy_lifecycle_publisher(p)
        self.pubs = {}

    def wanted(self, enabled: dict[str, bool]) -> set[str]:
        """Frame outputs that are switched on and have at least one subscriber."""
        return {k for k in FRAME_OUTPUTS if enabled[k] and self.pubs[k].get_subscription_count() > 0}

    def publish_label_map(self, palette: tuple[int, ...]) -> None:
        self.label_pub.publish(label_map_msg(self._label_type, self.class_set, palette,
                                             self.node.get_clock().now().to_msg()))

    def publish_frame(self, header: Any, rgb: np.ndarray, pred: Any, wanted: set[str], cfg: Any, lut: np.ndarray,
                      max_depth: float, camera_info: Any, warn: Any) -> None:
        """Build and publish the wanted outputs of one frame (all with the input's header)."""
        msgs: dict[str, Any] = {}
        depth, labels = pred.depth_m, pred.labels
        if depth is not None:
            if cfg.max_depth:
                depth[depth > cfg.max_depth] = np.inf  # REP 118: too far
            if wanted & {"depth", "prediction"}:
                msgs["depth"] = out.image_msg(depth, "32FC1", header)
            if "depth_color" in wanted:
                msgs["depth_color"] = out.image_msg(out.colorize_depth(depth, max_depth, cfg.depth_colormap), "rgb8",
                                                    header)
        color = None
        if labels is not None:
            if wanted & {"segmentation", "prediction"}:
                msgs["segmentation"] = out.image_msg(labels, "mono8", header)
            if wanted & {"segmentation_color", *CLOUD_OUTPUTS}:
                color = out.colorize_labels(labels, lut, cfg.segmentation_blend, rgb)
                if "segmentation_color" in wanted:
                    msgs["segmentation_color"] = out.image_msg(color, "rgb8", header)
        if "prediction" in wanted and "depth" in msgs and "segmentation" in msgs:
            msgs["prediction"] = out.prediction_msg(self._prediction_type, header, msgs["depth"], msgs["segmentation"],
                                                    self.class_set.names, cfg.palette, max_depth)
        clouds = bool(wanted & set(CLOUD_OUTPUTS)) and depth is not None and labels is not None
        info = None
        ref = depth if depth is not None else labels
        if camera_info is not None and ref is not None and (clouds or cfg.outputs["depth_camera_info"]):
            info = out.scale_camera_info(camera_info, *ref.shape[:2], header)
            if cfg.outputs["depth_camera_info"]:
                msgs["depth_camera_info"] = info
        if clouds:
            msgs.update(self._clouds(header, depth, labels, color, wanted, cfg, info, warn))
        for name, msg in msgs.items():
            if name in wanted or name == "depth_camera_info":
                self.pubs[name].publish(msg)

    def _clouds(self, header: Any, depth: np.ndarray, labels: np.ndarray, color: np.ndarray, wanted: set[str],
                cfg: Any, info: Any, warn: Any) -> dict[str, Any]:
        if info is None or not any(info.k):
            warn("cloud:no_camera_info", "points wanted but no calibrated camera_info for this image's size: "
                                         "no clouds")
            return {}
        xyz, rows, cols = backproject_depth(depth, np.asarray(info.k).reshape(3, 3), cfg.cloud_stride,
                                            cfg.cloud_max_range or float("inf"))
        point_labels, point_colors = labels[rows, cols], color[rows, cols]
        msgs = {}
        if "points" in wanted:
            msgs["points"] = out.semantic_cloud_msg(header, xyz, point_colors, point_labels)
        if "obstacle_points" in wanted:
            ids, _ = class_ids(self.class_set, cfg.obstacle_classes)
            keep = np.isin(point_labels, ids)
            msgs["obstacle_points"] = out.semantic_cloud_msg(header, xyz[keep], point_colors[keep], point_labels[keep])
        return msgs
