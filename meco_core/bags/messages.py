"""rosbags typestore messages <-> numpy for the bag tools (camera, lidar, camera_info, tf).

Builders take the typestore of the bag being written because ROS 1 and ROS 2 messages
differ (ROS 1 headers carry `seq`, CameraInfo spells `K`/`D` in capitals); readers are
duck-typed over both. Images always go through `meco_core.image_codec` so that the node,
the importers and replay evaluation decode pixels identically.
"""
from __future__ import annotations
from meco_core.stamps import split_ns, stamp_to_ns

import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from meco_core import image_codec
from meco_core.errors import InputSizeError
from meco_core.geometry import invert_transform, make_transform, quat_to_matrix

__all__ = [
    "IMAGE", "COMPRESSED_IMAGE", "CAMERA_INFO", "POINT_CLOUD2", "TF_MESSAGE", "IMAGE_TYPES", "BagMessageError",
    "MessageSizeError",
    "msgtype_of", "time_msg", "header_msg", "image_msg", "compressed_image_msg", "camera_info_msg",
    "pointcloud2_msg", "transform_stamped_msg", "tf_message", "matrix_to_quat", "stamp_ns", "image_from_msg",
    "rgb_from_msg", "depth_from_msg", "labels_from_msg", "cloud_fields", "cloud_to_array", "cloud_to_xyz",
    "CameraModel", "camera_info_from_msg", "clean_frame", "transforms_from_tf", "TfTree",
]

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)

# sensor_msgs/PointField datatypes -> numpy
_POINTFIELD_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
_FLOAT32 = 7


class BagMessageError(ValueError):
    """A message does not hold what its type promises (missing fields, bad sizes)."""


class MessageSizeError(BagMessageError, InputSizeError):
    """A message declares more data than it holds (e.g. a PointCloud2's width x height x point_step);
    refused before any array of that size is made."""


def msgtype_of(msg: Any) -> str:
    """'sensor_msgs/msg/Image' for a rosbags message object."""
    return getattr(msg, "__msgtype__", type(msg).__name__)


def _is_ros1(ts: Any) -> bool:
    return "seq" in dict(ts.fielddefs["std_msgs/msg/Header"][1])


# ------------------------------------------------------------------ builders
def time_msg(ts: Any, stamp_ns: int) -> Any:
    sec, nsec = split_ns(stamp_ns)
    return ts.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec)


def header_msg(ts: Any, stamp_ns: int, frame_id: str, seq: int = 0) -> Any:
    kw: dict[str, Any] = {"seq": seq} if _is_ros1(ts) else {}
    return ts.types["std_msgs/msg/Header"](**kw, stamp=time_msg(ts, stamp_ns), frame_id=frame_id)


def image_msg(ts: Any, array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str, seq: int = 0) -> Any:
    """sensor_msgs/Image from an array whose dtype/channels match `encoding` (rgb8, 32FC1, ...)."""
    h, w, step, data = image_codec.encode_image(array, encoding)
    return ts.types[IMAGE](
        header=header_msg(ts, stamp_ns, frame_id, seq), height=h, width=w, encoding=encoding,
        is_bigendian=int(sys.byteorder == "big"), step=step, data=np.frombuffer(data, np.uint8),
    )


def compressed_image_msg(ts: Any, array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str,
                         fmt: str = "jpeg", quality: int = 90, seq: int = 0) -> Any:
    """sensor_msgs/CompressedImage as image_transport's compressed publisher writes it."""
    format_str, data = image_codec.encode_compressed(array, encoding, fmt=fmt, quality=quality)
    return ts.types[COMPRESSED_IMAGE](header=header_msg(ts, stamp_ns, frame_id, seq), format=format_str,
                                      data=np.frombuffer(data, np.uint8))


