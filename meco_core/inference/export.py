"""Export: a deployable checkpoint (weights + config + class set, no training state) and
TorchScript.

`slim_checkpoint` is how shipped models (checkpoints/*.pt) are made from a training run's
best.pt: optimiser, scheduler and RNG states are dropped and floating weights can be
stored as fp16 (loaded back as fp32), which keeps a model under the 25 MB budget. Given
several checkpoints of one model it ships their uniform weight average (a "model soup" /
SWA-style average of snapshots from one run, which lands in a flatter, better-generalising
point than any single snapshot).
TorchScript tracing freezes the inference path at batch 1 for a fixed input size; MLoRE
is traced in its re-parameterised form.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from meco_core.models.checkpoint import (CheckpointError, architecture, build_from_checkpoint, load_checkpoint,
                                         load_state_strict, save_checkpoint)

KEEP_KEYS = ("step", "val_metrics", "train_config", "input_size")


def average_weights(paths: list[str | Path]) -> dict[str, torch.Tensor]:
    """Uniform average of the floating weights of checkpoints of one model (same name,
    architecture and class set, else an error naming what differs), e.g. a shipped model and
    a run fine-tuned from it (WiSE-FT); integer buffers (BN batch counters) come from the
    last checkpoint."""
    ckpts = [load_checkpoint(p) for p in paths]
    kinds = [{"model_name": c.get("model_name"), "model_config": architecture(c), "class_set": c.get("class_set")}
             for c in ckpts]
    for path, kind in zip(paths[1:], kinds[1:]):
        differ = [key for key in kind if kind[key] != kinds[0][key]]
        if differ:
            raise CheckpointError(f"cannot average {paths[0]} and {path}: their {differ[0]} differ")
    states = [c["state_dict"] for c in ckpts]
    return {k: (torch.stack([s[k].float() for s in states]).mean(0) if v.is_floating_point() else states[-1][k])
            for k, v in states[0].items()}


def slim_checkpoint(src: str | Path | list[str | Path], dst: str | Path, half: bool = True,
                    input_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Write a deployable copy of `src` (or the weight average of a list); returns sizes and what was kept.

    `input_size` (H, W) records the size the model is meant to run at (its evaluation size),
    so tools that run it need no size flag; by default the source's record is kept.
    """
    sources = [src] if isinstance(src, (str, Path)) else list(src)
    ckpt = load_checkpoint(sources[-1])
    model, _ = build_from_checkpoint(sources[-1])
    if len(sources) > 1:
        load_state_strict(model, average_weights(sources), source=f"average of {len(sources)} checkpoints")
    # one snapshot's validation metrics would misdescribe an average
    extra = {k: ckpt[k] for k in KEEP_KEYS if k in ckpt and not (len(sources) > 1 and k == "val_metrics")}
    if input_size is not None:
        extra["input_size"] = [int(input_size[0]), int(input_size[1])]
    source = str(sources[0]) if len(sources) == 1 else [str(s) for s in sources]
    save_checkpoint(dst, model, class_set=ckpt.get("class_set"), half=half, source=source, **extra)
    return {"src_mb": sum(Path(s).stat().st_size for s in sources) / 1e6, "dst_mb": Path(dst).stat().st_size / 1e6,
            "half": half, "kept": sorted(extra), "averaged": len(sources)}


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
