"""Training losses: masked depth (L1 or SILog) on valid pixels, cross-entropy with ignore,
plus the decoder's auxiliary VQ and router load-balancing terms.

Partial labels: a batch may mix samples with and without a task's labels (a CamVid image
has no depth). `has_depth` / `has_seg` flags mask those samples out of that task's loss;
a task with no valid pixel in the batch contributes an exact zero that still keeps the
graph connected (so DDP sees every parameter used).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from meco_core.defaults import IGNORE_INDEX


def valid_depth_mask(gt: torch.Tensor, max_depth: float | None = None) -> torch.Tensor:
    """0 means 'no data' (sparse lidar); NaN/inf are invalid too."""
    valid = (gt > 0) & torch.isfinite(gt)
    if max_depth is not None:
        valid &= gt < max_depth
    return valid


def depth_loss(pred: torch.Tensor, gt: torch.Tensor, sample_mask: torch.Tensor | None = None,
               kind: str = "silog", silog_lambda: float = 0.85) -> torch.Tensor:
    valid = valid_depth_mask(gt)
    if sample_mask is not None:
        valid &= sample_mask.view(-1, *([1] * (gt.dim() - 1)))
    if not bool(valid.any()):
        return pred.sum() * 0.0
    p, g = pred[valid], gt[valid]
    if kind == "l1":
        return (p - g).abs().mean()
    if kind == "silog":
        d = torch.log(p.clamp_min(1e-3)) - torch.log(g)
        return torch.sqrt((d.pow(2).mean() - silog_lambda * d.mean().pow(2)).clamp_min(1e-8))
    raise ValueError(f"depth loss must be 'l1' or 'silog', got {kind!r}")


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, sample_mask: torch.Tensor | None = None,
                      class_weights: torch.Tensor | None = None) -> torch.Tensor:
    if sample_mask is not None:
        target = torch.where(sample_mask.view(-1, 1, 1), target, torch.full_like(target, IGNORE_INDEX))
    if not bool((target != IGNORE_INDEX).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, weight=class_weights, ignore_index=IGNORE_INDEX)


@dataclass
class LossWeights:
    depth: float = 1.0
    segmentation: float = 1.0
    vq: float = 1.0
    balance: float = 0.01
    depth_kind: str = "silog"


class MultiTaskLoss(nn.Module):
    """Weighted sum of task losses and auxiliary terms; returns (total, parts as floats)."""

    def __init__(self, weights: LossWeights | None = None, class_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.weights = weights or LossWeights()
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, outputs: dict[str, torch.Tensor], aux: dict[str, torch.Tensor],
                batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        w = self.weights
        parts: dict[str, torch.Tensor] = {}
        if "depth" in outputs:
            parts["depth"] = depth_loss(outputs["depth"], batch["depth"], batch.get("has_depth"), w.depth_kind)
        if "segmentation" in outputs:
            parts["segmentation"] = segmentation_loss(outputs["segmentation"], batch["seg"], batch.get("has_seg"),
                                                      self.class_weights)
        for key in ("vq", "balance"):
            if key in aux:
                parts[key] = aux[key]
        total = sum(getattr(w, k) * v for k, v in parts.items())
        if not torch.isfinite(total):
            raise FloatingPointError(f"non-finite loss: { {k: float(v) for k, v in parts.items()} }")
        return total, {k: float(v.detach()) for k, v in parts.items()}
