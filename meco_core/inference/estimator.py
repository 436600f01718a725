"""ROS-free inference: one RGB frame in, metric depth and class labels out, at the input size.

`Estimator` owns everything between a camera frame and the arrays a node publishes, so
the ROS node stays a thin adapter and the same code serves bag replay and scripts:

    est = Estimator("checkpoints/meco_golf.pt", device="auto", inference_size=(384, 512))
    # the same, options as one object (EstimatorOptions documents each one):
    est = Estimator("checkpoints/meco_golf.pt", EstimatorOptions(device="auto", inference_size=(384, 512)))
    est.warmup(3)
    pred = est.predict(rgb, intrinsics=(fx, fy, cx, cy))   # rgb: HxWx3 uint8 RGB, its camera
    pred.depth_m, pred.labels        # HxW float32 metres (NaN invalid), HxW uint8 class ids

Design notes (why, not what):
- The frame is resized to `inference_size` on the uint8 image with OpenCV (cheap), and the
  outputs are resized back (`meco_core.inference.postprocess`): depth bilinear or nearest; labels
  either from bilinearly upsampled logits (smooth, correct boundaries) or nearest-upsampled
  argmax (cheapest), in OpenCV/numpy on CPU and on the GPU with CUDA.
- Camera-aware depth: a model with `canonical_focal` predicts depth for that focal length;
  `predict(rgb, intrinsics=...)` turns it into metres for the camera that took `rgb`
  (`meco_core.camera`: fy of the resized frame / canonical focal). Without intrinsics the
  default camera (DEFAULT_HFOV_DEG) applies and `Prediction.camera` says "default".
- Frames of another aspect ratio than `inference_size` are resized to it (stretched), as the
  fixed-size ONNX/TensorRT graphs on the vehicle must, so `meco eval`, replay and the node
  agree; depth stays right because the scale uses the vertical focal length. On the torch
  backend `keep_aspect=True` runs them at the same pixel count and their own aspect ratio
  instead (`camera.fit_size`: a 1242x375 frame as 160x512); `meco eval --keep-aspect` matches it.
- Non-finite model outputs never leave as numbers: depth that is NaN/inf or <= 0 becomes
  NaN (REP 118 "invalid"), labels with non-finite logits become 255 (ignore), and the
  count is reported in `Prediction.nonfinite` for the caller to count and warn about.
- The GPU path (CUDA, fp16/bf16 autocast, channels_last, optional torch.compile) is
  written and guarded: asking for CUDA explicitly where there is none is a clear error
  (`DeviceUnavailableError`); 'auto' quietly picks CPU.
- Backends: `torch` runs the checkpoint; `onnxruntime` and `tensorrt` run its ONNX export
  (exported once into the cache, or an `.onnx` file given as the checkpoint) through
  ONNX Runtime, whose forward pass never holds the GIL, so pre- and post-processing on
  other threads overlap with it. They run one fixed inference size and precision (the
  export's); changing them needs a restart (`fixed_settings`).
- The Estimator runs the checkpoint it is given and knows no repository layout: the entry
  points (the `meco` commands, the ROS node, the tools) choose the checkpoint, the default
  one included (`meco_core.defaults.DEFAULT_CHECKPOINT`, resolved with `find_checkpoint`).
- Test/dev mode: with no checkpoint, `model_name` + `model_config` build a registry model
  with RANDOM weights (`untrained` is True and a loud warning is logged). Its outputs are
  meaningless; it exists so the ROS node and its tests run before any model is trained.
  No checkpoint and no `model_name` is an error, never a silent choice of a model.
"""
from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from meco_core.camera import canonical_focal_of, check_intrinsics, depth_scale, fit_size, network_focal
from meco_core.classes import GOLF, ClassSet, get_class_set
from meco_core.defaults import BACKENDS, DEFAULT_CHECKPOINT, MAX_DEPTH_M, MIN_ISLAND_FRACTION, PRECISIONS
from meco_core.image_codec import resize_image
from meco_core.inference.islands import fold_small_islands, island_class_ids
from meco_core.inference.postprocess import depth_to_output, labels_to_output
from meco_core.errors import MecoError

