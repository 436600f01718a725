"""The options of the two bag tools, each field defined once: `MakeBagOptions` (dataset ->
bag, `meco_core.bags.from_dataset.make_bag`, `meco data make-bag`) and `ImportBagOptions`
(bag -> dataset, `meco_core.bags.to_dataset.import_bag`, `meco data from-bag`).

Library code and tests build the dataclasses (or pass their fields as keywords to the
functions); the commands' options are generated from them (`meco_core.options`). Light on
purpose: `meco --help` imports it, while `meco_core.bags` imports rosbags.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meco_core.defaults import BAG_STORAGES
from meco_core.options import opt

DEPTH_ENCODINGS = ("32FC1", "16UC1")  # what make_bag writes a depth image as: metres (NaN = none) / millimetres (0 = none)
EPOCH_NS = 1_700_000_000 * 1_000_000_000  # 2023-11-14 22:13:20 UTC: fixed, so bags are reproducible


def topic_or_none(text: str) -> str | None:
    """A topic given on the command line: '' or 'none' (any case) = not written."""
    return None if text.lower() in ("", "none") else text


@dataclass
class MakeBagOptions:
    """How `make_bag` writes a dataset split as a bag; `meco data make-bag`'s options are generated
    from it. Topics set to None (on the command line: 'none') are not written. From Python,
    `intrinsics` may also be a dict with fx, fy, cx, cy (and optionally width, height)."""

    split: str = opt("test", help="dataset split written to the bag")
    storage: str = opt("sqlite3", choices=BAG_STORAGES,
                       help="sqlite3 or mcap: a rosbag2 folder; ros1: a ROS 1 .bag file")
    rate_hz: float = opt(10.0, flag="--rate", metavar="RATE", help="frames per second (message stamps)")
    lidar: bool = opt(False, help="also write the depth as a PointCloud2")
    image_topic: str = opt("/camera/image_raw", help="camera Image topic (raw rgb8; see --compressed)")
    info_topic: str = opt("/camera/camera_info", help="CameraInfo topic (each frame's own intrinsics)")
    cloud_topic: str = opt("/lidar/points", help="PointCloud2 topic of --lidar")
    frame_id: str = opt("camera_optical_frame", flag="--camera-frame", metavar="CAMERA_FRAME",
                        help="frame_id of the camera, camera_info, depth and label messages")
    lidar_frame: str = opt("lidar", help="frame_id of the clouds (on /tf_static: base_link -> it and -> the camera)")
    lidar_rings: int = opt(0, help="thin the cloud to this many lidar-like beams (0 = every depth pixel)")
    depth_topic: str | None = opt("/camera/depth", type=topic_or_none,
                                  help="depth Image topic ('none' = not written)")
    depth_encoding: str = opt("32FC1", choices=DEPTH_ENCODINGS,
                              help="32FC1 metres (NaN = no data) or 16UC1 millimetres (0 = no data)")
    seg_topic: str | None = opt("/camera/segmentation", type=topic_or_none,
                                help="label Image topic, mono8 ('none' = not written)")
    compressed: bool = opt(False, help="JPEG CompressedImage on IMAGE_TOPIC/compressed instead of raw rgb8")
    intrinsics: str | dict[str, float] | None = opt(
        None, help="fx,fy,cx,cy when the dataset has none (or to override)")
    overwrite: bool = opt(False, help="replace an existing bag at --out")
    limit: int | None = opt(None, help="first N samples")
    epoch_ns: int = opt(EPOCH_NS, cli=False, help="header stamp of the first frame, ns (fixed: reproducible bags)")
    verbose: bool = opt(True, cli=False, help="progress bar and a summary on the terminal")

    @property
    def lidar_topic(self) -> str | None:
        """The cloud's topic, None without `lidar`."""
        return self.cloud_topic if self.lidar else None


@dataclass
class ImportBagOptions:
    """How `import_bag` turns a bag into a dataset; `meco data from-bag`'s options are generated
    from it. Topics left None are auto-detected (the only one of its type in the bag; cloud and
    info are optional); 'none' disables one. From Python, `extrinsics` may also be a dict or a
    4x4 array (see `meco_core.bags.lidar_projection.load_extrinsics`)."""

    image_topic: str | None = opt(None, help="sensor_msgs/Image or CompressedImage (default: the only one)")
    cloud_topic: str | None = opt(None, help="sensor_msgs/PointCloud2 (default: the only one; none = no depth)")
    info_topic: str | None = opt(None, help="sensor_msgs/CameraInfo (default: the only one)")
    depth_topic: str | None = opt(None, help="depth Image (32FC1 m or 16UC1 mm) used instead of a cloud "
                                             "(default: none)")
    seg_topic: str | None = opt(None, help="label Image (mono8 class ids, 255 = ignore) (default: none)")
    split: str = opt("train", help="dataset split written (OUT/SPLIT/)")
    tolerance_ms: float = opt(50.0, help="max |t_image - t_cloud| to pair messages")
    extrinsics: Any = opt(None, help="YAML with T_camera_lidar (q: w x y z, t: x y z); default: from /tf_static "
                                     "in the bag")
    class_set: str = opt("golf", help="class set name written to dataset.yaml")
    every: int = opt(1, help="keep every N-th image")
    limit: int | None = opt(None, help="stop after N samples")
    name_prefix: str | None = opt(None, cli=False, help="prefix of the sample names (default: the bag's name)")
    verbose: bool = opt(True, cli=False, help="progress bar and a summary on the terminal")
