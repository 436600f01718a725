"""The camera a depth prediction is for: canonical-focal depth, the default camera, input sizing.

Why: a monocular network cannot tell a wide lens from a narrow one, so one trained for one
focal length reads every other camera's distances wrong by f / f_train. Following
Metric3D's canonical camera, a model with `canonical_focal > 0` predicts depth *as if the
image had been taken with that focal length* (pixels of the network input), and the metric
depth of a frame is

    depth_m = network_output * focal_net / canonical_focal

where `focal_net` is the frame's vertical focal length fy in pixels of the image the network
saw (after any resize). fy, not fx: the cues a single image gives about distance are
vertical (how far below the horizon a ground point lies, how tall an upright thing is), and
fy is what those scale with, also when a frame was resized to another aspect ratio.

Training converts every sample the same way (its own intrinsics, updated through zoom and
crop), so zoom augmentation is a change of focal length, not a lie about distance.
Models with `canonical_focal == 0` (all checkpoints before it existed) output metres for
whatever camera they were trained on; the scale factor is then 1.

Without intrinsics the DEFAULT camera applies: a pinhole with DEFAULT_HFOV_DEG horizontal
field of view, square pixels and the principal point at the image centre.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

Intrinsics = tuple[float, float, float, float]  # fx, fy, cx, cy in pixels of the image they describe

DEFAULT_HFOV_DEG = 70.0  # the documented default camera (a typical automotive / cart camera)
# Canonical focal length of the shipped golf model, pixels at its 240x320 input: about a
# 65 degree HFOV there, the middle of the 45-90 degree cameras it is trained across.
CANONICAL_FOCAL_PX = 250.0
SIZE_MULTIPLE = 32  # network input sides are multiples of the backbone's coarsest stride


def check_intrinsics(intrinsics: Sequence[float]) -> Intrinsics:
    """(fx, fy, cx, cy) as floats; a clear error for anything else."""
    try:
        vals = [float(v) for v in intrinsics]
    except (TypeError, ValueError):
        raise ValueError(f"intrinsics must be (fx, fy, cx, cy) numbers; got {intrinsics!r}") from None
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals) or vals[0] <= 0 or vals[1] <= 0:
        raise ValueError(f"intrinsics must be (fx, fy, cx, cy), finite, fx and fy > 0; got {intrinsics!r}")
    return vals[0], vals[1], vals[2], vals[3]


def parse_intrinsics(text: str) -> Intrinsics:
    """'fx,fy,cx,cy' (commas or spaces) as typed on a command line -> checked intrinsics."""
    return check_intrinsics(str(text).replace(",", " ").split())


def default_intrinsics(height: int, width: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> Intrinsics:
    """The default camera for an image of height x width pixels."""
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return f, f, (width - 1) / 2.0, (height - 1) / 2.0


def camera_of_frame(size: tuple[int, int], hfov_deg: float | None = None, intrinsics: Sequence[float] | None = None,
                    intrinsics_size: tuple[int, int] | None = None) -> Intrinsics | None:
    """A user's camera for a frame of size (H, W): a horizontal field of view (principal point
    at the centre), or intrinsics of frames of `intrinsics_size` (None: this frame's), scaled
    when this frame has another size (the same camera, resized); None when neither is given."""
    if hfov_deg is not None:
        return default_intrinsics(size[0], size[1], hfov_deg)
    if intrinsics is None:
        return None
    given = check_intrinsics(intrinsics)
    return given if intrinsics_size in (None, tuple(size)) else scale_intrinsics(given, intrinsics_size, size)


def scale_intrinsics(intrinsics: Sequence[float], src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> Intrinsics:
    """Intrinsics of an image resized from src (H, W) to dst (H, W) (pixel centres kept aligned)."""
    fx, fy, cx, cy = check_intrinsics(intrinsics)
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    return fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5


def network_focal(intrinsics: Sequence[float] | None, src_hw: tuple[int, int], net_hw: tuple[int, int]) -> float:
    """fy in pixels of the network input, for a frame of src (H, W) with these intrinsics
    (None: the default camera) resized to net (H, W)."""
    intr = check_intrinsics(intrinsics) if intrinsics is not None else default_intrinsics(*src_hw)
    return intr[1] * net_hw[0] / src_hw[0]


def depth_scale(focal_net: float, canonical_focal: float) -> float:
    """Factor from network output to metres (1 for models that predict metres directly)."""
    return float(focal_net) / float(canonical_focal) if canonical_focal and canonical_focal > 0 else 1.0


def fit_size(src_hw: tuple[int, int], budget_hw: tuple[int, int], multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """Network input (H, W) for a frame: the budget's pixel count at the frame's aspect ratio,
    sides rounded to `multiple`. A 1242x375 KITTI frame with a 240x320 budget runs at 160x512
    instead of being squeezed to 4:3 (a shape no training image had)."""
    h, w = src_hw
    bh, bw = budget_hw
    if h * bw == w * bh:
        return bh, bw
    area = bh * bw
    nh = math.sqrt(area * h / w)
    nw = area / nh
    return max(multiple, int(round(nh / multiple)) * multiple), max(multiple, int(round(nw / multiple)) * multiple)



def canonical_focal_of(model: Any) -> float:
    """The model's canonical focal length (0: it predicts metres directly); works for torch
    models and ONNX Runtime wrappers alike (both carry the model config)."""
    return float((getattr(model, "config", None) or {}).get("canonical_focal", 0.0) or 0.0)


def metric_depth_outputs(outputs: dict[str, Any], focal_net: Any, canonical_focal: float) -> dict[str, Any]:
    """Outputs with `depth` in metres: network depth x focal_net / canonical_focal per sample.
    focal_net: (B,) tensor of fy in network-input pixels; None or canonical_focal 0: unchanged."""
    if "depth" not in outputs or focal_net is None or not canonical_focal or canonical_focal <= 0:
        return outputs
    scale = focal_net.to(outputs["depth"].device, outputs["depth"].dtype).reshape(-1, 1, 1, 1) / canonical_focal
    return {**outputs, "depth": outputs["depth"] * scale}
