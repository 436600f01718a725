"""Run an exported ONNX model behind the torch model interface (`model(images) -> dict`).

`meco eval --backend onnxruntime` (and any code written against the registry models)
can then score an `.onnx` file exactly as it scores a checkpoint: same data path, same
metrics, so "the exported model is the model" is a measured statement, not a hope.
The file's metadata (written by `meco.onnx_export`) supplies tasks, classes, max depth
and the fixed input size.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .onnx_export import read_onnx_metadata

BACKENDS = ("torch", "onnxruntime")


class OnnxRuntimeModel(nn.Module):
    """An ONNX file (one fixed input size) run by ONNX Runtime on the CPU provider."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        super().__init__()
        from .onnx_export import ort_session

        meta = read_onnx_metadata(path)
        if meta.get("format") != "meco-onnx/1":
            raise ValueError(f"{path} has no meco metadata: export it with `meco export --format onnx`")
        self.path, self.meta = str(path), meta
        self.session = ort_session(path, threads)
        self.name = f"{meta['model_name']} [onnxruntime]"
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
        return {t: torch.from_numpy(np.concatenate([o[i] for o in outputs])).float() for i, t in enumerate(self.tasks)}


def load_for_inference(path: str | Path, backend: str = "torch", threads: int | None = None
                       ) -> tuple[nn.Module, dict[str, Any]]:
    """(model in inference form, checkpoint-like dict with model_name, class_set, input_size)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "onnxruntime" or str(path).endswith(".onnx"):
        if backend != "onnxruntime":
            raise ValueError(f"{path} is an ONNX file: pass --backend onnxruntime")
        model = OnnxRuntimeModel(path, threads)
        return model, {"model_name": model.name, "class_set": model.meta.get("class_set"),
                       "input_size": list(model.input_size), "model_config": model.config}
    from .checkpoint import build_from_checkpoint

    model, ckpt = build_from_checkpoint(path)
    return model.prepare_for_inference(), ckpt
