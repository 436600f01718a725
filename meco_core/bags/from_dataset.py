"""`meco data make-bag`: a dataset split -> a bag a vehicle could have recorded.

How users get test bags for replay evaluation and how the demo gets its drive: every
sample becomes, at one header stamp (a fixed epoch + i / rate), the camera image (raw
rgb8 or JPEG CompressedImage), its camera_info (the frame's own intrinsics, so a dataset
whose frames differ in camera or size gives a bag whose camera_info changes), the depth
as an image (32FC1 metres with NaN = no data, or 16UC1 millimetres with 0 = no data), the
labels (mono8, 255 = ignore) and optionally a lidar-like PointCloud2: valid depth pixels
back-projected with that frame's K into the camera optical frame, moved into a lidar frame
mounted elsewhere on the cart (published on /tf_static as base_link -> lidar and
base_link -> camera) and, if asked, thinned to the rings of a spinning lidar. Writes
sqlite3 or mcap rosbag2 folders or a ROS 1 .bag.

Where labels are written, the bag also gets one latched std_msgs/String message on
DATASET_INFO_TOPIC (/meco/dataset_info, at the first stamp): JSON saying which class set
the label ids are in ({"format": "meco-dataset-info/1", "label_topics": {"<seg topic>":
"<class set name>"}, "class_sets": {"<name>": {names, colors}}, "dataset", "split"}), so
`meco replay-eval` scores them in the right classes. A plain message, not storage-specific
metadata: it reads back the same from sqlite3, mcap and ROS 1 bags.

The options (topics, encodings, frames, rate, storage) are `MakeBagOptions` fields
(meco_core.bag_options), the command's flags are generated from them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from meco_core.bags.messages import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    POINT_CLOUD2,
    TF_MESSAGE,
    camera_info_msg,
    compressed_image_msg,
    image_msg,
    pointcloud2_msg,
    tf_message,
)
from meco_core.bag_options import DEPTH_ENCODINGS, MakeBagOptions
from meco_core.bags import BagError, BagWriter
from meco_core.data.format import DatasetReader
from meco_core.camera import parse_intrinsics
from meco_core.geometry import intrinsics_matrix, invert_transform, make_transform, quat_to_matrix, transform_points
from meco_core.options import from_args

DATASET_INFO_TOPIC = "/meco/dataset_info"
DATASET_INFO_FORMAT = "meco-dataset-info/1"
STRING = "std_msgs/msg/String"
BASE_FRAME = "base_link"
# Camera optical frame in base_link (REP 103 body: x forward, y left, z up): 1.5 m up, optical axes
# x right = -y_base, y down = -z_base, z forward = x_base.
T_BASE_CAMERA = make_transform(np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]), (0.6, 0.0, 1.5))
# Lidar on the roof, 30 cm higher and 20 cm behind the camera, slightly yawed/pitched (a real mount is never perfect).
_yaw, _pitch = np.deg2rad(1.5), np.deg2rad(-2.0)
T_BASE_LIDAR = make_transform(
    quat_to_matrix(np.cos(_yaw / 2), 0, 0, np.sin(_yaw / 2))
    @ quat_to_matrix(np.cos(_pitch / 2), 0, np.sin(_pitch / 2), 0),
    (0.4, 0.0, 1.8),
)
RING_FOV_DEG = (-15.0, 15.0)  # vertical field of view of the simulated lidar
T_LIDAR_CAMERA = invert_transform(T_BASE_LIDAR) @ T_BASE_CAMERA


def depth_to_lidar_points(depth_m: np.ndarray, K: np.ndarray, T_lidar_camera: np.ndarray,
                          rings: int = 0, rgb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Valid depth pixels -> (N, 3) float32 points in the lidar frame and (N,) intensity.

    rings > 0 keeps only the pixels whose elevation seen from the lidar is within half a
    pixel of one of `rings` beams evenly spread over RING_FOV_DEG (about one point per
    image column per beam, like a spinning lidar).
    """
    v, u = np.nonzero(np.isfinite(depth_m) & (depth_m > 0))
    z = depth_m[v, u].astype(np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    cam = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1)
    pts = transform_points(T_lidar_camera, cam)
    keep = np.ones(len(pts), bool)
    if rings > 0:
        elev = np.arctan2(pts[:, 2], np.hypot(pts[:, 0], pts[:, 1]))
        lo, hi = np.deg2rad(RING_FOV_DEG)
        spacing = (hi - lo) / max(rings - 1, 1)
        k = np.clip(np.rint((elev - lo) / spacing), 0, rings - 1)
        keep = np.abs(elev - (lo + k * spacing)) <= 0.5 / fy
    if rgb is not None:
        intensity = rgb[v, u].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    else:
        intensity = np.zeros(len(z), np.float32)
    return pts[keep].astype(np.float32), intensity[keep]


