"""ONNX export of a checkpoint's inference form, self-describing and verified.

- Exported with `torch.onnx.export(..., dynamo=True)` (the legacy exporter fails on timm's
  anti-aliased position-embedding resize). MLoRE goes out re-parameterised and MECO with
  its k-codebook search (a plain gather replaces `embedding_bag` while exporting).
- One fixed input size per file (the vehicle's inference size): TensorRT builds its best
  engine for a fixed shape, and dynamic height/width made the exporter crawl here.
- The file carries what a runtime needs, as ONNX metadata: class set, max depth, input
  size, tasks, model name and config (normalisation happens inside the graph).
- `fp16=True` converts weights and activations to float16 with inputs/outputs kept
  float32 (for GPU execution providers; CPU runs fp16 ONNX slowly).
- Every export is checked against torch on a probe image with ONNX Runtime: depth max
  abs difference and segmentation label agreement; a file that disagrees is not kept.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from meco_core.atomic_files import temp_beside
from meco_core.errors import DiskWriteError, MecoError
from meco_core.models.checkpoint import build_from_checkpoint
from meco_core.inference.export import _TupleOutputs

METADATA_PREFIX = "meco."
DEFAULT_EXPORT_SIZE = (240, 320)  # the vehicle's inference size, for checkpoints that record none
# Tolerances of the parity check: float32 graphs agree to ~1e-5 m; fp16 ones to centimetres.
PARITY = {False: {"depth_m": 1e-3, "labels": 0.999}, True: {"depth_m": 0.5, "labels": 0.98}}


def onnx_metadata(model: torch.nn.Module, ckpt: dict[str, Any], size: tuple[int, int], fp16: bool) -> dict[str, str]:
    """String metadata for the ONNX file (what the node needs without side files)."""
    return {f"{METADATA_PREFIX}{k}": v for k, v in {
        "format": "meco-onnx/1",
        "model_name": ckpt["model_name"],
        "model_config": json.dumps(ckpt["model_config"], default=str),
        "class_set": json.dumps(ckpt.get("class_set")),
        "max_depth": repr(float(model.max_depth)),
        "input_size": json.dumps(list(size)),
        "tasks": json.dumps(list(model.tasks)),
        "precision": "fp16" if fp16 else "fp32",
        "input": "image: float32 (1, 3, H, W) RGB in [0, 1] (normalised inside)",
    }.items()}


class OnnxFileError(MecoError, ValueError):
    """An .onnx file that cannot be read (missing, truncated, corrupt, not ONNX); names the file."""


def read_onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The meco.* metadata of an exported file, JSON values decoded."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise OnnxFileError(f"ONNX file not found: {path}") from None
    except Exception as exc:  # protobuf's DecodeError names neither the file nor the likely cause (issue 20)
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        raise OnnxFileError(f"cannot read ONNX file {path}: truncated, corrupt or not an ONNX model ({size} bytes; "
                            f"{type(exc).__name__}: {exc})") from None
    props = {p.key[len(METADATA_PREFIX):]: p.value for p in proto.metadata_props if p.key.startswith(METADATA_PREFIX)}
    for key in ("model_config", "class_set", "input_size", "tasks"):
        if key in props:
            props[key] = json.loads(props[key])
    if "max_depth" in props:
        props["max_depth"] = float(props["max_depth"])
    return props


def ort_session(path: str | Path, threads: int | None = None):
    """A CPU ONNX Runtime session (threads: intra-op count, default ORT's choice)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@torch.no_grad()
def parity(wrapper: torch.nn.Module, session: Any, size: tuple[int, int], seed: int = 0) -> dict[str, float]:
    """torch vs ONNX Runtime on one probe: depth max abs diff (m), label agreement (0..1)."""
    probe = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed))
    ref = dict(zip(wrapper.tasks, wrapper(probe)))
    got = dict(zip(wrapper.tasks, session.run(None, {"image": probe.numpy()})))
    out = {}
    if "depth" in ref:
        out["depth_max_abs_diff_m"] = float(np.abs(got["depth"].astype(np.float32) - ref["depth"].numpy()).max())
    if "segmentation" in ref:
        out["label_agreement"] = float((got["segmentation"].argmax(1) == ref["segmentation"].numpy().argmax(1)).mean())
    return out


def export_onnx(src: str | Path, dst: str | Path, size: tuple[int, int] | None = None, fp16: bool = False,
                opset: int = 18) -> dict[str, Any]:
    """Export checkpoint `src`'s inference form at batch 1 and `size` (default: the size the
    checkpoint records, else 240x320); verify with ONNX Runtime; save."""
    model, ckpt = build_from_checkpoint(src)
    size = tuple(size or ckpt.get("input_size") or DEFAULT_EXPORT_SIZE)
    return export_model_onnx(model, ckpt, dst, size, fp16, opset)


def export_model_onnx(model: torch.nn.Module, ckpt: dict[str, Any], dst: str | Path, size: tuple[int, int],
                      fp16: bool = False, opset: int = 18) -> dict[str, Any]:
    """Export a built model (`ckpt`: its model_name, model_config, class_set); verify; save."""
    model.prepare_for_inference()
    wrapper = _TupleOutputs(model).eval()
    example = torch.rand(1, 3, *size)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet = logging.getLogger("torch.onnx")
        level, quiet.level = quiet.level, logging.ERROR
        try:
            program = torch.onnx.export(wrapper, (example,), dynamo=True, opset_version=opset,
                                        input_names=["image"], output_names=list(model.tasks), verbose=False)
        finally:
            quiet.setLevel(level)
    proto = program.model_proto
    if fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        proto = convert_float_to_float16(proto, keep_io_types=True)
    for key, value in onnx_metadata(model, ckpt, size, fp16).items():
        proto.metadata_props.add(key=key, value=value)
    check: dict[str, Any] = {}

    def verify(path: Path) -> None:
        check.update(parity(wrapper, ort_session(path), size))
        limits = PARITY[fp16]
        if check.get("depth_max_abs_diff_m", 0.0) > limits["depth_m"] or check.get("label_agreement", 1.0) < limits["labels"]:
            raise RuntimeError(f"ONNX Runtime disagrees with torch ({check}); {dst} not written")

    save_verified(proto, dst, verify)
    return {"out": str(dst), "size": list(size), "fp16": fp16, "opset": opset, "outputs": list(model.tasks),
            "parity": check, "mb": dst.stat().st_size / 1e6}


def save_verified(proto: Any, dst: Path, verify: Callable[[Path], None]) -> None:
    """Save `proto` to a temporary beside `dst`, `verify(temporary)` (raises to refuse it), then
    rename it over `dst`. The temporary is this call's own: nodes started together export the
    same checkpoint to the same cache file at once, and with one shared temporary name one
    renamed it away under the other (tools/replay_stress.py: "No such file or directory:
    '.tiny-...onnx.tmp'")."""
    import onnx

    try:
        fd, tmp = temp_beside(dst)  # readable by other users: a shared engine / model cache
    except OSError as exc:  # no such folder, not writable, read-only disk: name the file asked for
        raise DiskWriteError.of(dst, exc) from exc
    os.close(fd)
    try:
        onnx.save(proto, str(tmp))
        verify(tmp)
        tmp.replace(dst)
    except DiskWriteError:
        raise
    except OSError as exc:  # a full disk or file-size limit mid-write: dst itself was never touched
        raise DiskWriteError.of(dst, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)
