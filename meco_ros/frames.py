"""Input frames: cheap validation on arrival, conversion to RGB on the inference thread.

Why split: validating a raw Image is a zero-copy view plus a few comparisons, so it runs
in the subscription callback and every malformed message is counted (even one that would
have been superseded). Colour conversion and JPEG/PNG decoding cost real time, so they
run on the worker, only for the frame that is actually processed.

Each rejection carries a `case` (encoding, empty, step, data, tiny, nonfinite,
compressed) so warnings are rate-limited per case and counted per case in diagnostics.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
