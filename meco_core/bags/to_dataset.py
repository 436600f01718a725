"""`meco data from-bag`: a recorded drive (camera + lidar) -> meco-dataset/1 with sparse depth.

Each camera image (Image or CompressedImage) is paired with the PointCloud2 whose header
stamp is nearest, within a tolerance; the cloud is moved into the camera optical frame
with the extrinsics (a YAML, or the bag's /tf_static chained from the cloud's frame_id to
the camera's) and projected with the intrinsics (distortion included) of the image's own
CameraInfo into a sparse depth image, the nearest point winning a pixel. An image's
CameraInfo is the latest one stamped at or before the image (drivers stamp both alike),
else the earliest; when the camera changes within the bag (zoom, resolution, another
calibration) every frame gets its own intrinsics (camera/<name>.txt), otherwise the
dataset keeps one set in dataset.yaml. Images without a cloud in
tolerance are kept without depth and counted. A depth image topic (32FC1 m / 16UC1 mm)
can replace the lidar, and a label topic (mono8 ids) adds segmentation.

Two passes over the bag keep memory bounded: the first reads camera_info, tf and the
stamps of the auxiliary topics; the second streams the images and joins them with a
small cache of recent auxiliary messages. Those two passes (`meco_core.bags.frame_join`)
and the cloud projection (`meco_core.bags.lidar_projection`) are shared with replay
evaluation (meco_ros.replay.evaluator), so both tools match and project identically.
The options (topics, tolerance, extrinsics, split, ...) are `ImportBagOptions` fields
(meco_core.bag_options), the command's flags are generated from them.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from meco_core.bag_options import ImportBagOptions
from meco_core.bags import (
    CAMERA_INFO,
    IMAGE,
    IMAGE_TYPES,
    POINT_CLOUD2,
    BagError,
    BagReader,
    CameraModel,
    rgb_from_msg,
)
from meco_core.bags.frame_join import Aux, JoinedFrame, SideInfo, join_frames, read_side_info, tf_topics
from meco_core.bags.lidar_projection import LidarProjector, load_extrinsics
from meco_core.classes import get_class_set
from meco_core.data.format import DatasetWriter
from meco_core.options import from_args

_NOT_CAMERA_WORDS = ("depth", "seg", "label", "mask", "disparity")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


# ------------------------------------------------------------------ topic choice
def choose_topic(bag: BagReader, given: str | None, types: tuple[str, ...], role: str,
                 avoid_words: tuple[str, ...] = ()) -> str | None:
    """The topic for a role: the given one (type-checked) or the only candidate in the bag."""
    if given is not None:
        if given.lower() in ("", "none"):
            return None
        bag.require([given], {given: types})
        return given
    cands = bag.topics_of_type(*types)
    if avoid_words:
        cands = [t for t in cands if not any(w in t.lower() for w in avoid_words)] or cands
        if IMAGE in types and len(cands) > 1:  # raw and compressed of one camera: take the raw one
            raw = [t for t in cands if bag.topics[t].msgtype == IMAGE]
            cands = raw if len(raw) == 1 else cands
    if len(cands) == 1:
        return cands[0]
    if len(cands) > 1:
        raise BagError(bag.path, f"several {role} topics {cands}; choose one with --{role}-topic")
    return None


def _safe_name(text: str) -> str:
    text = _NAME_BAD.sub("_", text).strip("._-") or "bag"
    return text if text[0].isalnum() or text[0] == "_" else "_" + text


# ------------------------------------------------------------------ main
@dataclass
class BagTopics:
    """The topics one import reads (None: not used)."""

    image: str
    cloud: str | None
    info: str | None
    depth: str | None
    seg: str | None


def select_topics(reader: BagReader, image: str | None, cloud: str | None, info: str | None,
                  depth: str | None, seg: str | None) -> BagTopics:
    """Given or auto-detected topics (see `import_bag`), refused where they cannot work together."""
    img_t = choose_topic(reader, image, IMAGE_TYPES, "image", _NOT_CAMERA_WORDS)
    if img_t is None:
        raise BagError(reader.path, f"no Image/CompressedImage topic; topics: {_listing(reader)}")
    depth_t = choose_topic(reader, depth, (IMAGE,), "depth") if depth else None
    seg_t = choose_topic(reader, seg, (IMAGE,), "seg") if seg else None
    if depth_t and cloud not in (None, "", "none"):
        raise ValueError("give either a depth image topic or a cloud topic, not both")
    cloud_t = None if depth_t else choose_topic(reader, cloud, (POINT_CLOUD2,), "cloud")
    info_t = choose_topic(reader, info, (CAMERA_INFO,), "info")
    if cloud_t and not info_t:
        raise BagError(reader.path, f"projecting {cloud_t} needs a CameraInfo topic; none in the bag "
                                    f"(topics: {_listing(reader)})")
    return BagTopics(img_t, cloud_t, info_t, depth_t, seg_t)


class FrameWriter:
    """Joined frames -> dataset samples: decodes the image, turns the cloud / depth / label
    payloads into the sample's depth and labels (clouds projected with the image's own
    CameraInfo, `SideInfo.camera_at`), counts what matched. The dataset is created with the
    first frame: with the camera's intrinsics in dataset.yaml when the bag has one camera,
    else with each frame's intrinsics beside it (camera/<name>.txt)."""

    def __init__(self, reader: BagReader, topics: BagTopics, aux: dict[str, Aux], side: SideInfo,
                 projector: LidarProjector | None, out: str | os.PathLike, class_set: Any, split: str,
                 prefix: str, stats: dict[str, Any]) -> None:
        self.reader, self.topics, self.aux, self.side, self.projector = reader, topics, aux, side, projector
        self.out, self.class_set, self.split, self.prefix, self.stats = out, class_set, split, prefix, stats
        self.per_frame = side.camera_changes
        self.writer: DatasetWriter | None = None

    def __call__(self, p: JoinedFrame) -> None:
        try:
            rgb = rgb_from_msg(p.msg)
        except ValueError as exc:  # e.g. ImageSizeError: a header declaring 100000x100000
            raise BagError(self.reader.path, f"{self.topics.image} image {p.index}: {exc}") from None
        h, w = rgb.shape[:2]
        cam = self.side.camera_at(p.stamp)
        if cam is not None and cam.width and (cam.width, cam.height) != (w, h):
            raise BagError(self.reader.path, f"camera_info is {cam.width}x{cam.height} but {self.topics.image} "
                                             f"image {p.index} is {w}x{h}")
        if self.writer is None:
            self.writer = self._open(w, h)
        depth, labels = self._targets(p, cam, w, h)
        stats = self.stats
        if depth is not None:
            stats["matched"] += 1
            stats["projected_points"] += int(np.count_nonzero(depth))
        elif self.topics.cloud or self.topics.depth:
            stats["unmatched"] += 1
        stats["labels"] += labels is not None
        intr = None
        if self.per_frame and cam is not None:
            c = cam.intrinsics()
            intr = (c["fx"], c["fy"], c["cx"], c["cy"])
        self.writer.write(self.split, f"{self.prefix}_{p.index:06d}", rgb, depth_m=depth, labels=labels,
                          intrinsics=intr)
        stats["frames_written"] += 1

    def _open(self, w: int, h: int) -> DatasetWriter:
        intr = None
        if self.side.camera is not None and not self.per_frame:
            intr = self.side.camera.intrinsics()
            intr.update(width=w, height=h)
        t = self.topics
        source = (f"rosbag {self.reader.path.name}: {t.image}" + (f" + {t.cloud}" if t.cloud else "")
                  + (f" + {t.depth}" if t.depth else ""))
        return DatasetWriter(self.out, self.class_set, intrinsics=intr, source=source)

    def _targets(self, p: JoinedFrame, cam: CameraModel | None, w: int,
                 h: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        depth = labels = None
        for t, payload in p.payloads.items():
            kind = self.aux[t].kind
            if payload is None:
                continue
            if kind == "cloud":
                xyz, frame = payload
                depth = self.projector.depth(xyz, frame, p.msg.header.frame_id, w, h, camera=cam)
                self.stats["extrinsics"] = self.projector.source
            elif kind == "depth":
                depth = payload
                if depth.shape != (h, w):
                    raise BagError(self.reader.path, f"{t}: depth {depth.shape[::-1]} differs from image {(w, h)}")
            elif kind == "seg":
                labels = payload
        return depth, labels

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def import_bag(bag: str | os.PathLike, out: str | os.PathLike, options: ImportBagOptions | None = None,
               **overrides: Any) -> dict[str, Any]:
    """Convert a bag into the dataset `out` (samples in `out/<split>/`); returns statistics.

    A damaged bag is converted as far as it reads, then BagError is raised (dataset.yaml is
    written first).

    Args:
        bag: a ROS 1 .bag file, a rosbag2 folder, or its .db3 / .mcap file.
        out: root of the meco-dataset/1 dataset written (created or added to).
        options: topics, pairing and output (`ImportBagOptions`, each field documented
            there); default: its defaults (every topic auto-detected).
        **overrides: `ImportBagOptions` fields replacing those of `options`, e.g.
            `split="val", cloud_topic="none", extrinsics="ext.yaml"`.

    Returns:
        The topics used, images_in_bag, frames_written, matched / unmatched (frames with /
        without depth), labels, projected_points, mean_points_per_frame, where the
        extrinsics came from, the camera_info changes, and the bag's problems.

    Raises:
        BagError: unreadable or damaged bag, missing or ambiguous topics, no transform.
        ValueError: a bad option (e.g. `every` < 1, a depth and a cloud topic together).
    """
    o = replace(options or ImportBagOptions(), **overrides)
    if o.every < 1:
        raise ValueError(f"every must be >= 1, got {o.every}")
    tol_ns = int(round(o.tolerance_ms * 1e6))
    T_fixed = None if o.extrinsics is None else load_extrinsics(o.extrinsics)
    stats: dict[str, Any] = dict(bag=str(bag), out=str(out), split=o.split, images_in_bag=0, frames_written=0,
                                 matched=0, unmatched=0, labels=0, projected_points=0, extrinsics=None)
    with BagReader(bag) as reader:
        t = select_topics(reader, o.image_topic, o.cloud_topic, o.info_topic, o.depth_topic, o.seg_topic)
        stats.update(image_topic=t.image, cloud_topic=t.cloud, info_topic=t.info, depth_topic=t.depth,
                     seg_topic=t.seg)
        aux = {topic: Aux(topic, kind) for topic, kind in ((t.cloud, "cloud"), (t.depth, "depth"), (t.seg, "seg"))
               if topic}
        # pass 1: calibration and stamps
        side = read_side_info(reader, t.info, tf_topics(reader) if t.cloud and T_fixed is None else [], aux)
        camera = side.camera
        if t.cloud and camera is None:
            raise BagError(reader.path, f"{t.info} holds no readable CameraInfo")
        stats["camera_info_changes"] = side.info_changes
        stats["cameras"] = len(side.cameras)
        stats["per_frame_intrinsics"] = side.camera_changes
        distorted = [c for c in side.cameras if c.has_distortion]
        if distorted:
            stats["distortion"] = "; ".join(dict.fromkeys(f"{c.model} {np.round(c.distortion, 5).tolist()}"
                                                          for c in distorted)) + " (applied in projection)"
        projector = LidarProjector(reader, camera, side, T_fixed) if t.cloud else None
        # pass 2: stream images, join with the auxiliary topics
        prefix = _safe_name(o.name_prefix if o.name_prefix is not None else reader.path.stem)
        emit = FrameWriter(reader, t, aux, side, projector, out, get_class_set(o.class_set), o.split, prefix,
                           stats)
        progress = _progress(reader.topics[t.image].count, o.verbose)
        try:
            for joined in join_frames(reader, t.image, aux, tol_ns, o.every, o.limit, stats):
                emit(joined)
                progress.update(1)
        finally:
            progress.close()
            emit.close()
        stats["images_in_bag"] = reader.topics[t.image].count
        stats["problems"] = list(reader.problems)
        n = stats["matched"]
        stats["mean_points_per_frame"] = stats["projected_points"] / n if n else 0.0
        if emit.writer is None:
            stats["note"] = "no frame written"
    if o.verbose:
        print_summary(stats)
    if stats["problems"]:
        raise BagError(Path(bag), f"damaged bag: wrote the {stats['frames_written']} frames that could be read "
                                  f"to {out}; " + "; ".join(stats["problems"]))
    return stats


def _listing(reader: BagReader) -> str:
    return ", ".join(f"{t.name} ({t.msgtype})" for t in reader.topics.values()) or "none"


def _progress(total: int, verbose: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="from-bag", file=sys.stderr, leave=False, disable=not verbose)


def print_summary(stats: dict[str, Any]) -> None:
    src = stats.get("cloud_topic") or stats.get("depth_topic") or "no depth source"
    print(f"from-bag {stats['bag']} -> {stats['out']}/{stats['split']}: {stats['frames_written']} frames written "
          f"({stats['image_topic']}, depth from {src})")
    if stats.get("cloud_topic") or stats.get("depth_topic"):
        print(f"  matched {stats['matched']}, unmatched {stats['unmatched']} (no depth), "
              f"mean projected points per frame {stats['mean_points_per_frame']:.0f}")
    if stats.get("extrinsics"):
        print(f"  extrinsics: {stats['extrinsics']}")
    for key in ("distortion", "evicted", "note"):
        if stats.get(key):
            print(f"  {key}: {stats[key]}")
    if stats.get("camera_info_changes"):
        how = ("each frame's intrinsics written beside it (camera/<name>.txt)" if stats.get("per_frame_intrinsics")
               else "only the distortion differs; dataset.yaml keeps one set of intrinsics")
        print(f"  camera_info changed {stats['camera_info_changes']} times ({stats.get('cameras')} different cameras): "
              f"each image projected with its own; {how}")
    if stats.get("labels"):
        print(f"  labels: {stats['labels']} frames")


def main_from_args(args: argparse.Namespace) -> int:
    """`meco data from-bag` (options: ImportBagOptions)."""
    try:
        import_bag(args.bag, args.out, from_args(ImportBagOptions, args))
    except (BagError, ValueError) as exc:
        print(f"meco data from-bag: error: {exc}", file=sys.stderr)
        return 1
    return 0