def camera_info_msg(ts: Any, K: np.ndarray, width: int, height: int, stamp_ns: int, frame_id: str,
                    distortion: Sequence[float] = (), model: str = "plumb_bob", seq: int = 0) -> Any:
    """sensor_msgs/CameraInfo of a pinhole camera (R = I, P = [K | 0])."""
    K = np.asarray(K, np.float64).reshape(3, 3)
    P = np.zeros((3, 4))
    P[:, :3] = K
    d = np.asarray(list(distortion) or [0.0] * (5 if model == "plumb_bob" else 0), np.float64)
    names = ("D", "K", "R", "P") if _is_ros1(ts) else ("d", "k", "r", "p")
    arrays = dict(zip(names, (d, K.reshape(9).copy(), np.eye(3).reshape(9), P.reshape(12))))
    roi = ts.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return ts.types[CAMERA_INFO](header=header_msg(ts, stamp_ns, frame_id, seq), height=int(height),
                                 width=int(width), distortion_model=model, **arrays, binning_x=0, binning_y=0, roi=roi)


def pointcloud2_msg(ts: Any, xyz: np.ndarray, stamp_ns: int, frame_id: str,
                    intensity: np.ndarray | None = None, seq: int = 0) -> Any:
    """Unorganised PointCloud2 (height 1) with float32 x, y, z [, intensity] fields."""
    xyz = np.asarray(xyz, np.float32).reshape(-1, 3)
    names = ["x", "y", "z"] + ([] if intensity is None else ["intensity"])
    rec = np.empty(len(xyz), dtype=[(n, "<f4") for n in names])
    rec["x"], rec["y"], rec["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if intensity is not None:
        rec["intensity"] = np.asarray(intensity, np.float32).reshape(-1)
    PointField = ts.types["sensor_msgs/msg/PointField"]
    fields = [PointField(name=n, offset=4 * i, datatype=_FLOAT32, count=1) for i, n in enumerate(names)]
    step = 4 * len(names)
    return ts.types[POINT_CLOUD2](
        header=header_msg(ts, stamp_ns, frame_id, seq), height=1, width=len(xyz), fields=fields,
        is_bigendian=False, point_step=step, row_step=step * len(xyz),
        data=rec.view(np.uint8).reshape(-1), is_dense=bool(np.isfinite(xyz).all()),
    )


def transform_stamped_msg(ts: Any, parent: str, child: str, T_parent_child: np.ndarray, stamp_ns: int) -> Any:
    """geometry_msgs/TransformStamped: the pose of `child` in `parent` (maps child points to parent)."""
    T = np.asarray(T_parent_child, np.float64)
    w, x, y, z = matrix_to_quat(T[:3, :3])
    t = T[:3, 3]
    types = ts.types
    transform = types["geometry_msgs/msg/Transform"](
        translation=types["geometry_msgs/msg/Vector3"](x=float(t[0]), y=float(t[1]), z=float(t[2])),
        rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
    )
    return types["geometry_msgs/msg/TransformStamped"](header=header_msg(ts, stamp_ns, parent),
                                                       child_frame_id=child, transform=transform)


def tf_message(ts: Any, transforms: Iterable[tuple[str, str, np.ndarray]], stamp_ns: int) -> Any:
    """tf2_msgs/TFMessage from (parent, child, T_parent_child) triples (for /tf_static)."""
    return ts.types[TF_MESSAGE](transforms=[transform_stamped_msg(ts, p, c, T, stamp_ns) for p, c, T in transforms])


def matrix_to_quat(R: np.ndarray) -> tuple[float, float, float, float]:
    """(w, x, y, z) of a rotation matrix (Shepperd's method, numerically stable), w >= 0."""
    R = np.asarray(R, np.float64)
    tr = np.trace(R)
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k])
        q = [0.0] * 4
        q[0] = (R[k, j] - R[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (R[j, i] + R[i, j]) / s
        q[1 + k] = (R[k, i] + R[i, k]) / s
    q = np.asarray(q) / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    return float(q[0]), float(q[1]), float(q[2]), float(q[3])


# ------------------------------------------------------------------ readers
def stamp_ns(msg: Any) -> int:
    """Header stamp of a message in nanoseconds."""
    return stamp_to_ns(msg.header.stamp)


def image_from_msg(msg: Any) -> tuple[np.ndarray, str]:
    """Image or CompressedImage -> (array, encoding), a view of the message buffer when possible."""
    if hasattr(msg, "format"):
        return image_codec.decode_compressed(msg.format, msg.data)
    arr = image_codec.decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian)
    return arr, msg.encoding


def rgb_from_msg(msg: Any) -> np.ndarray:
    """Any camera image message -> contiguous (H, W, 3) uint8 RGB."""
    arr, enc = image_from_msg(msg)
    return image_codec.to_rgb8(arr, enc)


def depth_from_msg(msg: Any) -> np.ndarray:
    """Depth image (32FC1/64FC1 metres or 16UC1/mono16 millimetres) -> float32 metres, 0 = invalid."""
    arr, enc = image_from_msg(msg)
    if arr.ndim != 2:
        raise BagMessageError(f"depth image must have one channel, got {enc} {arr.shape}")
    if arr.dtype.kind == "f":
        d = arr.astype(np.float32)
    elif arr.dtype == np.uint16:
        d = arr.astype(np.float32) / 1000.0
    else:
        raise BagMessageError(f"depth encoding {enc} is neither float metres (32FC1) nor uint16 millimetres (16UC1)")
    d[~np.isfinite(d) | (d < 0)] = 0.0
    return d


def labels_from_msg(msg: Any) -> np.ndarray:
    """Label image (mono8/8UC1 class ids, 255 = ignore) -> (H, W) uint8."""
    arr, enc = image_from_msg(msg)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise BagMessageError(f"segmentation image must be mono8/8UC1 class ids, got {enc} {arr.shape}")
    return np.ascontiguousarray(arr)


def cloud_fields(msg: Any) -> dict[str, tuple[int, int, int]]:
    """name -> (offset, datatype, count) of a PointCloud2."""
    return {f.name: (int(f.offset), int(f.datatype), int(f.count)) for f in msg.fields}


def cloud_to_array(msg: Any, names: Sequence[str]) -> np.ndarray:
    """(N, len(names)) float64 of the named fields for every point (NaNs kept).

    Handles arbitrary offsets, point_step, row padding (row_step > width*point_step),
    big-endian data and any numeric PointField type.
    """
    fields = cloud_fields(msg)
    missing = [n for n in names if n not in fields]
    if missing:
        raise BagMessageError(f"PointCloud2 has no field(s) {missing}; fields: {sorted(fields)}")
    h, w, step, row_step = int(msg.height), int(msg.width), int(msg.point_step), int(msg.row_step)
    n = h * w  # Python ints: no overflow, and nothing is allocated before the data size is checked
    if n == 0:
        return np.zeros((0, len(names)))
    if h < 0 or w < 0 or step <= 0 or row_step < w * step:
        raise BagMessageError(f"PointCloud2 point_step {step} / row_step {row_step} too small for width {w}")
    order = ">" if msg.is_bigendian else "<"
    dt = {}
    for name in names:
        off, typ, _count = fields[name]
        if typ not in _POINTFIELD_DTYPES:
            raise BagMessageError(f"PointCloud2 field {name!r} has unknown datatype {typ}")
        size = np.dtype(_POINTFIELD_DTYPES[typ]).itemsize
        if off + size > step:
            raise BagMessageError(f"PointCloud2 field {name!r} at offset {off} exceeds point_step {step}")
        dt[name] = (np.dtype(order + _POINTFIELD_DTYPES[typ]), off)
    data = np.frombuffer(memoryview(msg.data).cast("B"), np.uint8)
    if data.size < row_step * (h - 1) + w * step:
        raise MessageSizeError(f"PointCloud2 data has {data.size} bytes, expected {row_step * h} "
                               f"({h} rows x {row_step}; {w} points a row x point_step {step})")
    rows = np.lib.stride_tricks.as_strided(data, shape=(h, w * step), strides=(row_step, 1))
    packed = np.ascontiguousarray(rows).reshape(-1)
    rec = packed.view(np.dtype({"names": list(dt), "formats": [v[0] for v in dt.values()],
                                "offsets": [v[1] for v in dt.values()], "itemsize": step}))
    return np.stack([rec[name].astype(np.float64) for name in names], axis=1)


def cloud_to_xyz(msg: Any) -> np.ndarray:
    """(N, 3) float32 finite x, y, z of a PointCloud2 (NaN/inf points of non-dense clouds dropped)."""
    xyz = cloud_to_array(msg, ("x", "y", "z")).astype(np.float32)
    return xyz[np.isfinite(xyz).all(axis=1)]


@dataclass
class CameraModel:
    """What the importers need from a CameraInfo."""

    K: np.ndarray  # 3x3
    width: int
    height: int
    distortion: np.ndarray
    model: str
    frame_id: str

    def intrinsics(self) -> dict[str, float]:
        """dataset.yaml intrinsics (fx fy cx cy width height)."""
        return dict(fx=float(self.K[0, 0]), fy=float(self.K[1, 1]), cx=float(self.K[0, 2]),
                    cy=float(self.K[1, 2]), width=int(self.width), height=int(self.height))

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.distortion != 0))