__all__ = ["Estimator", "EstimatorOptions", "Prediction", "RawOutput", "DeviceUnavailableError",
           "NonFiniteInputError", "PRECISIONS", "UPSAMPLE_MODES", "DEFAULT_CHECKPOINT", "resolve_device",
           "check_precision", "check_inference_size", "find_checkpoint"]

log = logging.getLogger("meco.inference")

UPSAMPLE_MODES = ("bilinear", "nearest")
MIN_INFERENCE_SIDE = 16  # one ViT patch; smaller inputs give no feature map at all
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class DeviceUnavailableError(MecoError, RuntimeError):
    """The requested device does not exist on this machine (e.g. CUDA asked for, none present)."""


class NonFiniteInputError(ValueError):
    """A float input image holds NaN or inf: there is nothing meaningful to infer from it."""


@dataclass
class Prediction:
    """One frame's outputs, at the requested output size (the input size by default).

    depth_m: float32 metres, NaN where invalid; None if the model has no depth head.
    labels: uint8 class ids (255 = no valid prediction); None without a segmentation head.
    nonfinite: number of output values (at inference resolution) that were NaN/inf.
    timings: milliseconds per stage: convert, inference, postprocess.
    """

    depth_m: np.ndarray | None
    labels: np.ndarray | None
    nonfinite: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    camera: str = "default"  # "given" (intrinsics passed) or "default" (the model's default camera)


@dataclass
class RawOutput:
    """Network outputs of one frame before post-processing (tensors at inference size)."""

    depth: torch.Tensor | None
    logits: torch.Tensor | None
    output_size: tuple[int, int]
    timings: dict[str, float]
    depth_scale: float = 1.0  # network depth -> metres for this frame's camera
    camera: str = "default"


