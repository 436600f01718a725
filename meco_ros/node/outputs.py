"""Output arrays -> ROS messages: colour images, scaled camera info, the Prediction bundle.

Kept apart from the node so that each piece is a plain function with a test, and so the
node decides only *whether* to build something (nobody subscribed -> nothing built).
All colour work is OpenCV LUT/addWeighted on uint8 (sub-millisecond at 640x480): numpy
fancy indexing of a palette costs several times more.
"""
from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from meco_core.visualize import colorize_depth  # noqa: F401 - re-exported: the node's depth/color

from meco_ros.image_conversion import cv2_to_imgmsg

def output_size(height: int, width: int, max_pixels: int) -> tuple[int, int] | None:
    """The size outputs of a height x width camera image are made at: None (the camera's own)
    up to `max_pixels` (0 = no limit), else the size divided by the smallest whole number k
    that brings it under (1920x1080 -> k = 3 -> 640x360), so depth/camera_info stays a plain
    rescale of the camera's K."""
    if not max_pixels or height * width <= max_pixels:
        return None
    k = 2
    while -(-height // k) * -(-width // k) > max_pixels:
        k += 1
    return max(1, round(height / k)), max(1, round(width / k))


def palette_lut(palette: tuple[int, ...] | list[int]) -> np.ndarray:
    """Flat [r, g, b, ...] -> (256, 1, 3) uint8 LUT; ids without a colour (and 255) are black."""
    lut = np.zeros((256, 1, 3), np.uint8)
    colors = np.asarray(palette, np.uint8).reshape(-1, 3)[:255]
    lut[: len(colors), 0] = colors
    return lut


def colorize_labels(labels: np.ndarray, lut: np.ndarray, blend: float = 0.0,
                    rgb: np.ndarray | None = None) -> np.ndarray:
    """Class ids -> RGB palette image, optionally blended with the input (weight `blend`)."""
    colored = cv2.applyColorMap(labels, lut)  # the (256, 1, 3) LUT as a user colormap: one pass, no merge
    if blend > 0.0 and rgb is not None:
        if rgb.shape[:2] != labels.shape:
            rgb = cv2.resize(rgb, (labels.shape[1], labels.shape[0]), interpolation=cv2.INTER_AREA)
        colored = cv2.addWeighted(rgb, float(blend), colored, 1.0 - float(blend), 0.0)
    return colored


def scale_camera_info(info: Any, out_h: int, out_w: int, header: Any) -> CameraInfo:
    """Camera info of an image resized to out_h x out_w (from the camera's binned/ROI image).

    Intrinsics scale like image_proc's resize node (fx, cx by sx; fy, cy by sy), after
    undoing ROI offset and binning, so the result describes the output image as a whole
    (binning 0, empty ROI). Distortion and rectification are unchanged by scaling. An
    uncalibrated info (width 0) is passed on with the new size.
    """
    bx, by = max(int(info.binning_x), 1), max(int(info.binning_y), 1)
    roi = info.roi
    full_w = roi.width if roi.width else info.width
    full_h = roi.height if roi.height else info.height
    in_w, in_h = full_w / bx, full_h / by
    sx = out_w / in_w if in_w else 1.0
    sy = out_h / in_h if in_h else 1.0
    k = np.asarray(info.k, np.float64).reshape(3, 3).copy()
    p = np.asarray(info.p, np.float64).reshape(3, 4).copy()
    for m in (k, p):
        m[0, 2] -= roi.x_offset
        m[1, 2] -= roi.y_offset
        m[0] *= sx / bx
        m[1] *= sy / by
    out = CameraInfo()
    out.header = header
    out.height, out.width = int(out_h), int(out_w)
    out.distortion_model = info.distortion_model
    out.d = list(info.d)
    out.k = k.reshape(-1).tolist()
    out.r = list(info.r)
    out.p = p.reshape(-1).tolist()
    return out


def image_msg(arr: np.ndarray, encoding: str, header: Any) -> Image:
    """ndarray -> Image with the input's header (fast array('B') fill)."""
    return cv2_to_imgmsg(arr, encoding, header=header)


def prediction_msg(msg_type: type, header: Any, depth: Image, segmentation: Image, class_names: list[str],
                   palette: tuple[int, ...], max_depth: float) -> Any:
    """meco_ros/Prediction from already built depth and segmentation images (no second copy)."""
    msg = msg_type()
    msg.header = header
    msg.depth = depth
    msg.segmentation = segmentation
    msg.class_names = list(class_names)
    msg.class_colors = array.array("B", bytes(int(c) for c in palette[: 3 * len(class_names)]))
    msg.max_depth = float(max_depth)
    return msg


# x, y, z float32, rgb (packed 0x00RRGGBB, read as float32 as PCL and RViz expect), label uint8.
CLOUD_DTYPE = np.dtype({"names": ["x", "y", "z", "rgb", "label"],
                        "formats": ["<f4", "<f4", "<f4", "<u4", "u1"],
                        "offsets": [0, 4, 8, 12, 16], "itemsize": 20})


def cloud_fields() -> list:
    from sensor_msgs.msg import PointField

    kinds = {"x": PointField.FLOAT32, "y": PointField.FLOAT32, "z": PointField.FLOAT32,
             "rgb": PointField.FLOAT32, "label": PointField.UINT8}
    return [PointField(name=n, offset=CLOUD_DTYPE.fields[n][1], datatype=kinds[n], count=1) for n in CLOUD_DTYPE.names]


def semantic_cloud_msg(header: Any, xyz: np.ndarray, rgb: np.ndarray, labels: np.ndarray) -> Any:
    """Unordered PointCloud2 (height 1) of x, y, z, rgb, label from (N, 3) points, (N, 3)
    uint8 colours and (N,) class ids; filled through array('B') like the images."""
    from sensor_msgs.msg import PointCloud2

    n = len(xyz)
    points = np.empty(n, CLOUD_DTYPE)
    points["x"], points["y"], points["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    c = np.asarray(rgb, np.uint32).reshape(n, 3)
    points["rgb"] = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    points["label"] = labels
    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = 1, n
    msg.fields = cloud_fields()
    msg.is_bigendian = False
    msg.point_step, msg.row_step = CLOUD_DTYPE.itemsize, CLOUD_DTYPE.itemsize * n
    msg.is_dense = True  # invalid depths were dropped, not stored as NaN
    data = array.array("B")
    data.frombytes(points.view(np.uint8))
    msg.data = data
    return msg
