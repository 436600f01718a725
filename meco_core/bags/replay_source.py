"""Bag side of replay evaluation: camera frames with their ground truth, matched by header stamp.

ROS-free (rosbags only). Reuses the from-bag importer's two passes and lidar projection
(`meco_core.bags.to_dataset`: `read_side_info`, `join_frames`, `LidarProjector`) so replay
and `meco data from-bag` pair and project identically. Ground truth comes from a depth
image (32FC1 m / 16UC1 mm), a lidar PointCloud2 projected with CameraInfo and extrinsics
(YAML or /tf_static), and a label image (mono8, 255 = ignore).

Only a missing or unusable *camera* topic is fatal (`BagError`); a missing ground-truth
topic, an undecodable message or a ground-truth message without a camera frame near its
stamp is recorded in `problems` and the replay goes on with what there is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from meco_core.bags import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    IMAGE_TYPES,
    POINT_CLOUD2,
    BagError,
    BagMessageError,
    BagReader,
    MissingTopicError,
)
from meco_core.bags.frame_join import Aux, decode_aux, join_frames, read_side_info, tf_topics
from meco_core.bags.lidar_projection import LidarProjector, load_extrinsics
from meco_core.bags.to_dataset import choose_topic

_MAX_LISTED = 3  # examples per kind of problem


@dataclass
class GroundTruth:
    """Ground truth of one frame at the camera's resolution; None where the bag has none."""

    depth: np.ndarray | None = None  # float32 metres, 0 = no data
    labels: np.ndarray | None = None  # uint8 class ids, 255 = ignore

    @property
    def empty(self) -> bool:
        return self.depth is None and self.labels is None


@dataclass
class ReplayFrame:
    """A camera message to publish, the camera_info with its stamp, and the matched ground truth."""

    index: int  # position on the camera topic
    stamp: int  # header stamp, ns (bag time if the header has none)
    image: Any  # rosbags Image or CompressedImage
    info: Any | None  # rosbags CameraInfo matched by stamp
    gt: GroundTruth
    missing: list[str] = field(default_factory=list)  # ground-truth topics with no message in tolerance

    @property
    def size(self) -> tuple[int, int] | None:
        """(H, W) of a raw image; None for compressed ones (known only after decoding)."""
        return (int(self.image.height), int(self.image.width)) if hasattr(self.image, "height") else None


@dataclass
class ReplayTopics:
    image: str
    image_type: str
    info: str | None = None
    depth: str | None = None
    lidar: str | None = None
    seg: str | None = None

    @property
    def compressed(self) -> bool:
        return self.image_type == COMPRESSED_IMAGE