def camera_info_from_msg(msg: Any) -> CameraModel:
    """CameraInfo (ROS 1 `K`/`D` or ROS 2 `k`/`d`) -> CameraModel; raises if K is empty."""
    k = getattr(msg, "k", None)
    k = msg.K if k is None else k
    d = getattr(msg, "d", None)
    d = msg.D if d is None else d
    K = np.asarray(k, np.float64).reshape(3, 3)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise BagMessageError(f"CameraInfo has no valid K (fx={K[0, 0]}, fy={K[1, 1]}): uncalibrated camera?")
    return CameraModel(K=K, width=int(msg.width), height=int(msg.height), distortion=np.asarray(d, np.float64),
                       model=str(msg.distortion_model), frame_id=clean_frame(msg.header.frame_id))


def clean_frame(frame_id: str) -> str:
    """tf2 frame ids have no leading slash (ROS 1 bags often do)."""
    return frame_id.lstrip("/")


def transforms_from_tf(msg: Any) -> list[tuple[str, str, np.ndarray]]:
    """tf2_msgs/TFMessage -> [(parent, child, T_parent_child 4x4)]."""
    out = []
    for tfs in msg.transforms:
        r, t = tfs.transform.rotation, tfs.transform.translation
        T = make_transform(quat_to_matrix(r.w, r.x, r.y, r.z), (t.x, t.y, t.z))
        out.append((clean_frame(tfs.header.frame_id), clean_frame(tfs.child_frame_id), T))
    return out