def frame_K(reader: DatasetReader, split: str, sample: Any, override: dict[str, float] | None) -> np.ndarray:
    """The 3x3 K of one sample: its own camera/<name>.txt, else `override` (--intrinsics), else
    the dataset's (when its size matches the image); ValueError naming the frame if none."""
    h, w = sample.rgb.shape[:2]
    own = (reader.root / split / "camera" / f"{sample.name}.txt").is_file()
    if own and sample.intrinsics is not None:
        fx, fy, cx, cy = sample.intrinsics
    elif override is not None:
        if ("width" in override and "height" in override) and (override["width"], override["height"]) != (w, h):
            raise ValueError(f"{split}/{sample.name}: image {w}x{h} differs from the intrinsics "
                             f"{override['width']}x{override['height']}")
        fx, fy, cx, cy = override["fx"], override["fy"], override["cx"], override["cy"]
    elif sample.intrinsics is not None:
        fx, fy, cx, cy = sample.intrinsics
    else:
        ds = reader.intrinsics
        why = (f"the dataset's intrinsics are for {ds['width']}x{ds['height']}" if ds
               else "dataset.yaml has no intrinsics")
        raise ValueError(f"{reader.root}: frame {split}/{sample.name} ({w}x{h}) has no camera intrinsics: no "
                         f"{split}/camera/{sample.name}.txt and {why}; pass them (--intrinsics fx,fy,cx,cy)")
    return intrinsics_matrix(float(fx), float(fy), float(cx), float(cy))


def _parse_intrinsics(spec: Any) -> dict[str, float] | None:
    if spec is None or isinstance(spec, dict):
        return spec
    return dict(zip(("fx", "fy", "cx", "cy"), parse_intrinsics(spec)))


def make_bag(data_dir: str | os.PathLike, out: str | os.PathLike, options: MakeBagOptions | None = None,
             **overrides: Any) -> dict[str, Any]:
    """Write one split of dataset `data_dir` as a bag at `out`; returns statistics.

    Each frame's camera_info (and the back-projection of its depth into the lidar cloud)
    uses the frame's own intrinsics (camera/<name>.txt), else `intrinsics`, else the
    dataset's; frames of different sizes and cameras may share one bag.

    Args:
        data_dir: root of a meco-dataset/1 dataset.
        out: the bag written: a rosbag2 folder (storage sqlite3 or mcap) or a .bag file (ros1).
        options: what is written and how (`MakeBagOptions`, each field documented there);
            default: its defaults.
        **overrides: `MakeBagOptions` fields replacing those of `options`, e.g.
            `split="val", storage="mcap", lidar=True, depth_topic=None`.

    Returns:
        out, storage, frames, depth / labels (frames that had them), clouds, points,
        topics (messages per topic), duration_s and cameras (different K and size among the
        camera_info messages).

    Raises:
        ValueError: a bad option, an empty split, or a frame without intrinsics.
        BagError: the bag cannot be written (e.g. `out` exists without `overwrite`).
    """
    o = replace(options or MakeBagOptions(), **overrides)
    if o.rate_hz <= 0:
        raise ValueError(f"rate must be positive, got {o.rate_hz}")
    if o.depth_encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth_encoding must be {' or '.join(DEPTH_ENCODINGS)}, not {o.depth_encoding!r}")
    reader = DatasetReader(data_dir)
    names = reader.names(o.split)[:o.limit]
    if not names:
        raise ValueError(f"{data_dir}: split {o.split!r} is empty")
    override = _parse_intrinsics(o.intrinsics)
    layout = _Layout(o.image_topic + "/compressed" if o.compressed else o.image_topic, o.compressed, o.info_topic,
                     o.depth_topic, o.seg_topic, o.lidar_topic, o.depth_encoding, o.lidar_rings, o.frame_id,
                     o.lidar_frame)
    stats: dict[str, Any] = dict(out=str(out), storage=o.storage, frames=0, depth=0, labels=0, clouds=0, points=0)
    cameras: set[tuple[float, ...]] = set()
    progress = _progress(len(names), o.verbose)
    with BagWriter(out, storage=o.storage, overwrite=o.overwrite) as bag:
        layout.add_topics(bag, o.epoch_ns)
        if o.seg_topic:
            _write_dataset_info(bag, o.epoch_ns, o.seg_topic, reader, data_dir, o.split)
        for i, name in enumerate(names):
            sample = reader.load(o.split, name)
            K = frame_K(reader, o.split, sample, override)
            cameras.add((*K[[0, 1, 0, 1], [0, 1, 2, 2]].tolist(), *sample.rgb.shape[:2]))
            layout.write_sample(bag, sample, K, i, o.epoch_ns + int(round(i * 1e9 / o.rate_hz)), stats)
            progress.update(1)
        stats["topics"] = dict(bag.counts)
    progress.close()
    stats["duration_s"] = (len(names) - 1) / o.rate_hz
    stats["cameras"] = len(cameras)  # different (K, size) among the camera_info messages
    if o.verbose:
        print(f"make-bag {data_dir}/{o.split} -> {out} ({o.storage}): {stats['frames']} frames at {o.rate_hz:g} Hz")
        for topic, n in stats["topics"].items():
            print(f"  {topic}: {n} messages")
        if stats["cameras"] > 1:
            print(f"  camera_info: {stats['cameras']} different cameras (each frame's own intrinsics)")
        if stats["clouds"]:
            print(f"  lidar: {stats['points'] / stats['clouds']:.0f} points per cloud in frame {o.lidar_frame!r}, "
                  f"/tf_static {BASE_FRAME} -> {o.lidar_frame}, {BASE_FRAME} -> {o.frame_id}")
    return stats