class BagSource:
    """Open a bag for replay; `frames()` yields ReplayFrames in bag order (use as a context manager)."""

    def __init__(self, path: str | Path, image_topic: str, seg_topic: str | None = None,
                 depth_topic: str | None = None, lidar_topic: str | None = None, info_topic: str | None = None,
                 extrinsics: str | Path | None = None, tolerance_ms: float = 50.0, limit: int | None = None) -> None:
        if depth_topic and lidar_topic:
            raise ValueError("give a depth ground-truth topic or a lidar topic, not both")
        self.path = Path(path)
        self.requested = dict(image=image_topic, seg=seg_topic, depth=depth_topic, lidar=lidar_topic, info=info_topic)
        self.extrinsics = extrinsics
        self.tol_ns = int(round(tolerance_ms * 1e6))
        self.limit = limit
        self.problems: list[str] = []  # own findings; all_problems() adds the reader's (damage)
        self.counts: dict[str, int] = {"decode_errors": 0, "gt_unmatched": 0}
        self.reader = BagReader(self.path)
        self.topics: ReplayTopics | None = None
        self.projector: LidarProjector | None = None
        self._aux: dict[str, Aux] = {}
        self._examples: dict[str, int] = {}

    # ---- opening: topics, calibration, stamps (pass 1) ----
    def open(self) -> "BagSource":
        """Raises BagError / MissingTopicError if the camera topic cannot be replayed."""
        self.reader.open()
        r = self.reader
        image = self.requested["image"]
        r.require([image], {image: IMAGE_TYPES})  # fatal: nothing to replay without it
        topics = ReplayTopics(image, r.topics[image].msgtype)
        topics.seg = self._optional("seg", (IMAGE,))
        topics.depth = self._optional("depth", (IMAGE,))
        topics.lidar = self._optional("lidar", (POINT_CLOUD2,))
        try:
            topics.info = choose_topic(r, self.requested["info"], (CAMERA_INFO,), "info")
        except BagError as exc:
            self.problems.append(f"camera_info: {exc}")
        self.topics = topics
        aux = {t: Aux(t, kind) for t, kind in ((topics.info, "info"), (topics.depth, "depth"),
                                              (topics.lidar, "cloud"), (topics.seg, "seg")) if t}
        T_fixed = load_extrinsics(self.extrinsics) if topics.lidar and self.extrinsics else None
        tfs = tf_topics(r) if topics.lidar and T_fixed is None else []
        cams = Aux(image, "image")  # camera stamps too: to find ground truth no frame matches
        side = read_side_info(r, topics.info, tfs, {**aux, image: cams})
        self._aux = aux
        if topics.lidar:
            if side.camera is None:
                self.problems.append(f"lidar ground truth {topics.lidar} needs a CameraInfo topic with a valid K "
                                     f"(--info-topic); none readable in the bag: no depth ground truth")
                del aux[topics.lidar]
                topics.lidar = None
            else:
                self.projector = LidarProjector(r, side.camera, side, T_fixed)
        self._count_unmatched_gt(cams)
        return self

    def _optional(self, role: str, types: tuple[str, ...]) -> str | None:
        """A ground-truth topic: missing or of the wrong type is a problem, not a failure."""
        topic = self.requested[role]
        if not topic:
            return None
        try:
            self.reader.require([topic], {topic: types})
        except MissingTopicError as exc:
            listing = ", ".join(f"{t.name} ({t.msgtype})" for t in exc.available.values()) or "none"
            self.problems.append(f"{role} ground-truth topic {topic} is not in the bag (topics: {listing}); "
                                 f"no {role} metrics")
            return None
        except BagError as exc:
            self.problems.append(f"{role} ground-truth topic unusable: {exc}; no {role} metrics")
            return None
        return topic

    def _count_unmatched_gt(self, cams: Aux) -> None:
        """Ground-truth messages with no camera frame within tolerance (e.g. stamps from another clock)."""
        for a in self._aux.values():
            if a.kind == "info":
                continue
            n = sum(cams.match(t, self.tol_ns) is None for t in a.stamps)
            if n:
                self.counts["gt_unmatched"] += n
                self.problems.append(f"{n} of {len(a.stamps)} messages on {a.topic} have no camera frame within "
                                     f"{self.tol_ns / 1e6:g} ms of their header stamp (ground truth without a "
                                     "matching image: not scored)")

    @property
    def count(self) -> int:
        """Camera frames that will be replayed (the readable ones, up to --limit)."""
        assert self.topics is not None
        n = self.reader.topics[self.topics.image].count
        return min(n, self.limit) if self.limit is not None else n

    # ---- pass 2 ----
    def _decode(self, kind: str, msg: Any) -> Any:
        try:
            return decode_aux(kind, msg)
        except (BagMessageError, ValueError) as exc:
            self.counts["decode_errors"] += 1
            self._example("decode", f"undecodable {kind} message: {exc}")
            return None

    def _example(self, key: str, text: str) -> None:
        n = self._examples.get(key, 0)
        self._examples[key] = n + 1
        if n < _MAX_LISTED:
            self.problems.append(text)

    def frames(self) -> Iterator[ReplayFrame]:
        """Camera frames in bag order with stamp-matched camera_info and ground truth."""
        assert self.topics is not None, "open() first"
        t = self.topics
        stats: dict[str, Any] = {}
        for j in join_frames(self.reader, t.image, self._aux, self.tol_ns, limit=self.limit, stats=stats,
                             decode=self._decode):
            gt = GroundTruth()
            missing = []
            for topic, payload in j.payloads.items():
                kind = self._aux[topic].kind
                if payload is None:
                    if kind != "info":
                        missing.append(topic)
                    continue
                if kind == "seg":
                    gt.labels = payload
                elif kind == "depth":
                    gt.depth = payload
                elif kind == "cloud":
                    gt.depth = self._project(payload, j.msg, j.stamp)
            info = j.payloads.get(t.info) if t.info else None
            yield ReplayFrame(j.index, j.stamp, j.msg, info, gt, missing)
        if stats.get("evicted"):
            self.problems.append(f"{stats['evicted']} ground-truth matches lost: the bag is far out of stamp order")

    def all_problems(self) -> list[str]:
        """What was lost reading the bag (damage, salvage) and what could not be used."""
        return list(dict.fromkeys([*self.reader.problems, *self.problems]))

    def _project(self, payload: tuple[np.ndarray, str], image: Any, stamp: int) -> np.ndarray | None:
        """The cloud as sparse depth through the camera_info in force at the image's stamp
        (the rule `meco data from-bag` uses: the camera may change within a bag)."""
        assert self.projector is not None
        xyz, frame = payload
        cam = self.projector.side.camera_at(stamp) or self.projector.camera
        h, w = (int(image.height), int(image.width)) if hasattr(image, "height") else (cam.height, cam.width)
        if cam.width and (cam.width, cam.height) != (w, h):
            self._example("size", f"camera_info is {cam.width}x{cam.height} but the images are {w}x{h}: "
                                  "lidar ground truth skipped")
            return None
        try:
            return self.projector.depth(xyz, frame, image.header.frame_id, w, h, camera=cam)
        except BagError as exc:
            self._example("tf", f"lidar ground truth skipped: {exc}")
            return None

    # ---- what the label ids mean ----
    def label_class_set(self) -> tuple[Any, str] | None:
        """(class set name or dict, where it was found) for the label topic, from the
        /meco/dataset_info String that `meco data make-bag` writes; None when the bag has none."""
        import json

        from meco_core.bags.from_dataset import DATASET_INFO_TOPIC, STRING

        assert self.topics is not None, "open() first"
        info = self.reader.topics.get(DATASET_INFO_TOPIC)
        if not self.topics.seg or info is None or info.msgtype != STRING:
            return None
        for m in self.reader.messages([DATASET_INFO_TOPIC], strict=False):
            try:
                doc = json.loads(m.msg.data)
                name = doc["label_topics"][self.topics.seg]
            except (ValueError, KeyError, TypeError):
                continue
            spec = (doc.get("class_sets") or {}).get(name) or name
            return spec, f"bag metadata {DATASET_INFO_TOPIC}"
        return None

    def label_ids(self) -> dict[int, int]:
        """{label id: messages it occurs in} over every readable message of the label topic
        (a pass over that topic only, before the replay)."""
        assert self.topics is not None, "open() first"
        seen = np.zeros(256, np.int64)
        if not self.topics.seg:
            return {}
        for m in self.reader.messages([self.topics.seg], strict=False):
            try:
                labels = decode_aux("seg", m.msg)
            except (BagMessageError, ValueError):
                continue  # counted when the frames are read
            seen += np.bincount(np.asarray(labels, np.uint8).ravel(), minlength=256) > 0
        return {int(i): int(seen[i]) for i in np.nonzero(seen)[0]}

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> "BagSource":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
