"""Export: a deployable checkpoint (weights + config + class set, no training state) and
TorchScript.

`slim_checkpoint` is how shipped models (checkpoints/*.pt) are made from a training run's
best.pt: optimiser, scheduler and RNG states are dropped and floating weights can be
stored as fp16 (loaded back as fp32), which keeps a model under the 25 MB budget.
TorchScript tracing freezes the inference path at batch 1 for a fixed input size; MLoRE
is traced in its re-parameterised form.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint

KEEP_KEYS = ("step", "val_metrics", "train_config")


def slim_checkpoint(src: str | Path, dst: str | Path, half: bool = True) -> dict[str, Any]:
    """Write a deployable copy of `src`; returns sizes and what was kept."""
    ckpt = load_checkpoint(src)
    model, _ = build_from_checkpoint(src)
    extra = {k: ckpt[k] for k in KEEP_KEYS if k in ckpt}
    save_checkpoint(dst, model, class_set=ckpt.get("class_set"), half=half, source=str(src), **extra)
    return {"src_mb": Path(src).stat().st_size / 1e6, "dst_mb": Path(dst).stat().st_size / 1e6,
            "half": half, "kept": sorted(extra)}


class _TupleOutputs(torch.nn.Module):
    """Tracing wants tensors, not dicts: outputs in the model's task order."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.tasks = model, list(model.tasks)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image)
        return tuple(out[t] for t in self.tasks)


@torch.no_grad()
def export_torchscript(src: str | Path, dst: str | Path, size: tuple[int, int]) -> dict[str, Any]:
    """Trace the checkpoint's model (inference form) at batch 1 and `size`; verify, save."""
    model, _ = build_from_checkpoint(src)
    model.prepare_for_inference()
    wrapper = _TupleOutputs(model).eval()
    example = torch.rand(1, 3, *size)
    traced = torch.jit.trace(wrapper, example, check_trace=False)
    probe = torch.rand(1, 3, *size)
    max_diff = max(float((a - b).abs().max()) for a, b in zip(wrapper(probe), traced(probe)))
    if max_diff > 1e-3:
        raise RuntimeError(f"traced model differs from eager by {max_diff:.2e}; not saved")
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(dst))
    return {"outputs": wrapper.tasks, "size": list(size), "max_abs_diff": max_diff,
            "dst_mb": Path(dst).stat().st_size / 1e6}
