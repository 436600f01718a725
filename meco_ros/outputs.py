"""Output arrays -> ROS messages: colour images, scaled camera info, the Prediction bundle.

Kept apart from the node so that each piece is a plain function with a test, and so the
node decides only *whether* to build something (nobody subscribed -> nothing built).
All colour work is OpenCV LUT/addWeighted on uint8 (sub-millisecond at 640x480): numpy
fancy indexing of a palette costs several times more.
"""
from __future__ import annotations

import array
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from .image_conversion import cv2_to_imgmsg

_CMAPS = {"turbo": cv2.COLORMAP_TURBO, "jet": cv2.COLORMAP_JET, "viridis": cv2.COLORMAP_VIRIDIS,
          "inferno": cv2.COLORMAP_INFERNO, "magma": cv2.COLORMAP_MAGMA, "plasma": cv2.COLORMAP_PLASMA,
          "bone": cv2.COLORMAP_BONE}
MIN_VIS_DEPTH = 0.5  # metres: bottom of the (logarithmic) depth colour scale


@lru_cache(maxsize=16)
def _colormap_lut(name: str) -> np.ndarray:
    """(256, 1, 3) RGB LUT; index 0 (invalid) is black, 1 = near, 255 = far."""
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    if name == "gray":
        rgb = np.repeat(255 - ramp[:, :, None], 3, axis=2)
    else:
        rgb = cv2.cvtColor(cv2.applyColorMap(255 - ramp, _CMAPS[name]), cv2.COLOR_BGR2RGB)
    rgb[0] = 0
    return np.ascontiguousarray(rgb)


def colorize_depth(depth: np.ndarray, max_depth: float, cmap: str = "turbo") -> np.ndarray:
    """Depth (m) -> HxWx3 uint8 RGB for viewing: near warm, far cool, invalid black.

    Log scale between 0.5 m and max_depth: on a golf course most of the image is 5-80 m
    and a linear scale would paint everything near the cart one colour.
    """
    d = np.nan_to_num(depth, nan=0.0, posinf=max_depth, neginf=0.0)
    lo, hi = np.log(MIN_VIS_DEPTH), np.log(max(max_depth, MIN_VIS_DEPTH * 1.01))
    scaled = (np.log(np.maximum(d, MIN_VIS_DEPTH)) - lo) * (254.0 / (hi - lo)) + 1.0
    idx = np.clip(scaled, 1, 255).astype(np.uint8)
    idx[~(depth > 0)] = 0  # NaN and non-positive: black
    lut = _colormap_lut(cmap)
    return cv2.LUT(cv2.merge([idx, idx, idx]), lut.reshape(256, 1, 3))


def palette_lut(palette: tuple[int, ...] | list[int]) -> np.ndarray:
    """Flat [r, g, b, ...] -> (256, 1, 3) uint8 LUT; ids without a colour (and 255) are black."""
    lut = np.zeros((256, 1, 3), np.uint8)
    colors = np.asarray(palette, np.uint8).reshape(-1, 3)[:255]
    lut[: len(colors), 0] = colors
    return lut


def colorize_labels(labels: np.ndarray, lut: np.ndarray, blend: float = 0.0,
                    rgb: np.ndarray | None = None) -> np.ndarray:
    """Class ids -> RGB palette image, optionally blended with the input (weight `blend`)."""
    colored = cv2.LUT(cv2.merge([labels, labels, labels]), lut)
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