def resolve_device(spec: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> torch.device, refusing devices that are absent."""
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", text)
    if not m:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {spec!r}")
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device {spec!r} was asked for but CUDA is not available here (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda}); use device 'cpu', or 'auto' to use a GPU only when present")
    index = int(m.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise DeviceUnavailableError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return torch.device("cuda", index)


def check_precision(precision: str) -> str:
    """Validate a precision name. fp16/bf16 run under autocast on CUDA and CPU alike; on most
    CPUs they are slower than fp32 (no native half arithmetic), so CPU deployments use fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def check_inference_size(size: Any) -> tuple[int, int] | None:
    """None / (0, 0) -> None (the model's native size: the checkpoint's recorded input size,
    else the input size); else (H, W) with both >= 16."""
    if size is None:
        return None
    values = [int(v) for v in size]
    if len(values) != 2:
        raise ValueError(f"inference_size must be [H, W]; got {list(size)}")
    if values == [0, 0]:
        return None
    if not all(MIN_INFERENCE_SIDE <= v <= 8192 for v in values):
        raise ValueError(f"inference_size must be [H, W] with {MIN_INFERENCE_SIDE} <= H, W <= 8192 "
                         f"(or [0, 0] for the model's native size); got {values}")
    return values[0], values[1]


def find_checkpoint(path: str | Path, extra_roots: tuple[Path, ...] = ()) -> Path | None:
    """Resolve a checkpoint path: as given (absolute, or relative to the working directory),
    then relative to each of `extra_roots`, which the caller chooses (e.g. the ROS package's
    share directory). The library adds no root of its own. None if it exists nowhere.

    Args:
        path: the checkpoint (.pt) or .onnx file, e.g. `meco_core.defaults.DEFAULT_CHECKPOINT`.
        extra_roots: directories to try a relative `path` under, in order, after the
            working directory.
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        return p if p.is_file() else None
    for root in (Path.cwd(), *extra_roots):
        if (root / p).is_file():
            return root / p
    return None


def _default_class_set(num_classes: int) -> ClassSet:
    if num_classes == GOLF.num_classes:
        return GOLF
    rng = np.random.default_rng(0)  # fixed, distinguishable colours for unnamed classes
    colors = [tuple(int(v) for v in rng.integers(40, 256, 3)) for _ in range(num_classes)]
    return ClassSet("generic", [f"class_{i}" for i in range(num_classes)], colors)


@dataclass(frozen=True)
class EstimatorOptions:
    """How an `Estimator` runs its model: every run-time option, with its default.

    Pass one to `Estimator(checkpoint, options)`, or pass fields as keyword arguments
    (`Estimator(checkpoint, device="cpu")`); keywords override the options' fields.

    Attributes:
        device: 'auto' (a GPU when present, else CPU), 'cpu', 'cuda' or 'cuda:N'. Asking for
            CUDA where there is none is a `DeviceUnavailableError`.
        precision: one of `PRECISIONS`: 'fp32', or 'fp16'/'bf16' under autocast (torch
            backend; ONNX backends run the export's precision). Changeable by `configure`.
        inference_size: (H, W) the network runs at; None or (0, 0): the checkpoint's
            recorded input size, else each frame's own size. Changeable by `configure`.
        threads: ONNX Runtime session threads (None: its default). torch's thread count is
            process-wide, so the entry point sets that one.
        class_set: class set name or `ClassSet` (None: the checkpoint's, else golf or generic
            names for the model's class count).
        upsample: one of `UPSAMPLE_MODES`: 'bilinear' (logits upsampled, then argmax) or
            'nearest' (cheapest). Changeable by `configure`.
        compile: torch.compile the model (torch backend; falls back to eager on failure).
        channels_last: channels-last memory format (None: on CUDA only).
        backend: one of `BACKENDS`: 'torch' runs the checkpoint, 'onnxruntime'/'tensorrt' its
            ONNX export (exported once into `engine_cache_dir`) or the .onnx file given.
        backend_fallback: let an ONNX backend run on another provider than asked when its
            own is missing (logged), instead of refusing.
        engine_cache_dir: where ONNX exports and TensorRT engines are cached (None: the default).
        ort_spin: ONNX Runtime worker spinning ('always', 'run', 'off'; `runtime.ORT_SPIN_MODES`).
        warn: where warnings go, a callable taking one string (None: this module's logger;
            the node passes its ROS logger).
        keep_aspect: torch backend: run each frame at the inference size's pixel count at the
            frame's own aspect ratio instead of stretching it to the inference size.
        min_island_fraction: islands of a ground surface (fairway, hazard, road for the golf set)
            smaller than this fraction of the output frame take the label around them
            (`meco_core.inference.islands`); 0 turns it off.
    """

    device: str = "auto"
    precision: str = "fp32"
    inference_size: tuple[int, int] | None = None
    threads: int | None = None
    class_set: Any = None
    upsample: str = "bilinear"
    compile: bool = False
    channels_last: bool | None = None
    backend: str = "torch"
    backend_fallback: bool = False
    engine_cache_dir: str | None = None
    ort_spin: str = "always"
    warn: Callable[[str], Any] | None = None
    keep_aspect: bool = False
    min_island_fraction: float = MIN_ISLAND_FRACTION

    def with_overrides(self, **overrides: Any) -> "EstimatorOptions":
        """A copy with `overrides` applied; an unknown name is a TypeError listing the valid ones."""
        unknown = sorted(set(overrides) - {f.name for f in fields(self)})
        if unknown:
            raise TypeError(f"Estimator got unknown options {unknown}; valid: "
                            f"{', '.join(f.name for f in fields(self))} (and checkpoint, options, model, "
                            "model_name, model_config)")
        return replace(self, **overrides) if overrides else self


class Estimator:
    """Depth + segmentation from RGB frames with a MECO-family model (see module doc).

    What runs is one of, in this order: the `checkpoint` (a .pt file, or an .onnx file on an
    ONNX backend), a given `model`, or the test/dev model `model_name` built with RANDOM
    weights (loudly flagged: `untrained` is True). The Estimator never picks a checkpoint on
    its own: entry points pass the default one (`meco_core.defaults.DEFAULT_CHECKPOINT`,
    resolved with `find_checkpoint`) when they want it.

    `threads` sizes ONNX Runtime's session; torch's thread count is process-wide state, so
    the Estimator never sets it: the entry point does (the node, on its inference thread).

    Args:
        checkpoint: path of the checkpoint (or .onnx file), resolved with `find_checkpoint`
            (as given, then under the working directory); None or '': no checkpoint.
        options: run-time options (`EstimatorOptions`; None: the defaults).
        model: an `nn.Module` to run instead of a checkpoint (torch backend), e.g. a model
            just trained; it gets `prepare_for_inference()` (or `eval()`).
        model_name: without a checkpoint: the registry model of the test/dev mode
            (`meco_core.models.list_models()`), built with RANDOM weights.
        model_config: its config keys (`meco_core.models.model_config_keys(model_name)`).
        **overrides: `EstimatorOptions` fields as keywords (device, precision,
            inference_size, threads, class_set, upsample, compile, channels_last, backend,
            backend_fallback, engine_cache_dir, ort_spin, warn, keep_aspect); they override
            `options`.

    Raises:
        FileNotFoundError: the checkpoint does not exist.
        ValueError: no checkpoint, model or model_name; an invalid option value.
        TypeError: an unknown option name.
        DeviceUnavailableError: the device asked for is absent.
    """

    def __init__(self, checkpoint: str | Path | None = None, options: EstimatorOptions | None = None, *,
                 model: nn.Module | None = None, model_name: str | None = None,
                 model_config: Mapping[str, Any] | None = None, **overrides: Any) -> None:
        from meco_core.inference.runtime import RuntimeSpec

        opts = (options or EstimatorOptions()).with_overrides(**overrides)
        self.options = opts
        if opts.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {opts.backend!r}")
        self.backend = opts.backend
        if opts.keep_aspect and opts.backend != "torch":
            raise ValueError(f"keep_aspect needs backend torch: {opts.backend} runs one fixed input size")
        self.keep_aspect = opts.keep_aspect
        self.precision = check_precision(opts.precision)
        self.upsample = self._check_upsample(opts.upsample)
        self.untrained = False
        self.source = "given model"
        ckpt: dict[str, Any] = {}
        self._warn = opts.warn or log.warning  # where warnings go (the node: its ROS logger)
        device, channels_last, compile = opts.device, opts.channels_last, opts.compile
        if opts.backend != "torch":
            model, ckpt = self._load_onnx(checkpoint, device, opts.inference_size,
                                          RuntimeSpec(opts.backend, "cpu", self.precision, opts.threads,
                                                      opts.engine_cache_dir, opts.backend_fallback, opts.ort_spin))
            device, channels_last, compile = "cpu", False, False  # outputs come back as CPU arrays
        self.device = resolve_device(device)
        self.device_label = getattr(model, "provider", None) or str(self.device)
        if model is None:
            model, ckpt = self._load(checkpoint, model_name, model_config)
        self.class_set = self._resolve_class_set(opts.class_set, ckpt, model)
        self.island_ids, self.min_island_fraction = island_class_ids(self.class_set), opts.min_island_fraction
        # The size the checkpoint was evaluated at: what (0, 0) / None means, so a node, `meco
        # eval` and replay run a model the same way without size flags.
        self.native_size = check_inference_size(ckpt.get("input_size"))
        self.inference_size = check_inference_size(opts.inference_size) or self.native_size
        self.model = model.prepare_for_inference() if hasattr(model, "prepare_for_inference") else model.eval()
        self.model.to(self.device)
        self.max_depth = float(getattr(model, "max_depth", MAX_DEPTH_M))
        self.canonical_focal = canonical_focal_of(model)
        self.tasks = list(getattr(model, "tasks", ("depth", "segmentation")))
        self.channels_last = self.device.type == "cuda" if channels_last is None else bool(channels_last)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._forward = self.model
        if compile:
            self._forward = self._try_compile(self.model)
        cfg = getattr(model, "config", {}) or {}
        backbone = cfg.get("backbone", "")
        self.model_name = f"{getattr(model, 'name', type(model).__name__)}" + (f"/{backbone}" if backbone else "") \
            + f" ({self.source})"

    # ---- construction helpers ----
    def _load(self, checkpoint, model_name, model_config) -> tuple[nn.Module, dict[str, Any]]:
        if checkpoint:
            from meco_core.models.checkpoint import build_from_checkpoint

            path = find_checkpoint(checkpoint)
            if path is None:
                raise FileNotFoundError(
                    f"checkpoint not found: {checkpoint} (looked in {Path.cwd()}). For a test/dev run without a "
                    "trained model pass checkpoint='' with model_name='meco' (random weights).")
            model, ckpt = build_from_checkpoint(path, map_location="cpu")
            self.source = path.name
            return model, ckpt
        if not model_name:
            raise ValueError(f"no checkpoint given: pass a checkpoint path (the shipped model: {DEFAULT_CHECKPOINT}, "
                             "resolved with meco_core.inference.find_checkpoint), or model_name (+ model_config) "
                             "for the test/dev mode with random weights")
        from meco_core.models import build_model

        model = build_model(model_name, **dict(model_config or {}))
        self.untrained = True
        self.source = "UNTRAINED random weights"
        self._warn(f"UNTRAINED MODEL: {model_name} built with RANDOM weights (test/dev mode); its depth and "
                   "segmentation are meaningless. Set a checkpoint for real use.")
        return model, {}

    def _load_onnx(self, checkpoint, device: str, inference_size: Any,
                   spec: Any) -> tuple[nn.Module, dict[str, Any]]:
        """The checkpoint's ONNX export (or the .onnx file given) in an ONNX Runtime session."""
        from dataclasses import replace

        from meco_core.inference.runtime import CUDA_PROVIDER, OnnxRuntimeModel, checkpoint_view, onnx_for, resolve_providers

        if not checkpoint:
            raise ValueError(f"backend {self.backend} runs a checkpoint or an .onnx file; the test/dev random-weight "
                             "model runs on backend torch")
        path = find_checkpoint(checkpoint)
        if path is None:
            raise FileNotFoundError(f"checkpoint not found: {checkpoint} (looked in {Path.cwd()})")
        if str(device).strip().lower() == "auto":
            import onnxruntime as ort

            has_provider = CUDA_PROVIDER in ort.get_available_providers()
            if torch.cuda.is_available() and not has_provider:
                self._warn(f"a GPU is present but this onnxruntime has no CUDA provider: backend {self.backend} "
                           "runs on the CPU. Install onnxruntime-gpu, or use backend torch on the GPU")
            device = "cuda:0" if torch.cuda.is_available() and has_provider else "cpu"
        spec = replace(spec, device=str(resolve_device(device)))
        providers = resolve_providers(spec)  # refuse before a (slow) export
        size = check_inference_size(inference_size)
        model = OnnxRuntimeModel(onnx_for(path, size, spec.onnx_fp16, spec.cache_dir), spec=spec, providers=providers)
        if size and size != model.input_size:
            raise ValueError(f"{path} was exported for {model.input_size[0]}x{model.input_size[1]}; inference_size "
                             f"{size[0]}x{size[1]} needs another export (or [0, 0] for the file's size)")
        self.source = f"{path.name} via {self.backend}"
        return model, checkpoint_view(model)

    def fixed_settings(self) -> dict[str, Any]:
        """Settings this backend fixes at start (changing them needs a restart): none for torch."""
        if self.backend == "torch":
            return {}
        return {"precision": self.precision, "inference_size": self.native_size}

    @staticmethod
    def _resolve_class_set(spec: Any, ckpt: dict[str, Any], model: nn.Module) -> ClassSet:
        num_classes = int(getattr(model, "num_classes", GOLF.num_classes))
        if spec is not None:
            cs = get_class_set(spec)
        elif ckpt.get("class_set"):
            cs = get_class_set(ckpt["class_set"])
        else:
            return _default_class_set(num_classes)
        if "segmentation" in getattr(model, "tasks", ("segmentation",)) and cs.num_classes != num_classes:
            raise ValueError(f"class set {cs.name!r} has {cs.num_classes} classes, the model predicts {num_classes}")
        return cs

    @staticmethod
    def _check_upsample(mode: str) -> str:
        if mode not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}; got {mode!r}")
        return mode

    def _try_compile(self, model: nn.Module):
        try:
            return torch.compile(model, dynamic=False)
        except Exception as exc:  # no compiler toolchain, unsupported op: run eagerly
            log.warning("torch.compile failed (%s); running the model eagerly", exc)
            return model

    # ---- run-time settings (called from the thread that calls predict) ----
    def configure(self, precision: str | None = None, inference_size: Any = "keep",
                  upsample: str | None = None) -> None:
        """Change settings that need no model rebuild; validated like the constructor's."""
        fixed = self.fixed_settings()
        if precision is not None and fixed and check_precision(precision) != fixed["precision"]:
            raise ValueError(f"precision is fixed at {fixed['precision']} by backend {self.backend}: restart to change it")
        if inference_size != "keep" and fixed and (check_inference_size(inference_size) or self.native_size) \
                != fixed["inference_size"]:
            raise ValueError(f"inference_size is fixed at {list(fixed['inference_size'])} by backend {self.backend} "
                             "(one export per size): restart to change it")
        if precision is not None:
            self.precision = check_precision(precision)
        if inference_size != "keep":
            self.inference_size = check_inference_size(inference_size) or self.native_size
        if upsample is not None:
            self.upsample = self._check_upsample(upsample)

    def recover(self) -> None:
        """After a CUDA out-of-memory error: free the allocator's cache so the next frame can run."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # ---- inference ----
    def _autocast(self):
        if self.precision == "fp32" or self.backend != "torch":  # ONNX graphs carry their own precision
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) the network runs a height x width frame at: the inference size (with
        `keep_aspect`: its pixel count at the frame's aspect ratio), else the frame's own size."""
        if not self.inference_size:
            return height, width
        return fit_size((height, width), self.inference_size) if self.keep_aspect else self.inference_size

    def _to_tensor(self, rgb: np.ndarray, net: tuple[int, int]) -> torch.Tensor:
        """HxWx3 (uint8 or float in [0, 1]) -> (1, 3, h, w) float on the device, resized to net (H, W)."""
        if net != rgb.shape[:2]:
            rgb = resize_image(rgb, *net)
        if self.device.type == "cpu":  # numpy: no torch OpenMP team woken beside ONNX Runtime's threads
            chw = rgb.transpose(2, 0, 1)
            chw = np.divide(chw, np.float32(255.0), dtype=np.float32) if chw.dtype == np.uint8 else chw
            x = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))[None]
        else:
            x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device, non_blocking=True)
            x = x.permute(2, 0, 1).unsqueeze(0)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    @staticmethod
    def _check_input(rgb: np.ndarray) -> np.ndarray:
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
        if rgb.dtype == np.uint8:
            return rgb
        if rgb.dtype.kind == "f":
            if not np.isfinite(rgb).all():
                raise NonFiniteInputError(f"input image has {int(np.size(rgb) - np.isfinite(rgb).sum())} "
                                          "NaN/inf values")
            return rgb.astype(np.float32, copy=False)
        raise ValueError(f"expected uint8 RGB (or float in [0, 1]), got dtype {rgb.dtype}")

    def predict(self, rgb: np.ndarray, need_depth: bool = True, need_labels: bool = True,
                output_size: tuple[int, int] | None = None, *,
                intrinsics: tuple[float, float, float, float] | None = None) -> Prediction:
        """Run one frame: resize to the inference size, forward, outputs back to `output_size`.

        Args:
            rgb: HxWx3 RGB, uint8 (or float in [0, 1]; NaN/inf is a `NonFiniteInputError`).
            need_depth: compute `Prediction.depth_m` (False: None, not post-processed; the
                node skips what nobody subscribes to).
            need_labels: compute `Prediction.labels` (False: None, not post-processed).
            output_size: (H, W) of the outputs; None: the input's.
            intrinsics: (fx, fy, cx, cy) of `rgb` as passed, in its pixels (the Estimator
                accounts for its own resizing); None: the model's default camera
                (`meco_core.camera.DEFAULT_HFOV_DEG`), `Prediction.camera == "default"`.

        Returns:
            A `Prediction`: depth in metres (float32, NaN where invalid), labels (uint8 class
            ids of `class_set`, 255 where invalid), the count of non-finite outputs and
            per-stage timings in ms.

        Raises:
            ValueError: not an HxWx3 uint8/float image, or invalid intrinsics.
            NonFiniteInputError: a float image holds NaN or inf.
        """
        return self.postprocess(self.infer(rgb, need_depth, need_labels, output_size, intrinsics=intrinsics))

    @torch.inference_mode()
    def infer(self, rgb: np.ndarray, need_depth: bool = True, need_labels: bool = True,
              output_size: tuple[int, int] | None = None, *,
              intrinsics: tuple[float, float, float, float] | None = None) -> RawOutput:
        """First half of predict: resize, convert, forward. Split from `postprocess` so a
        pipeline can post-process (and publish) one frame while the next one is inferred."""
        t0 = time.perf_counter()
        rgb = self._check_input(rgb)
        if intrinsics is not None:
            intrinsics = check_intrinsics(intrinsics)
        src = rgb.shape[:2]
        net = self.network_size(*src)
        scale = depth_scale(network_focal(intrinsics, src, net), self.canonical_focal)
        x = self._to_tensor(rgb, net)
        self._sync()
        t1 = time.perf_counter()
        with self._autocast():
            out = self._forward(x)
        self._sync()
        t2 = time.perf_counter()
        return RawOutput(out.get("depth") if need_depth else None, out.get("segmentation") if need_labels else None,
                         tuple(output_size or rgb.shape[:2]),
                         {"convert": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3},
                         depth_scale=scale, camera="default" if intrinsics is None else "given")

    @torch.inference_mode()
    def postprocess(self, raw: RawOutput) -> Prediction:
        """Second half of predict: outputs to the output size, invalid values marked."""
        t0 = time.perf_counter()
        out_h, out_w = raw.output_size
        depth = labels = None
        nonfinite = 0
        if raw.depth is not None:
            depth, bad = depth_to_output(raw.depth, out_h, out_w, self.upsample)
            if raw.depth_scale != 1.0:
                depth = depth * np.float32(raw.depth_scale)  # may be a read-only view of the output
            nonfinite += bad
        if raw.logits is not None:
            labels, bad = labels_to_output(raw.logits, out_h, out_w, self.upsample, self.class_set.ignore_index)
            labels = fold_small_islands(labels, self.island_ids, self.min_island_fraction, self.class_set.ignore_index)
            nonfinite += bad
        timings = {**raw.timings, "postprocess": (time.perf_counter() - t0) * 1e3}
        return Prediction(depth, labels, nonfinite, timings, raw.camera)

    def warmup(self, n: int = 2, size: tuple[int, int] | None = None) -> list[float]:
        """Run n frames of random data (first CUDA/oneDNN calls are slow); returns their ms.
        Size: the inference size, else `size`, else 384x512."""
        h, w = self.inference_size or size or (384, 512)
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        times = []
        for _ in range(max(0, int(n))):
            t = time.perf_counter()
            self.predict(frame)
            times.append((time.perf_counter() - t) * 1e3)
        return times

    def describe(self) -> dict[str, Any]:
        """Summary for logs and the stats message."""
        return {"model": self.model_name, "device": self.device_label, "backend": self.backend,
                "precision": self.precision,
                "inference_size": list(self.inference_size) if self.inference_size else "input",
                "upsample": self.upsample, "canonical_focal": self.canonical_focal, "classes": self.class_set.names,
                "untrained": self.untrained,
                "threads": (getattr(self.model, "spec", None) and self.model.spec.threads) or torch.get_num_threads()}
