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
small cache of recent auxiliary messages. Those two passes (`read_side_info`,
`join_frames`) and the cloud projection (`LidarProjector`) are shared with replay
evaluation (meco_ros.replay.evaluator), so both tools match and project identically.
The options (topics, tolerance, extrinsics, split, ...) are `ImportBagOptions` fields
(meco_core.bag_options), the command's flags are generated from them.
"""
from __future__ import annotations

import argparse
import bisect
import os
import re
import sys
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import yaml

from meco_core.bag_options import ImportBagOptions
from meco_core.bags import (
    CAMERA_INFO,
    IMAGE,
    IMAGE_TYPES,
    POINT_CLOUD2,
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
    rgb_from_msg,
    stamp_ns,
)
from meco_core.classes import get_class_set
from meco_core.data.format import DatasetWriter
from meco_core.defaults import MIN_LIDAR_RANGE_M
from meco_core.geometry import (
    invert_transform,
    make_transform,
    project_points,
    quat_to_matrix,
    sparse_depth_image,
    transform_points,
)
from meco_core.options import from_args

TF_TOPICS = ("/tf_static", "/tf")
_CACHE = 16  # recent auxiliary messages kept per topic for the join
_NOT_CAMERA_WORDS = ("depth", "seg", "label", "mask", "disparity")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


# ------------------------------------------------------------------ extrinsics
def _matrix_from(value: Any, where: str) -> np.ndarray:
    if isinstance(value, dict) and "q" in value and "t" in value:
        q, t = value["q"], value["t"]
        q = [q["w"], q["x"], q["y"], q["z"]] if isinstance(q, dict) else list(q)  # lists: w x y z
        t = [t["x"], t["y"], t["z"]] if isinstance(t, dict) else list(t)
        if len(q) != 4 or len(t) != 3:
            raise ValueError(f"{where}: q needs w x y z and t needs x y z")
        return make_transform(quat_to_matrix(*[float(v) for v in q]), [float(v) for v in t])
    T = np.asarray(value.get("matrix") if isinstance(value, dict) else value, np.float64)
    if T.shape != (4, 4) or not np.allclose(T[3], [0, 0, 0, 1]):
        raise ValueError(f"{where}: expected a 4x4 rigid transform or {{q: {{w,x,y,z}}, t: {{x,y,z}}}}")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-5):
        raise ValueError(f"{where}: rotation part is not orthonormal")
    return T


def load_extrinsics(spec: Any) -> np.ndarray:
    """T_camera_lidar (lidar points -> camera optical frame) from a YAML path, a dict or a 4x4 array.

    The YAML must say which way it maps (the RELLIS lesson: a bare transform is ambiguous)::

        T_camera_lidar: {q: {w: .., x: .., y: .., z: ..}, t: {x: .., y: .., z: ..}}
        # or T_camera_lidar: [[4x4]], or T_lidar_camera: ... (the camera pose in the lidar frame)
    """
    if isinstance(spec, np.ndarray):
        return _matrix_from(spec, "extrinsics")
    where = "extrinsics"
    if isinstance(spec, (str, os.PathLike)):
        where = str(spec)
        spec = yaml.safe_load(Path(spec).read_text())
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping with T_camera_lidar or T_lidar_camera")
    if "T_camera_lidar" in spec:
        return _matrix_from(spec["T_camera_lidar"], f"{where}: T_camera_lidar")
    if "T_lidar_camera" in spec:
        return invert_transform(_matrix_from(spec["T_lidar_camera"], f"{where}: T_lidar_camera"))
    raise ValueError(f"{where}: needs a T_camera_lidar (or T_lidar_camera) entry; has {sorted(spec)}")


# ------------------------------------------------------------------ projection
def project_cloud(xyz_camera: np.ndarray, cam: CameraModel, width: int, height: int) -> np.ndarray:
    """Sparse float32 depth (H, W) of points in the camera optical frame, distortion applied."""
    if not cam.has_distortion:
        u, v, z, _ = project_points(xyz_camera, cam.K, width, height)
        return sparse_depth_image(u, v, z, width, height)
    pts = np.asarray(xyz_camera, np.float64)
    front = np.isfinite(pts).all(axis=1) & (pts[:, 2] > 1e-3)
    pts = pts[front]
    xn, yn = pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2]
    # only rays inside the image's undistorted field of view: the distortion polynomial folds
    # rays far outside it back into the image
    lo, hi = _normalized_bounds(cam, width, height)
    keep = (xn >= lo[0]) & (xn <= hi[0]) & (yn >= lo[1]) & (yn <= hi[1])
    pts = pts[keep]
    obj = pts.reshape(-1, 1, 3)
    if len(pts) == 0:
        return np.zeros((height, width), np.float32)
    if cam.model == "equidistant":
        uv, _ = cv2.fisheye.projectPoints(obj, np.zeros(3), np.zeros(3), cam.K, cam.distortion[:4])
    else:
        uv, _ = cv2.projectPoints(obj, np.zeros(3), np.zeros(3), cam.K, cam.distortion)
    uv = uv.reshape(-1, 2)
    u = np.floor(uv[:, 0] + 0.5).astype(np.int64)
    v = np.floor(uv[:, 1] + 0.5).astype(np.int64)
    return sparse_depth_image(u, v, pts[:, 2].astype(np.float32), width, height)


def _normalized_bounds(cam: CameraModel, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.linspace(0, width - 1, 33), np.linspace(0, height - 1, 33)
    border = np.concatenate([np.stack([xs, np.zeros_like(xs)], 1), np.stack([xs, np.full_like(xs, height - 1)], 1),
                             np.stack([np.zeros_like(ys), ys], 1), np.stack([np.full_like(ys, width - 1), ys], 1)])
    pix = border.reshape(-1, 1, 2).astype(np.float64)
    if cam.model == "equidistant":
        norm = cv2.fisheye.undistortPoints(pix, cam.K, cam.distortion[:4]).reshape(-1, 2)
    elif cam.model in ("plumb_bob", "rational_polynomial"):
        norm = cv2.undistortPoints(pix, cam.K, cam.distortion).reshape(-1, 2)
    else:
        raise ValueError(f"unsupported distortion model {cam.model!r} (plumb_bob, rational_polynomial, equidistant)")
    lo, hi = norm.min(axis=0), norm.max(axis=0)
    margin = 0.05 * (hi - lo)
    return lo - margin, hi + margin


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


# ------------------------------------------------------------------ join
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


class LidarProjector:
    """Clouds -> sparse depth images of the camera: extrinsics given (T_camera_lidar) or from the
    bag's tf (looked up once per frame pair). `source` says where the extrinsics came from.
    `camera` is the default model; `depth(..., camera=)` projects with an image's own."""

    def __init__(self, reader: BagReader, camera: CameraModel, side: SideInfo, T_fixed: np.ndarray | None = None):
        self.reader, self.camera, self.side, self.T_fixed = reader, camera, side, T_fixed
        self.source: str | None = None
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def T_camera_lidar(self, cam_frame: str, lidar_frame: str) -> np.ndarray:
        key = (cam_frame, lidar_frame)
        if key not in self._cache:
            if self.T_fixed is not None:
                self._cache[key], self.source = self.T_fixed, "given"
            else:
                self._cache[key], self.source = _lookup(self.reader, self.side.tf_static, self.side.tf_dynamic,
                                                        cam_frame, lidar_frame)
        return self._cache[key]

    def depth(self, xyz: np.ndarray, lidar_frame: str, image_frame: str, width: int, height: int,
              camera: CameraModel | None = None) -> np.ndarray:
        """Sparse float32 depth (H, W) of lidar points `xyz` (in `lidar_frame`), 0 = no point,
        projected with `camera` (the image's CameraInfo; default: `self.camera`)."""
        cam = camera or self.camera
        cam_frame = cam.frame_id or clean_frame(image_frame)
        pts = transform_points(self.T_camera_lidar(cam_frame, lidar_frame), xyz)
        return project_cloud(pts, cam, width, height)


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


def tf_topics(reader: BagReader) -> list[str]:
    """The bag's tf topics (/tf_static, /tf) that hold TFMessages."""
    return [t for t in TF_TOPICS if t in reader.topics and reader.topics[t].msgtype == TF_MESSAGE]


def _lookup(reader: BagReader, static: TfTree, dynamic: TfTree, cam: str, lidar: str) -> tuple[np.ndarray, str]:
    """T_camera_lidar from the bag's tf (static first; /tf only as a fallback, its last value)."""
    if cam == lidar:
        return np.eye(4), "identity (same frame)"
    for tree, name in ((static, "/tf_static"), (dynamic, "/tf")):
        try:
            return tree.lookup(cam, lidar), f"{name} {lidar} -> {cam}"
        except KeyError:
            pass
    frames = sorted(set(static.frames) | set(dynamic.frames))
    raise BagError(reader.path, f"no transform from the lidar frame {lidar!r} to the camera frame {cam!r} in "
                                f"/tf_static (frames there: {frames or 'none'}); pass --extrinsics YAML")


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