@dataclass
class TfTree:
    """Static transforms of a bag; chains parent/child edges in either direction."""

    edges: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (parent, child) -> T_parent_child

    def add(self, parent: str, child: str, T_parent_child: np.ndarray) -> None:
        self.edges[(clean_frame(parent), clean_frame(child))] = np.asarray(T_parent_child, np.float64)

    def add_msg(self, msg: Any) -> None:
        for parent, child, T in transforms_from_tf(msg):
            self.add(parent, child, T)

    @property
    def frames(self) -> list[str]:
        return sorted({f for e in self.edges for f in e})

    def lookup(self, target: str, source: str) -> np.ndarray:
        """T_target_source (maps points in `source` into `target`); KeyError naming known frames."""
        target, source = clean_frame(target), clean_frame(source)
        adj: dict[str, list[tuple[str, np.ndarray]]] = {}
        for (p, c), T in self.edges.items():
            adj.setdefault(c, []).append((p, T))  # c -> p: T_p_c
            adj.setdefault(p, []).append((c, invert_transform(T)))
        # breadth-first from source, accumulating T_node_source
        best = {source: np.eye(4)}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            if node == target:
                return best[node]
            for nxt, T_nxt_node in adj.get(node, []):
                if nxt not in best:
                    best[nxt] = T_nxt_node @ best[node]
                    queue.append(nxt)
        raise KeyError(f"no transform chain from {source!r} to {target!r}; known frames: {self.frames} "
                       f"(edges: {[f'{p}->{c}' for p, c in self.edges]})")
