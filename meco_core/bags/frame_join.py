"""Pair each camera image of a bag with its auxiliary messages (cloud, depth, labels, camera_info)
by header stamp, in two passes that keep memory bounded.

Why its own module: bag import (`meco data from-bag`) and replay evaluation
(meco_ros.replay) must match frames identically, so both call these two passes:
`read_side_info` (camera_info, tf and the stamps of the auxiliary topics) and `join_frames`
(the images streamed in bag order with a small cache of recent auxiliary payloads).
"""
from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from meco_core.bags import (
    TF_MESSAGE,
    BagError,
    BagReader,
    CameraModel,
    TfTree,
    camera_info_from_msg,
    clean_frame,
    cloud_to_xyz,
    depth_from_msg,
    labels_from_msg,
    stamp_ns,
)
from meco_core.defaults import MIN_LIDAR_RANGE_M

TF_TOPICS = ("/tf_static", "/tf")
_CACHE = 16  # recent auxiliary messages kept per topic for the join


def tf_topics(reader: BagReader) -> list[str]:
    """The bag's tf topics (/tf_static, /tf) that hold TFMessages."""
    return [t for t in TF_TOPICS if t in reader.topics and reader.topics[t].msgtype == TF_MESSAGE]


@dataclass
class Aux:
    """One auxiliary topic (cloud / depth / seg / info): stamps from pass 1, recent payloads in pass 2."""

    topic: str
    kind: str  # cloud | depth | seg | info
    stamps: list[int] = field(default_factory=list)  # per message, in bag order
    order: np.ndarray | None = None  # indices sorting `stamps`
    sorted_stamps: np.ndarray | None = None
    seen: int = 0  # messages received in pass 2
    cache: dict[int, Any] = field(default_factory=dict)
    frame: str = ""

    def finish(self) -> None:
        s = np.asarray(self.stamps, np.int64)
        self.order = np.argsort(s, kind="stable")
        self.sorted_stamps = s[self.order]

    def match(self, t: int, tol_ns: int) -> int | None:
        """Index (bag order) of the message with the nearest stamp within tolerance."""
        ss = self.sorted_stamps
        if ss is None or len(ss) == 0:
            return None
        i = bisect.bisect_left(ss, t)
        near = [j for j in (i - 1, i) if 0 <= j < len(ss)]
        best = min(near, key=lambda j: abs(int(ss[j]) - t))  # ties: the earlier message
        return int(self.order[best]) if abs(int(ss[best]) - t) <= tol_ns else None

    def put(self, payload: Any) -> None:
        self.cache[self.seen] = payload
        self.seen += 1
        while len(self.cache) > _CACHE:
            self.cache.pop(min(self.cache))


@dataclass
class _Pending:
    index: int
    stamp: int
    msg: Any
    needs: dict[str, int | None]  # aux topic -> matched index


@dataclass
class JoinedFrame:
    """One camera image with the auxiliary payloads matched to it by header stamp."""

    index: int  # position of the image on its topic (0-based, bag order)
    stamp: int  # header stamp in ns (the bag time when the header has none)
    msg: Any  # the camera message (Image or CompressedImage, rosbags object)
    payloads: dict[str, Any]  # aux topic -> decoded payload, or None (no match in tolerance / not readable)


def message_stamp(m: Any, log_ns: int) -> int:
    """Header stamp in ns, the bag time for messages without a (non-zero) stamp."""
    try:
        t = stamp_ns(m)
    except AttributeError:
        return log_ns
    return t if t > 0 else log_ns


def decode_aux(kind: str, msg: Any) -> Any:
    """Pass-2 payload of an auxiliary message: (xyz, frame) | depth metres | labels | the message itself."""
    if kind == "cloud":
        xyz = cloud_to_xyz(msg)
        return xyz[np.linalg.norm(xyz, axis=1) > MIN_LIDAR_RANGE_M], clean_frame(msg.header.frame_id)
    if kind == "depth":
        return depth_from_msg(msg)
    if kind == "seg":
        return labels_from_msg(msg)
    return msg


def same_camera(a: CameraModel, b: CameraModel) -> bool:
    """Same calibration and image size (K, distortion and its model)."""
    return ((a.width, a.height, a.model) == (b.width, b.height, b.model) and np.allclose(a.K, b.K)
            and a.distortion.shape == b.distortion.shape and np.allclose(a.distortion, b.distortion))


