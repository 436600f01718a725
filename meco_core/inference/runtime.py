"""Run exported ONNX models behind the torch model interface (`model(images) -> dict`).

Three backends, one interface: `torch` (the checkpoint itself), `onnxruntime` (CPU, or the
CUDA execution provider on a GPU) and `tensorrt` (ONNX Runtime's TensorRT execution
provider, fp16, engines cached on disk). `meco eval --backend`, `meco bench --backend` and
the ROS node all go through `load_for_inference`/`OnnxRuntimeModel`, so "the exported
model is the model" is a measured statement, not a hope.

Why these rules:
- A `.pt` checkpoint asked to run on an ONNX backend is exported once into the cache
  directory (keyed by the checkpoint's content hash, size and precision) and reused: the
  second start is fast, and `meco export --format tensorrt-cache` does it ahead of time so
  nobody waits at the vehicle.
- TensorRT engines are only valid for the TensorRT version, ONNX Runtime version and GPU
  that built them, so their cache directory is named after all three: a version upgrade
  builds a fresh engine instead of failing on a stale one.
- A missing provider (CPU-only onnxruntime wheel, no TensorRT libraries, no GPU) is a
  `BackendError` that names what to install or which parameter to change. Running
  somewhere else than asked happens only with `fallback=True`, and is logged.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from meco_core.defaults import BACKENDS
from meco_core.errors import MecoError
from meco_core.inference.onnx_export import read_onnx_metadata

ONNX_BACKENDS = tuple(b for b in BACKENDS if b != "torch")  # run an ONNX export through ONNX Runtime
CPU_PROVIDER, CUDA_PROVIDER, TRT_PROVIDER = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
INSTALL_HINT = {
    CUDA_PROVIDER: "the CUDA build of ONNX Runtime (pip uninstall onnxruntime && pip install onnxruntime-gpu; "
                   "CUDA 12 and cuDNN 9 libraries on the library path)",
    TRT_PROVIDER: "onnxruntime-gpu with the TensorRT 10 libraries on the library path (pip install tensorrt-cu12, "
                  "or NVIDIA's TensorRT packages)",
}
log = logging.getLogger("meco.runtime")


class BackendError(MecoError, RuntimeError):
    """The asked-for backend cannot run here; the message says what to install or change."""


ORT_SPIN_MODES = ("always", "run", "off")


@dataclass(frozen=True)
class RuntimeSpec:
    """How to run an ONNX file: backend, device ('cpu' | 'cuda' | 'cuda:N'), precision, threads."""

    backend: str = "onnxruntime"
    device: str = "cpu"
    precision: str = "fp32"
    threads: int | None = None
    cache_dir: str | None = None
    fallback: bool = False
    # ORT's intra-op workers spin between ops (fast hand-offs) and keep spinning after Run()
    # returns: fastest alone, but in a pipeline that spinning takes the cores the other
    # threads (post-processing, DDS) need. 'always' (ORT's default) | 'run' (spin inside a
    # Run(), stop the moment it returns: session.force_spinning_stop) | 'off' (never spin).
    spin: str = "always"

    def check(self) -> "RuntimeSpec":
        if self.spin not in ORT_SPIN_MODES:
            raise BackendError(f"ONNX Runtime spin mode must be one of {', '.join(ORT_SPIN_MODES)}; got {self.spin!r}")
        if self.backend not in ONNX_BACKENDS:
            raise BackendError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")
        if self.backend == "tensorrt" and not self.on_gpu:
            raise BackendError("backend tensorrt runs on an NVIDIA GPU: set device: cuda (or auto on a GPU machine), "
                               "or backend: onnxruntime for the CPU")
        if self.precision == "bf16" or (self.precision == "fp16" and not self.on_gpu):
            raise BackendError(f"precision {self.precision} is not offered on {self.backend} with device "
                               f"{self.device}: use fp32 (CPU) or fp16 (GPU)")
        return self

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def device_id(self) -> int:
        return int(self.device.partition(":")[2] or 0)

    @property
    def onnx_fp16(self) -> bool:
        """fp16 weights in the ONNX file: for the CUDA provider; TensorRT casts an fp32 graph itself."""
        return self.precision == "fp16" and self.backend == "onnxruntime"


def default_cache_dir() -> Path:
    """$MECO_CACHE, else $XDG_CACHE_HOME/meco, else ~/.cache/meco."""
    if os.environ.get("MECO_CACHE"):
        return Path(os.environ["MECO_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "meco"


def _file_key(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _export_size(checkpoint: Path, size: tuple[int, int] | None) -> tuple[int, int]:
    """`size`, else the input size the checkpoint records (ONNX backends run one fixed size)."""
    from meco_core.models.checkpoint import load_checkpoint

    size = tuple(size or load_checkpoint(checkpoint).get("input_size") or ())
    if len(size) != 2:
        raise BackendError(f"{checkpoint} records no input size and none was given: ONNX backends run one fixed "
                           "size, so set inference_size (or re-export with meco export --input-size)")
    return int(size[0]), int(size[1])


def onnx_cache_path(checkpoint: str | Path, size: tuple[int, int] | None, fp16: bool = False,
                    cache_dir: str | Path | None = None) -> Path:
    """Where the export of `checkpoint` at `size` (default: its recorded input size) lives in the
    cache: named by the file's content, so a retrained file at the same path gets a new export."""
    path = Path(checkpoint)
    h, w = _export_size(path, size)
    return Path(cache_dir or default_cache_dir()) / "onnx" / f"{path.stem}-{_file_key(path)}-{h}x{w}" \
        f"{'-fp16' if fp16 else ''}.onnx"


