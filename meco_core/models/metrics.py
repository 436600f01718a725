"""Dense-prediction metrics accumulated over a whole set (not averaged per image).

Depth (multi-task dense prediction literature): valid pixels 0 < gt < max_depth;
predictions clamped to >= 1e-3 m; RMSE, RMSE log, AbsRel, SqRel, delta < 1.25^{1,2,3}.
Segmentation: confusion matrix over the set, ignore 255; IoU per class; a class absent
from both ground truth and prediction over the whole set has IoU NaN (undefined) and is
left out of mIoU. Percentages for IoU and mIoU, as the paper's table.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from meco_core.defaults import MAX_DEPTH_M

MIN_PRED_DEPTH = 1e-3


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x.detach().cpu()


class DepthMetrics:
    def __init__(self, max_depth: float = MAX_DEPTH_M) -> None:
        self.max_depth = max_depth
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.sums = dict(sq=0.0, sq_log=0.0, abs_rel=0.0, sq_rel=0.0, d1=0.0, d2=0.0, d3=0.0)

    def update(self, pred, gt) -> None:
        pred, gt = _as_tensor(pred).double().reshape(-1), _as_tensor(gt).double().reshape(-1)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction and ground truth sizes differ: {pred.numel()} vs {gt.numel()}")
        valid = (gt > 0) & (gt < self.max_depth) & torch.isfinite(gt)
        if not bool(valid.any()):
            return
        p = torch.nan_to_num(pred[valid], nan=MIN_PRED_DEPTH).clamp_min(MIN_PRED_DEPTH)
        g = gt[valid]
        diff = p - g
        ratio = torch.maximum(p / g, g / p)
        self.count += int(valid.sum())
        self.sums["sq"] += float((diff ** 2).sum())
        self.sums["sq_log"] += float(((p.log() - g.log()) ** 2).sum())
        self.sums["abs_rel"] += float((diff.abs() / g).sum())
        self.sums["sq_rel"] += float((diff ** 2 / g).sum())
        for i, name in enumerate(("d1", "d2", "d3"), start=1):
            self.sums[name] += float((ratio < 1.25 ** i).sum())

    def compute(self) -> dict[str, float]:
        n = self.count
        if n == 0:
            return {k: math.nan for k in ("rmse", "rmse_log", "abs_rel", "sq_rel", "d1", "d2", "d3")} | {"pixels": 0}
        s = self.sums
        return {"rmse": math.sqrt(s["sq"] / n), "rmse_log": math.sqrt(s["sq_log"] / n),
                "abs_rel": s["abs_rel"] / n, "sq_rel": s["sq_rel"] / n,
                "d1": s["d1"] / n, "d2": s["d2"] / n, "d3": s["d3"] / n, "pixels": n}


class SegmentationMetrics:
    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.reset()

    def reset(self) -> None:
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def update(self, pred, gt) -> None:
        """pred: class ids (or logits with a class dim of size num_classes at dim -3); gt: ids."""
        pred, gt = _as_tensor(pred), _as_tensor(gt)
        if pred.dim() >= 3 and pred.shape[-3] == self.num_classes and pred.dim() == gt.dim() + 1:
            pred = pred.argmax(dim=-3)
        pred, gt = pred.reshape(-1).long(), gt.reshape(-1).long()
        if pred.shape != gt.shape:
            raise ValueError(f"prediction and ground truth sizes differ: {pred.numel()} vs {gt.numel()}")
        keep = (gt != self.ignore_index) & (gt >= 0) & (gt < self.num_classes)
        pred = pred[keep].clamp(0, self.num_classes - 1)
        idx = gt[keep] * self.num_classes + pred
        self.confusion += torch.bincount(idx, minlength=self.num_classes ** 2).view(self.num_classes, -1)

    def compute(self) -> dict:
        cm = self.confusion.double()
        tp = cm.diag()
        union = cm.sum(0) + cm.sum(1) - tp
        iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, math.nan)) * 100
        present = ~torch.isnan(iou)
        total = cm.sum()
        return {"miou": float(iou[present].mean()) if bool(present.any()) else math.nan,
                "iou_per_class": [float(v) for v in iou],
                "pixel_acc": float(tp.sum() / total * 100) if total > 0 else math.nan,
                "pixels": int(total)}
