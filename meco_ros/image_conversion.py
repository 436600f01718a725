"""cv_bridge-shaped conversions between sensor_msgs images and numpy, built on image_codec.

ROS 2's cv_bridge is not installable here (and the PyPI ``cv-bridge`` is the broken ROS 1
code), so the node and the bag tools use this. Messages are duck-typed: rclpy
``sensor_msgs.msg.Image``/``CompressedImage`` and rosbags typestore classes both work.
Reads are zero-copy views of ``msg.data``; writes fill rclpy messages with an
``array.array('B')`` (the fast path of the generated setter) and rosbags messages with
the uint8 ndarray their serializer expects.
"""
from __future__ import annotations

import array
import sys
from typing import Any

import numpy as np

from meco_core.image_codec import (
    ImageEncodeError, convert_encoding, decode_compressed, decode_image, encode_compressed,
    encode_image,
)

__all__ = ["imgmsg_to_cv2", "cv2_to_imgmsg", "compressed_imgmsg_to_cv2",
           "cv2_to_compressed_imgmsg"]


def _is_rosbags(msg_type: type) -> bool:
    """rosbags typestore classes are dataclasses tagged with __msgtype__."""
    return hasattr(msg_type, "__msgtype__")


def _rosbags_header(msg_type: type) -> Any:
    """A zero std_msgs/Header from the same typestore module as msg_type."""
    mod = sys.modules[msg_type.__module__]
    header_t = getattr(mod, msg_type.__dataclass_fields__["header"].type)
    time_t = getattr(mod, header_t.__dataclass_fields__["stamp"].type)
    return header_t(stamp=time_t(sec=0, nanosec=0), frame_id="")


def _build(msg_type: type | None, default: str, header: Any, **fields: Any) -> Any:
    """Construct a message of msg_type (default: sensor_msgs.msg.<default>, lazily)."""
    if msg_type is None:
        import sensor_msgs.msg  # lazy: meco_core users without ROS never pay for it
        msg_type = getattr(sensor_msgs.msg, default)
    if _is_rosbags(msg_type):
        data = fields["data"]
        fields["data"] = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
        return msg_type(header=header if header is not None else _rosbags_header(msg_type), **fields)
    msg = msg_type()
    if header is not None:
        msg.header = header
    for k, v in fields.items():
        setattr(msg, k, v)
    return msg


def imgmsg_to_cv2(msg: Any, desired_encoding: str = "passthrough") -> np.ndarray:
    """sensor_msgs/Image -> ndarray (a view of msg.data for passthrough)."""
    arr = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian)
    return convert_encoding(arr, msg.encoding, desired_encoding)


def _passthrough_encoding(arr: np.ndarray) -> str:
    """cv_bridge's 'passthrough' on output: the generic name of the array's type."""
    ch = 1 if arr.ndim == 2 else arr.shape[2]
    names = {"u1": "8U", "i1": "8S", "u2": "16U", "i2": "16S", "i4": "32S", "f4": "32F", "f8": "64F"}
    key = f"{arr.dtype.kind}{arr.dtype.itemsize}"
    if key not in names or arr.ndim not in (2, 3):
        raise ImageEncodeError(f"no ROS encoding for dtype {arr.dtype} shape {arr.shape}")
    return f"{names[key]}C{ch}"


def cv2_to_imgmsg(array_: np.ndarray, encoding: str, header: Any = None,
                  msg_type: type | None = None) -> Any:
    """ndarray -> sensor_msgs/Image (copied once into the message's buffer)."""
    if encoding == "passthrough":
        encoding = _passthrough_encoding(np.asarray(array_))
    h, w, step, data = encode_image(array_, encoding)
    return _build(msg_type, "Image", header, height=h, width=w, encoding=encoding,
                  is_bigendian=int(sys.byteorder == "big"), step=step, data=data)


def compressed_imgmsg_to_cv2(msg: Any, desired_encoding: str = "passthrough") -> np.ndarray:
    """sensor_msgs/CompressedImage -> ndarray in its original encoding (or desired_encoding)."""
    arr, enc = decode_compressed(msg.format, msg.data)
    return convert_encoding(arr, enc, desired_encoding)


def cv2_to_compressed_imgmsg(array_: np.ndarray, encoding: str = "bgr8", fmt: str = "jpeg",
                             header: Any = None, msg_type: type | None = None,
                             quality: int = 90) -> Any:
    """ndarray -> sensor_msgs/CompressedImage with an image_transport format string."""
    format_, data = encode_compressed(array_, encoding, fmt, quality)
    buf = array.array("B")
    buf.frombytes(data)
    return _build(msg_type, "CompressedImage", header, format=format_, data=buf)
