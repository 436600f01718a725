"""Input frames: cheap validation on arrival, conversion to RGB on the inference thread.

Why split: validating a raw Image is a zero-copy view plus a few comparisons, so it runs
in the subscription callback and every malformed message is counted (even one that would
have been superseded). Colour conversion and JPEG/PNG decoding cost real time, so they
run on the worker, only for the frame that is actually processed.

Each rejection carries a `case` (encoding, empty, step, data, tiny, nonfinite,
compressed) so warnings are rate-limited per case and counted per case in diagnostics.

The camera of a frame (`FrameCamera`): the newest camera_info, when it is for the frame's
size, gives the intrinsics the Estimator scales a camera-aware model's depth with; the
callback only stores the message, the check runs on the worker with the decoded size.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from meco_core.camera import DEFAULT_HFOV_DEG, Intrinsics, check_intrinsics
from meco_core.image_codec import ImageDecodeError, count_nonfinite, decode_compressed, decode_image, \
    encoding_info, to_rgb8


class InvalidFrame(ValueError):
    """A message that cannot be used as a camera frame; `case` names the kind of fault."""

    def __init__(self, case: str, reason: str) -> None:
        super().__init__(reason)
        self.case = case


@dataclass
class Frame:
    """A frame waiting for inference: the message (kept alive for the zero-copy view)."""

    msg: Any
    compressed: bool
    view: np.ndarray | None = None  # raw frames: validated view of msg.data
    received: float = field(default_factory=time.monotonic)

    @property
    def header(self) -> Any:
        return self.msg.header


def check_raw(msg: Any, min_size: int) -> np.ndarray:
    """Validate a sensor_msgs/Image and return a view of its pixels, or raise InvalidFrame."""
    enc, h, w, step = msg.encoding, int(msg.height), int(msg.width), int(msg.step)
    try:
        dtype, ch = encoding_info(enc)
    except ImageDecodeError as exc:
        raise InvalidFrame("encoding", str(exc)) from None
    if h <= 0 or w <= 0:
        raise InvalidFrame("empty", f"empty image {w}x{h} ({enc})")
    row = w * ch * dtype.itemsize
    if step < row:
        raise InvalidFrame("step", f"step {step} < width*channels*bytes = {row} for a {w}x{h} {enc} image")
    size = len(msg.data)
    if size < step * h:
        raise InvalidFrame("data", f"data has {size} bytes, step*height needs {step * h} ({w}x{h} {enc})")
    if h < min_size or w < min_size:
        raise InvalidFrame("tiny", f"image {w}x{h} is smaller than min_image_size {min_size}")
    try:
        view = decode_image(enc, h, w, step, msg.data, msg.is_bigendian)
    except ImageDecodeError as exc:  # checks above mirror decode_image; keep it honest anyway
        raise InvalidFrame("data", str(exc)) from None
    if dtype.kind == "f":
        bad = count_nonfinite(view)
        if bad:
            raise InvalidFrame("nonfinite", f"{enc} image has {bad} of {view.size} values NaN/inf")
        raise InvalidFrame("encoding", f"float image {enc} has no colour mapping; send rgb8/bgr8/mono8/mono16")
    return view


def frame_to_rgb(frame: Frame, min_size: int) -> np.ndarray:
    """Frame -> contiguous HxWx3 uint8 RGB (the estimator's input), or raise InvalidFrame."""
    if frame.compressed:
        try:
            arr, enc = decode_compressed(frame.msg.format, frame.msg.data)
        except ImageDecodeError as exc:
            raise InvalidFrame("compressed", str(exc)) from None
        if arr.shape[0] < min_size or arr.shape[1] < min_size:
            raise InvalidFrame("tiny", f"image {arr.shape[1]}x{arr.shape[0]} is smaller than min_image_size {min_size}")
    else:
        arr, enc = frame.view, frame.msg.encoding
    try:
        return to_rgb8(arr, enc)
    except ImageDecodeError as exc:
        raise InvalidFrame("encoding", str(exc)) from None


# ---- the camera of a frame: camera_info -> intrinsics for the Estimator ----
def camera_intrinsics(info: Any, height: int, width: int) -> tuple[Intrinsics | None, str | None]:
    """(fx, fy, cx, cy) of a height x width image from a sensor_msgs/CameraInfo, else (None, why not).

    The info describes the image only when the size it gives for the published image equals
    the image's: width x height, or with binning / an ROI (REP 104: K, width and height are
    the full-resolution calibration) the ROI's size over the binning; K is then mapped the
    same way (ROI offset off cx, cy, divided by the binning), as `outputs.scale_camera_info`
    does for depth/camera_info. An info for another size, an uncalibrated one (size 0) and a
    K without finite fx, fy > 0 and finite cx, cy give None: the caller falls back to the
    default camera rather than guess a rescale.
    """
    bx, by = max(int(info.binning_x), 1), max(int(info.binning_y), 1)
    roi = info.roi
    info_w = int(roi.width or info.width) // bx
    info_h = int(roi.height or info.height) // by
    if info_w <= 0 or info_h <= 0:
        return None, f"camera_info is uncalibrated (size {info.width}x{info.height})"
    if (info_w, info_h) != (int(width), int(height)):
        binned = f" ({info.width}x{info.height}, binning {bx}x{by}, roi {roi.width}x{roi.height})" \
            if bx > 1 or by > 1 or roi.width or roi.height else ""
        return None, f"camera_info is for {info_w}x{info_h}{binned}, the image is {width}x{height}"
    k = info.k
    try:
        fx, fy, cx, cy = check_intrinsics((k[0], k[4], k[2], k[5]))
    except ValueError:
        return None, (f"camera_info K has fx {float(k[0]):g}, fy {float(k[4]):g}, cx {float(k[2]):g}, "
                      f"cy {float(k[5]):g} (needs finite values, fx, fy > 0)")
    return (fx / bx, fy / by, (cx - roi.x_offset) / bx, (cy - roi.y_offset) / by), None


class FrameCamera:
    """The intrinsics each frame is inferred with: the newest camera_info when it describes the
    frame (`camera_intrinsics`), else None (the Estimator's default camera).

    The subscription callback only assigns `info` (no work, no allocation). `for_image` runs
    on the inference thread(s): it counts frames whose camera_info was ignored and logs once
    per change of what is used (warnings for an ignored camera_info, rate-limited per kind
    through the `warn` / `note` RateLimitedLogs, so a flapping stream cannot flood the log).
    `status` is the current state in words, for diagnostics.
    """

    def __init__(self, warn: Callable[[str, str], Any], note: Callable[[str, str], Any]) -> None:
        self.info: Any = None  # the newest sensor_msgs/CameraInfo (set by the subscription callback)
        self.warn, self.note = warn, note
        self.ignored = 0  # frames whose camera_info was present but unusable
        self.status = "none yet"
        self._state: tuple | None = None
        self._lock = threading.Lock()

    def for_image(self, height: int, width: int, enabled: bool = True) -> Intrinsics | None:
        """Intrinsics for a height x width frame (None: the default camera)."""
        return self.of_frame(height, width, enabled)[0]

    def of_frame(self, height: int, width: int, enabled: bool = True) -> tuple[Intrinsics | None, Any]:
        """(intrinsics for the depth, None: the default camera; the camera_info that describes a
        height x width image, else None). One read of the newest camera_info and one check per
        frame: the clouds and depth/camera_info are built only from a camera_info of the image
        itself (one for another size would give them intrinsics the depth was not made with),
        and from the same message the depth was scaled with."""
        info = self.info
        matched, problem = camera_intrinsics(info, height, width) if info is not None else (None, None)
        if not enabled:
            intr, state, problem = None, ("off",), None
        elif info is None:
            intr, state = None, ("none",)
        else:
            intr = matched
            state = ("given", width, height, *intr) if intr is not None else ("ignored", problem)
        described = info if matched is not None else None
        with self._lock:
            if problem is not None:
                self.ignored += 1
            if state == self._state:
                return intr, described
            self._state = state
            self.status = self._describe(state)
        if state[0] == "ignored":
            # keyed by the problem: a second, different change within log_throttle is still said
            self.warn(f"camera_info:ignored:{problem}", f"{problem}: camera_info ignored, depth uses the default camera "
                                             f"({DEFAULT_HFOV_DEG:g} deg HFOV) for this image size")
        else:
            self.note(f"camera_info:{state[0]}", f"camera intrinsics: {self.status}")
        return intr, described

    @staticmethod
    def _describe(state: tuple) -> str:
        default = f"default ({DEFAULT_HFOV_DEG:g} deg HFOV)"
        if state[0] == "given":
            _, w, h, fx, fy, cx, cy = state
            return f"camera_info: fx {fx:.1f}, fy {fy:.1f}, cx {cx:.1f}, cy {cy:.1f} px at {w}x{h}"
        if state[0] == "ignored":
            return f"{default}: {state[1]}"
        if state[0] == "off":
            return f"{default}: use_camera_info is false"
        return f"{default}: no camera_info received yet"