def onnx_for(checkpoint: str | Path, size: tuple[int, int] | None, fp16: bool = False,
             cache_dir: str | Path | None = None) -> Path:
    """The ONNX file to run: `checkpoint` itself if it is one, else its cached export (made now if absent)."""
    path = Path(checkpoint)
    if path.suffix == ".onnx":
        return path
    size = _export_size(path, size)
    out = onnx_cache_path(path, size, fp16, cache_dir)
    if not out.is_file():
        from meco_core.inference.onnx_export import export_onnx

        log.info("exporting %s to %s (once; later starts reuse it)", path, out)
        export_onnx(path, out, size, fp16=fp16)
    return out


def tensorrt_cache_dir(cache_dir: str | Path | None, device_id: int = 0) -> Path:
    """Engine directory named after the TensorRT, ONNX Runtime and GPU versions that build engines."""
    import onnxruntime as ort

    try:
        import tensorrt

        trt = tensorrt.__version__
    except ImportError:
        trt = "unknown"
    gpu = torch.cuda.get_device_name(device_id) if torch.cuda.is_available() else "gpu"
    tag = "".join(c if c.isalnum() or c in ".-" else "_" for c in f"trt{trt}-ort{ort.__version__}-{gpu}")
    return Path(cache_dir or default_cache_dir()) / "tensorrt" / tag


def providers_for(spec: RuntimeSpec) -> list[tuple[str, dict[str, Any]]]:
    """ONNX Runtime providers, most preferred first (ORT runs nodes a provider lacks on the next)."""
    if not spec.on_gpu:
        return [(CPU_PROVIDER, {})]
    cuda = (CUDA_PROVIDER, {"device_id": spec.device_id})
    if spec.backend == "onnxruntime":
        return [cuda, (CPU_PROVIDER, {})]
    engines = tensorrt_cache_dir(spec.cache_dir, spec.device_id)
    trt = {"device_id": spec.device_id, "trt_fp16_enable": spec.precision == "fp16",
           "trt_engine_cache_enable": True, "trt_engine_cache_path": str(engines),
           "trt_timing_cache_enable": True, "trt_timing_cache_path": str(engines)}
    return [(TRT_PROVIDER, trt), cuda, (CPU_PROVIDER, {})]


def resolve_providers(spec: RuntimeSpec) -> list[tuple[str, dict[str, Any]]]:
    """The providers `spec` asks for if this onnxruntime has them; else a BackendError (or the
    CPU provider, logged, with `fallback`). Checked before any export, so a refusal is instant."""
    import onnxruntime as ort

    spec.check()
    wanted = providers_for(spec)
    available = ort.get_available_providers()
    missing = [name for name, _ in wanted if name not in available]
    if missing:
        _refuse_or_fall_back(spec, f"backend {spec.backend} on {spec.device} needs "
                                   f"{INSTALL_HINT.get(missing[0], missing[0])}; this onnxruntime {ort.__version__} "
                                   f"offers {', '.join(available)}")
        return [(CPU_PROVIDER, {})]
    return wanted


