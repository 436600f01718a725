"""Parameters of the perception node: one table with defaults, descriptors, ranges and checks.

Why a table: the same facts feed declaration (ParameterDescriptor with ranges and a
description that `ros2 param describe` shows), validation on set (with a reason), the
documentation of what can change at run time, and `NodeConfig`, the snapshot the
inference thread reads. Restart-only parameters are declared `read_only`: ROS itself then
rejects setting them at run time ("Trying to set a read-only parameter"), while a params
file or `-p` still sets them at start.

Run-time parameters take effect on the next frame (the worker reads a fresh snapshot).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from meco_core.camera import DEFAULT_HFOV_DEG
from meco_core.defaults import DEFAULT_CHECKPOINT, DEFAULT_OUTPUT_MAX_PIXELS, MIN_ISLAND_FRACTION
from meco_core.inference import PRECISIONS, UPSAMPLE_MODES, check_inference_size
from meco_core.inference.runtime import BACKENDS
from meco_core.visualize import COLORMAPS

RELIABILITIES = ("best_effort", "reliable")
OUTPUT_RESOLUTIONS = ("input", "inference")
OUTPUTS = ("depth", "segmentation", "segmentation_color", "depth_color", "depth_camera_info", "prediction", "points",
           "obstacle_points", "debug")

Check = Callable[[Any], "str | None"]


def _choice(options: Iterable[str]) -> Check:
    opts = tuple(options)
    return lambda v: None if v in opts else f"must be one of {', '.join(opts)}; got {v!r}"


def _device(v: str) -> str | None:
    ok = v in ("auto", "cpu") or re.fullmatch(r"cuda(:\d+)?", v)
    return None if ok else f"must be auto, cpu, cuda or cuda:N; got {v!r}"


def _inference_size(v: Any) -> str | None:
    try:
        check_inference_size(list(v))
    except (ValueError, TypeError) as exc:
        return str(exc).removeprefix("inference_size ")
    return None


def parse_model_config(text: str) -> dict[str, Any]:
    """'{backbone: vit_tiny_patch16_224, channels: 32}' (YAML) or 'backbone=vit_tiny_patch16_224,channels=32'.

    The key=value form exists because `-p model_config:={...}` on a command line is parsed
    by rcl as a YAML mapping, not a string, and fails; key=value needs no extra quoting.
    """
    text = text.strip()
    if not text:
        return {}
    if "=" in text and not text.startswith("{"):
        cfg = {}
        for item in re.split(r"[,\s]+", text):
            if item:
                key, sep, value = item.partition("=")
                if not sep or not key:
                    raise ValueError(f"expected key=value, got {item!r}")
                cfg[key] = yaml.safe_load(value)
        return cfg
    cfg = yaml.safe_load(text)
    if not isinstance(cfg, dict):
        raise ValueError(f"must be a mapping like '{{backbone: vit_tiny_patch16_224}}' or "
                         f"'backbone=vit_tiny_patch16_224,channels=32'; got {text!r}")
    return cfg


def _model_config(v: str) -> str | None:
    try:
        parse_model_config(v)
    except (ValueError, yaml.YAMLError) as exc:
        return f"is invalid: {exc}"
    return None


def _palette(v: Any) -> str | None:
    values = list(v)
    if not values or len(values) % 3:
        return f"must be a flat list of r, g, b values (3 per class); got {len(values)} values"
    if any(not 0 <= int(c) <= 255 for c in values):
        return "values must be in 0..255"
    return None


def _topic(v: str) -> str | None:
    return None if v and re.fullmatch(r"[~/A-Za-z0-9_{}][A-Za-z0-9_/{}]*", v) else f"is not a valid topic name: {v!r}"


def _optional_topic(v: str) -> str | None:
    return None if v == "" else _topic(v)


@dataclass(frozen=True)
class Spec:
    """One parameter: default, whether it can change at run time, description, range, check."""

    default: Any
    runtime: bool
    description: str
    range: tuple[float, float] | None = None
    check: Check | None = None
    constraints: str = ""


def _spec_table() -> dict[str, Spec]:
    s: dict[str, Spec] = {
        # model and device: restart-only (a rebuild and warm-up)
        "checkpoint": Spec(DEFAULT_CHECKPOINT, False,
                           "meco checkpoint (.pt); relative paths are tried against the working directory, "
                           "the package share directory and the source tree. '' = test/dev mode (see model)"),
        "model": Spec("", False, "TEST/DEV MODE ONLY, used when checkpoint is '': registry model name (e.g. meco) "
                                 "built with RANDOM weights; outputs are meaningless"),
        "model_config": Spec("", False, "TEST/DEV MODE: model config as YAML '{backbone: vit_tiny_patch16_224, "
                                        "channels: 32}' or 'backbone=vit_tiny_patch16_224,channels=32'",
                             check=_model_config),
        "device": Spec("auto", False, "auto | cpu | cuda | cuda:N (auto: CUDA when present)", check=_device),
        "backend": Spec("torch", False, "torch | onnxruntime | tensorrt: onnxruntime runs the checkpoint's ONNX "
                                        "export (CPU, or CUDA on a GPU), tensorrt ONNX Runtime's TensorRT provider "
                                        "(GPU, engine cached); both fix inference_size and precision at start",
                        check=_choice(BACKENDS)),
        "backend_fallback": Spec(False, False, "if the backend's provider is missing, run on ONNX Runtime's CPU "
                                               "provider (logged) instead of refusing to start"),
        "engine_cache_dir": Spec("", False, "where ONNX exports and TensorRT engines are cached ('' = $MECO_CACHE, "
                                            "else ~/.cache/meco); meco export --format tensorrt-cache fills it"),
        "compile": Spec(False, False, "torch.compile the model (CUDA deployments; slow first frames)"),
        "warmup_iterations": Spec(3, False, "frames of random data run before 'ready'", (0, 100)),
        "min_island_fraction": Spec(MIN_ISLAND_FRACTION, False,
                                    "islands of a ground surface (fairway, hazard, road) smaller than this fraction "
                                    "of the output frame take the label around them (meco_core.inference.islands; "
                                    "meco eval scores the same way); 0 = off", (0.0, 0.5)),
        "autostart": Spec(True, False, "configure and activate at start; false: stay unconfigured until a lifecycle "
                                       "manager drives the transitions (launch managed:=true)"),
        # inference: run time
        "precision": Spec("fp32", True, "fp32 | fp16 | bf16 (autocast; half precision pays off on CUDA only)",
                          check=_choice(PRECISIONS)),
        "inference_size": Spec([0, 0], True, "[H, W] the network sees (each >= 16); [0, 0] = the checkpoint's "
                               "recorded input size (else the camera size)",
                               check=_inference_size, constraints="[H, W], 16..8192 each, or [0, 0]"),
        "upsample": Spec("bilinear", True, "outputs back to the output size: bilinear (depth bilinear, labels from "
                                           "upsampled logits) | nearest (cheapest)", check=_choice(UPSAMPLE_MODES)),
        "output_resolution": Spec("input", True, "input (outputs at the camera's size) | inference",
                                  check=_choice(OUTPUT_RESOLUTIONS)),
        "output_max_pixels": Spec(DEFAULT_OUTPUT_MAX_PIXELS, True,
                                  "outputs at the camera's size above this many pixels are made at that size "
                                  "divided by the smallest whole number that fits (1280x720 and 1920x1080 -> "
                                  "640x360), depth/camera_info scaled to match: upsampling the network's output "
                                  "past ~640x480 adds no detail and costs more than inference; 0 = no limit",
                                  (0, 100_000_000)),
        "threads": Spec(0, True, "CPU threads of the model (torch; ONNX Runtime's are fixed at start); 0 = auto: "
                                 "torch all cores but one (that one serves ROS, DDS and post-processing), "
                                 "ONNX Runtime all cores, split between the inference workers", (0, 256)),
        "inference_workers": Spec(0, False, "frames inferred at once, each on its own thread (ONNX Runtime runs "
                                            "them in parallel, GIL-free); 0 = auto: 2 for onnxruntime on a CPU "
                                            "with 2+ cores, else 1", (0, 16)),
        "use_camera_info": Spec(True, True, "scale a camera-aware model's depth (canonical_focal > 0) with the K of "
                                            "camera_info when it is for the image's size (after binning/ROI); other "
                                            "sizes, invalid K, no camera_info or false: the default camera "
                                            f"({DEFAULT_HFOV_DEG:g} deg HFOV); models with canonical_focal 0 are "
                                            "unaffected"),
        "max_depth": Spec(0.0, True, "metres; depth beyond it is published as +inf (REP 118 'too far') and it is "
                                     "the top of the depth colour map; 0 = the model's range", (0.0, 10000.0)),
        "depth_colormap": Spec("turbo", True, "colour map of depth/color", check=_choice(COLORMAPS)),
        "segmentation_blend": Spec(0.0, True, "segmentation/color: weight of the input image (0 = palette only)",
                                   (0.0, 1.0)),
        "min_image_size": Spec(16, True, "images smaller than this (either side, pixels) are rejected as invalid",
                               (1, 10000)),
        "max_frame_age": Spec(0.0, True, "seconds; a frame that waited longer than this before inference "
                                         "is dropped as stale; 0 = off", (0.0, 60.0)),
        "log_throttle": Spec(5.0, True, "seconds between repeated warnings of one kind", (0.1, 3600.0)),
        "diagnostics.max_latency_ms": Spec(500.0, True, "WARN above this p95 latency (stamp to publish)",
                                           (1.0, 600000.0)),
        "diagnostics.min_fps": Spec(1.0, True, "WARN below this output rate while images arrive", (0.0, 1000.0)),
        "cloud.stride": Spec(2, True, "points / obstacles/points: every n-th row and column of the depth image",
                             (1, 64)),
        "cloud.max_range": Spec(0.0, True, "metres; points farther than this (Euclidean) are left out of the clouds; "
                                           "0 = up to max_depth", (0.0, 10000.0)),
        "cloud.obstacle_classes": Spec(["obstacle", "hazard"], True, "class names whose points form obstacles/points "
                                                                     "(names the model lacks are ignored, with a "
                                                                     "warning)"),
        "stats_period": Spec(1.0, False, "seconds between stats and /diagnostics messages", (0.1, 60.0)),
        # topics (relative names: namespaces and remaps place them) and QoS: restart-only
        "topics.image": Spec("image", False, "raw image input (sensor_msgs/Image); '' = none",
                             check=_optional_topic),
        "topics.image_compressed": Spec("", False, "compressed input (sensor_msgs/CompressedImage, jpeg/png), "
                                                   "e.g. image/compressed; '' = none", check=_optional_topic),
        "topics.camera_info": Spec("camera_info", False, "camera info input: the depth's intrinsics (use_camera_info) and, "
                                                        "scaled, depth/camera_info; '' = none",
                                   check=_optional_topic),
        "topics.depth": Spec("depth", False, "32FC1 metres, NaN invalid", check=_topic),
        "topics.segmentation": Spec("segmentation", False, "mono8 class ids", check=_topic),
        "topics.segmentation_color": Spec("segmentation/color", False, "rgb8 palette image", check=_topic),
        "topics.depth_color": Spec("depth/color", False, "rgb8 colour-mapped depth", check=_topic),
        "topics.depth_camera_info": Spec("depth/camera_info", False, "camera info of the outputs", check=_topic),
        "topics.prediction": Spec("prediction", False, "meco_ros/Prediction", check=_topic),
        "topics.points": Spec("points", False, "sensor_msgs/PointCloud2: x, y, z, rgb, label in the camera optical "
                                               "frame", check=_topic),
        "topics.obstacle_points": Spec("obstacles/points", False, "PointCloud2 of the obstacle classes only "
                                                                  "(Nav2 obstacle/voxel layers)", check=_topic),
        "topics.label_map": Spec("label_map", False, "meco_ros/LabelInfo, transient local (latched)", check=_topic),
        "topics.stats": Spec("stats", False, "meco_ros/Stats", check=_topic),
        "topics.diagnostics": Spec("/diagnostics", False, "diagnostic_msgs/DiagnosticArray", check=_topic),
        "qos.input.reliability": Spec("best_effort", False, "input QoS: best_effort (sensor data) | reliable",
                                      check=_choice(RELIABILITIES)),
        "qos.input.depth": Spec(1, False, "input queue depth (KEEP_LAST); 1 = always the newest frame, taken "
                                "from DDS only when a worker is free; > 1 = every frame taken as it comes", (1, 100)),
        "qos.output.reliability": Spec("reliable", False, "output QoS (reliable also serves best-effort readers)",
                                       check=_choice(RELIABILITIES)),
        "qos.output.depth": Spec(1, False, "output queue depth (KEEP_LAST)", (1, 100)),
    }
    for name in OUTPUTS:
        s[f"outputs.{name}"] = Spec(True, True, f"publish {name} (run time switch; nothing is computed for an "
                                                "output that is off or has no subscriber)")
    return s


SPECS: dict[str, Spec] = _spec_table()
# Declared after the model is loaded: its default is the model's class colours.
PALETTE = Spec([0, 0, 0], True, "segmentation palette, flat [r, g, b, ...] per class id; default: the "
                                "checkpoint's class colours", check=_palette)


def descriptor(name: str, spec: Spec) -> ParameterDescriptor:
    kind = "run time" if spec.runtime else "restart-only"
    d = ParameterDescriptor(name=name, description=f"{spec.description} [{kind}]", read_only=not spec.runtime,
                            additional_constraints=spec.constraints)
    if spec.range is not None:
        lo, hi = spec.range
        if isinstance(spec.default, float):
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        else:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return d


def validate(params: list[Parameter], num_classes: int | None = None,
             fixed: dict[str, Any] | None = None) -> SetParametersResult:
    """The on-set check: every value passes its Spec's check (ranges and read-only are checked
    by rclpy before this runs) and leaves what the backend fixed at start (`fixed`:
    Estimator.fixed_settings) as it is. The reason names the parameter and what is allowed."""
    for p in params:
        if not p.name:  # rclpy's undeclared-name check tests names for truth: '' got declared on the fly
            return SetParametersResult(successful=False, reason="parameter name is empty (not declared)")
        spec = PALETTE if p.name == "palette" else SPECS.get(p.name)
        # the value's own check first: comparing an invalid value with the backend's fixed one
        # raised inside the callback and ended the node (found by the fault storm on ONNX Runtime)
        problem = spec.check(p.value) if spec is not None and spec.check is not None else None
        if problem is None and p.name == "palette" and num_classes and len(p.value) < 3 * num_classes:
            problem = f"needs 3 values for each of the model's {num_classes} classes; got {len(p.value)}"
        if problem:
            return SetParametersResult(successful=False, reason=f"{p.name} {problem}")
        if fixed and p.name in fixed and _differs(p.name, p.value, fixed[p.name]):
            return SetParametersResult(successful=False, reason=f"{p.name} is fixed at {fixed[p.name]} by the "
                                       "backend (ONNX export): change it in the params file and restart")
    return SetParametersResult(successful=True)


def _differs(name: str, value: Any, fixed: Any) -> bool:
    if name == "inference_size":
        size = check_inference_size(list(value))
        return size is not None and tuple(size) != tuple(fixed or ())
    return value != fixed


def declare_all(node: Node) -> None:
    for name, spec in SPECS.items():
        node.declare_parameter(name, spec.default, descriptor(name, spec))


def declare_palette(node: Node, colors: list[tuple[int, int, int]]) -> None:
    flat = [int(c) for rgb in colors for c in rgb]
    node.declare_parameter("palette", flat, descriptor("palette", PALETTE))


@dataclass(frozen=True)
class NodeConfig:
    """Snapshot of the run-time parameters; replaced whole after every successful set, so the
    inference thread never sees half an update."""

    precision: str
    inference_size: tuple[int, int] | None
    upsample: str
    output_resolution: str
    output_max_pixels: int
    threads: int
    use_camera_info: bool
    max_depth: float
    depth_colormap: str
    segmentation_blend: float
    min_image_size: int
    max_frame_age: float
    log_throttle: float
    max_latency_ms: float
    min_fps: float
    outputs: dict[str, bool]
    palette: tuple[int, ...]
    cloud_stride: int
    cloud_max_range: float
    obstacle_classes: tuple[str, ...]

    @classmethod
    def from_node(cls, node: Node) -> "NodeConfig":
        g = lambda n: node.get_parameter(n).value  # noqa: E731
        palette = tuple(g("palette")) if node.has_parameter("palette") else ()
        return cls(
            precision=g("precision"), inference_size=check_inference_size(list(g("inference_size"))),
            upsample=g("upsample"), output_resolution=g("output_resolution"),
            output_max_pixels=int(g("output_max_pixels")),
            threads=resolve_threads(int(g("threads")), g("backend")),
            use_camera_info=bool(g("use_camera_info")),
            max_depth=float(g("max_depth")), depth_colormap=g("depth_colormap"),
            segmentation_blend=float(g("segmentation_blend")), min_image_size=int(g("min_image_size")),
            max_frame_age=float(g("max_frame_age")), log_throttle=float(g("log_throttle")),
            max_latency_ms=float(g("diagnostics.max_latency_ms")), min_fps=float(g("diagnostics.min_fps")),
            outputs={n: bool(g(f"outputs.{n}")) for n in OUTPUTS}, palette=palette,
            cloud_stride=int(g("cloud.stride")), cloud_max_range=float(g("cloud.max_range")),
            obstacle_classes=tuple(g("cloud.obstacle_classes")))


def resolve_workers(value: int, backend: str, device: str) -> int:
    """0 = auto: two frames in flight for ONNX Runtime on a CPU with 2+ cores, one otherwise
    (`device` as the parameter reads: cpu | cuda[:N] | auto = CUDA when torch sees a GPU).

    Two 1-thread ORT runs side by side did 42-44 FPS on this 2-core machine where one 2-thread
    run did 33.6 (golf model, 240x320): an operator split over two cores waits at every
    barrier, two frames on one core each never do. torch holds the GIL in Python glue and a
    GPU is fed best by one stream, so both keep one worker."""
    import os

    if value > 0:
        return value
    if backend != "onnxruntime" or (os.cpu_count() or 1) < 2:
        return 1
    device = str(device)
    if device == "auto":
        import torch

        return 1 if torch.cuda.is_available() else 2
    return 1 if device.startswith("cuda") else 2


def worker_threads(total: int, workers: int) -> int:
    """Each inference worker's share of the node's threads (at least one)."""
    return max(1, total // workers)


def resolve_threads(value: int, backend: str = "torch") -> int:
    """0 = auto. torch: every CPU core but one. OpenMP workers that share their cores with the
    executor, DDS and the publishing thread get descheduled mid-barrier, which made a 2-thread
    torch node slower than a 1-thread one here (node-bench, README). ONNX Runtime (run without
    spinning, GIL-free): every core, which node-bench measured fastest."""
    import os

    if value > 0:
        return value
    cores = os.cpu_count() or 2
    return cores if backend != "torch" else max(1, cores - 1)