def _write_dataset_info(bag: BagWriter, t: int, seg_topic: str, reader: DatasetReader, data_dir: Any,
                        split: str) -> None:
    """The label topic's class set, as JSON in a latched std_msgs/String on DATASET_INFO_TOPIC."""
    cs = reader.class_set
    info = {"format": DATASET_INFO_FORMAT, "label_topics": {seg_topic: cs.name}, "class_sets": {cs.name: cs.to_dict()},
            "dataset": os.path.basename(os.path.normpath(str(data_dir))), "split": split}
    bag.add_topic(DATASET_INFO_TOPIC, STRING, latched=True)
    bag.write(DATASET_INFO_TOPIC, t, bag.typestore.types[STRING](data=json.dumps(info)))


@dataclass
class _Layout:
    """What one dataset sample becomes in the bag: topics, encodings, frames."""

    cam_topic: str
    compressed: bool
    info_topic: str
    depth_topic: str | None
    seg_topic: str | None
    lidar_topic: str | None
    depth_encoding: str
    lidar_rings: int
    frame_id: str
    lidar_frame: str

    def add_topics(self, bag: BagWriter, epoch_ns: int) -> None:
        bag.add_topic(self.cam_topic, COMPRESSED_IMAGE if self.compressed else IMAGE)
        bag.add_topic(self.info_topic, CAMERA_INFO)
        for topic in (self.depth_topic, self.seg_topic):
            if topic:
                bag.add_topic(topic, IMAGE)
        if self.lidar_topic:
            bag.add_topic(self.lidar_topic, POINT_CLOUD2)
            bag.add_topic("/tf_static", TF_MESSAGE, latched=True)
            bag.write("/tf_static", epoch_ns, tf_message(bag.typestore, [(BASE_FRAME, self.lidar_frame, T_BASE_LIDAR),
                                                                        (BASE_FRAME, self.frame_id, T_BASE_CAMERA)],
                                                         epoch_ns))

    def write_sample(self, bag: BagWriter, s: Any, K: np.ndarray, i: int, t: int, stats: dict[str, Any]) -> None:
        """Camera image, its camera info (K, this image's size), and where the sample has them:
        depth image, lidar cloud (depth back-projected with K), labels."""
        ts, fid = bag.typestore, self.frame_id
        h, w = s.rgb.shape[:2]
        if self.compressed:
            bag.write(self.cam_topic, t, compressed_image_msg(ts, s.rgb, "rgb8", t, fid, fmt="jpeg", quality=95, seq=i))
        else:
            bag.write(self.cam_topic, t, image_msg(ts, s.rgb, "rgb8", t, fid, seq=i))
        bag.write(self.info_topic, t, camera_info_msg(ts, K, w, h, t, fid, seq=i))
        if s.depth_m is not None:
            stats["depth"] += 1
            if self.depth_topic:
                if self.depth_encoding == "32FC1":
                    d = np.where(s.depth_m > 0, s.depth_m, np.nan).astype(np.float32)
                else:
                    d = np.rint(s.depth_m * 1000.0).astype(np.uint16)
                bag.write(self.depth_topic, t, image_msg(ts, d, self.depth_encoding, t, fid, seq=i))
            if self.lidar_topic:
                pts, inten = depth_to_lidar_points(s.depth_m, K, T_LIDAR_CAMERA, self.lidar_rings, s.rgb)
                bag.write(self.lidar_topic, t, pointcloud2_msg(ts, pts, t, self.lidar_frame, intensity=inten, seq=i))
                stats["clouds"] += 1
                stats["points"] += len(pts)
        if s.labels is not None and self.seg_topic:
            stats["labels"] += 1
            bag.write(self.seg_topic, t, image_msg(ts, s.labels, "mono8", t, fid, seq=i))
        stats["frames"] += 1


def _progress(total: int, verbose: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="make-bag", file=sys.stderr, leave=False, disable=not verbose)


def main_from_args(args: argparse.Namespace) -> int:
    """`meco data make-bag` (options: MakeBagOptions)."""
    try:
        make_bag(args.data, args.out, from_args(MakeBagOptions, args))
    except (BagError, ValueError, FileNotFoundError, KeyError) as exc:
        print(f"meco data make-bag: error: {exc}", file=sys.stderr)
        return 1
    return 0