def open_session(path: str | Path, spec: RuntimeSpec, providers: list | None = None):
    """An ONNX Runtime session on the providers `spec` asks for (`providers`: already resolved
    by `resolve_providers`, which callers run before exporting), or a BackendError saying why not."""
    import onnxruntime as ort

    providers = providers or resolve_providers(spec)
    first = providers[0][0]
    for _, options in providers:
        if options.get("trt_engine_cache_path"):
            Path(options["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    if spec.threads:
        options.intra_op_num_threads = int(spec.threads)
    if spec.spin == "off":
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    elif spec.spin == "run":
        options.add_session_config_entry("session.force_spinning_stop", "1")
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # provider libraries that fail to load, no GPU, a corrupt file
        raise BackendError(f"ONNX Runtime could not open {path} with {first}: {exc}") from exc
    if session.get_providers()[0] != first:  # ORT drops a provider whose libraries do not load
        _refuse_or_fall_back(spec, f"ONNX Runtime could not start {first} (it fell back to "
                                   f"{session.get_providers()[0]}): {INSTALL_HINT.get(first, '')}")
    return session


def _refuse_or_fall_back(spec: RuntimeSpec, problem: str) -> None:
    if not spec.fallback:
        raise BackendError(f"{problem}. Install it, or set device: cpu with backend: onnxruntime, or "
                           "backend_fallback: true to accept the CPU provider")
    log.warning("%s; backend_fallback is on: running on the CPU provider", problem)


class OnnxRuntimeModel(nn.Module):
    """An ONNX file (one fixed input size) run by ONNX Runtime; outputs come back as CPU tensors."""

    def __init__(self, path: str | Path, threads: int | None = None, spec: RuntimeSpec | None = None,
                 providers: list | None = None) -> None:
        super().__init__()
        meta = read_onnx_metadata(path)
        if meta.get("format") != "meco-onnx/1":
            raise ValueError(f"{path} has no meco metadata: export it with `meco export --format onnx`")
        self.path, self.meta = str(path), meta
        self.spec = spec or RuntimeSpec(threads=threads)
        self.session = open_session(path, self.spec, providers)
        self.provider = self.session.get_providers()[0]
        self.name = f"{meta['model_name']} [{self.spec.backend}]"
        self.config = meta["model_config"]
        self.tasks = list(meta["tasks"])
        self.max_depth = float(meta["max_depth"])
        self.input_size = tuple(meta["input_size"])
        class_set = meta.get("class_set") or {}
        self.num_classes = len(class_set.get("names", [])) if class_set else int(self.config.get("num_classes", 0))

    def prepare_for_inference(self) -> "OnnxRuntimeModel":
        return self.eval()

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if tuple(image.shape[-2:]) != self.input_size:
            raise ValueError(f"{self.path} was exported for {self.input_size[0]}x{self.input_size[1]} inputs, got "
                             f"{image.shape[-2]}x{image.shape[-1]}: resize (meco eval --size) or export another size")
        outputs = [self.session.run(None, {"image": np.ascontiguousarray(x[None].float().cpu().numpy())})
                   for x in image]  # the graph takes batch 1
        joined = outputs[0] if len(outputs) == 1 else [np.concatenate([o[i] for o in outputs]) for i in range(len(self.tasks))]
        return {t: torch.from_numpy(joined[i]).float() for i, t in enumerate(self.tasks)}  # no copy at batch 1


def checkpoint_view(model: OnnxRuntimeModel) -> dict[str, Any]:
    """What a torch checkpoint dict would say about this model (class set, size, name, config)."""
    return {"model_name": model.name, "class_set": model.meta.get("class_set"),
            "input_size": list(model.input_size), "model_config": model.config}


def load_for_inference(path: str | Path, backend: str = "torch", threads: int | None = None,
                       spec: RuntimeSpec | None = None, size: tuple[int, int] | None = None
                       ) -> tuple[nn.Module, dict[str, Any]]:
    """(model in inference form, checkpoint-like dict with model_name, class_set, input_size).

    ONNX backends take an `.onnx` file, or a checkpoint exported (cached) at `size` or its
    recorded input size."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend in ONNX_BACKENDS:
        spec = spec or RuntimeSpec(backend=backend, threads=threads)
        providers = resolve_providers(spec)  # refuse before a (slow) export
        model = OnnxRuntimeModel(onnx_for(path, size, spec.onnx_fp16, spec.cache_dir), spec=spec, providers=providers)
        return model, checkpoint_view(model)
    if str(path).endswith(".onnx"):
        raise ValueError(f"{path} is an ONNX file: pass --backend onnxruntime")
    from meco_core.models.checkpoint import build_from_checkpoint

    model, ckpt = build_from_checkpoint(path)
    return model.prepare_for_inference(), ckpt


def build_engine_cache(checkpoint: str | Path, cache_dir: str | Path, size: tuple[int, int] | None = None,
                       precision: str = "fp16", device: str = "cuda") -> dict[str, Any]:
    """Build-only step for the vehicle: export, build the TensorRT engine into `cache_dir`, run it once."""
    spec = RuntimeSpec(backend="tensorrt", device=device, precision=precision, cache_dir=str(cache_dir))
    providers = resolve_providers(spec)  # refuse before a (slow) export
    onnx_file = onnx_for(checkpoint, size, False, cache_dir)
    model = OnnxRuntimeModel(onnx_file, spec=spec, providers=providers)
    model(torch.rand(1, 3, *model.input_size))
    engines = tensorrt_cache_dir(cache_dir, spec.device_id)
    return {"onnx": str(onnx_file), "engine_dir": str(engines), "provider": model.provider,
            "files": sorted(p.name for p in engines.iterdir())}