@dataclass
class SideInfo:
    """What pass 1 learns: the camera models (by stamp), the transforms and how often the camera changed.

    `camera` is the first CameraInfo of the bag; `camera_at(t)` the one that belongs to an
    image stamped t (see there). `cameras` holds each different model once, `info_changes`
    counts CameraInfo messages unlike the one before them.
    """

    camera: CameraModel | None = None
    tf_static: TfTree = field(default_factory=TfTree)
    tf_dynamic: TfTree = field(default_factory=TfTree)
    info_changes: int = 0
    cameras: list[CameraModel] = field(default_factory=list)
    info_stamps: list[int] = field(default_factory=list)  # per CameraInfo message, bag order
    info_ids: list[int] = field(default_factory=list)  # its index in `cameras`
    _ids: dict[tuple, int] = field(default_factory=dict, repr=False, compare=False)
    _sorted: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def add_camera(self, cam: CameraModel, stamp: int) -> None:
        if self.camera is None:
            self.camera = cam
        last = self.cameras[self.info_ids[-1]] if self.info_ids else None
        if last is not None and same_camera(cam, last):
            k = self.info_ids[-1]
        else:
            if last is not None:
                self.info_changes += 1
            key = (cam.width, cam.height, cam.model, cam.K.tobytes(), cam.distortion.tobytes())
            k = self._ids.setdefault(key, len(self.cameras))
            if k == len(self.cameras):
                self.cameras.append(cam)
        self.info_stamps.append(int(stamp))
        self.info_ids.append(k)
        self._sorted = None

    def camera_at(self, stamp: int) -> CameraModel | None:
        """The CameraInfo of an image stamped `stamp`: the latest one stamped at or before it
        (exact ties included: drivers stamp an image and its CameraInfo alike), else the
        earliest (an image before the first CameraInfo). None if the bag has none."""
        if not self.cameras:
            return None
        if len(self.cameras) == 1:
            return self.cameras[0]
        if self._sorted is None:
            s = np.asarray(self.info_stamps, np.int64)
            order = np.argsort(s, kind="stable")
            self._sorted = s[order], np.asarray(self.info_ids, np.int64)[order]
        ss, ids = self._sorted
        i = int(np.searchsorted(ss, int(stamp), side="right")) - 1
        return self.cameras[int(ids[max(i, 0)])]

    @property
    def camera_changes(self) -> bool:
        """Whether the images' intrinsics or size change within the bag (distortion alone does not count)."""
        return len({(*np.round(c.K[[0, 1, 0, 1], [0, 1, 2, 2]], 9).tolist(), c.width, c.height)
                    for c in self.cameras}) > 1


def read_side_info(reader: BagReader, info_topic: str | None, tf_topics: list[str], aux: dict[str, Aux]) -> SideInfo:
    """Pass 1: camera_info, tf and the header stamps of the auxiliary topics (for the join)."""
    side = SideInfo()
    topics = list(dict.fromkeys(t for t in (info_topic, *tf_topics, *aux) if t))
    for m in reader.messages(topics, strict=False):
        if m.topic == info_topic:
            side.add_camera(camera_info_from_msg(m.msg), message_stamp(m.msg, m.log_ns))
        elif m.topic in tf_topics:
            (side.tf_static if m.topic == "/tf_static" else side.tf_dynamic).add_msg(m.msg)
        if m.topic in aux:
            a = aux[m.topic]
            a.stamps.append(message_stamp(m.msg, m.log_ns))
            if not a.frame and hasattr(m.msg, "header"):
                a.frame = clean_frame(m.msg.header.frame_id)
    for a in aux.values():
        a.finish()
    return side


def join_frames(reader: BagReader, image_topic: str, aux: dict[str, Aux], tol_ns: int, every: int = 1,
                limit: int | None = None, stats: dict[str, Any] | None = None,
                decode: Callable[[str, Any], Any] = decode_aux) -> Iterator[JoinedFrame]:
    """Pass 2: stream the images in bag order, each with its stamp-matched auxiliary payloads.

    `aux` must have been through `read_side_info` (stamps known). An image is yielded once
    every message matched to it has been read, so memory stays bounded by a small cache of
    recent auxiliary payloads. Damaged bags: reads what it can (strict=False; the caller
    checks `reader.problems`). `stats['evicted']` counts matches lost to a bag far out of
    stamp order.
    """
    stats = {} if stats is None else stats
    pending: deque[_Pending] = deque()
    n_image = accepted = 0

    def ready(final: bool) -> Iterator[JoinedFrame]:
        while pending:
            p = pending[0]
            waiting = [t for t, k in p.needs.items() if k is not None and k >= aux[t].seen]
            if waiting and not final:
                return
            pending.popleft()
            for t in waiting:  # bag ended before the matched message was delivered
                p.needs[t] = None
            yield JoinedFrame(p.index, p.stamp, p.msg,
                              {t: (None if k is None else aux[t].cache.get(k)) for t, k in p.needs.items()})

    stream = reader.messages([image_topic, *aux], strict=False)
    try:
        for m in stream:
            if m.topic == image_topic:
                i = n_image
                n_image += 1
                if i % every or (limit is not None and accepted >= limit):
                    continue
                accepted += 1
                t = message_stamp(m.msg, m.log_ns)
                needs = {topic: a.match(t, tol_ns) for topic, a in aux.items()}
                for topic, k in needs.items():
                    if k is not None and k < aux[topic].seen and k not in aux[topic].cache:
                        needs[topic] = None  # evicted: bag far out of stamp order
                        stats["evicted"] = stats.get("evicted", 0) + 1
                pending.append(_Pending(i, t, m.msg, needs))
            else:
                try:
                    payload = decode(aux[m.topic].kind, m.msg)
                except ValueError as exc:  # bad sizes/encodings; replay's `decode` counts them itself
                    raise BagError(reader.path, f"{m.topic} message at {m.log_ns} ns: {exc}") from None
                aux[m.topic].put(payload)
            yield from ready(final=False)
            if limit is not None and accepted >= limit and not pending:
                break
    finally:
        stream.close()
    yield from ready(final=True)
