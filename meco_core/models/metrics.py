"""Dense-prediction metrics accumulated over a whole set (not averaged per image).

Depth (multi-task dense prediction literature): valid pixels 0 < gt < max_depth (finite);
predictions clamped to >= 1e-3 m (NaN -> 1e-3); RMSE, RMSE log, AbsRel, SqRel, delta < 1.25^{1,2,3}.
Median-scaled depth (self-supervised depth literature, e.g. Monodepth2), keys prefixed `ms_`:
each frame's clamped prediction is multiplied by s = median(gt) / median(pred), both medians
over that frame's valid pixels (numpy median: mean of the two middle values for an even
count), clamped to >= 1e-3 again, and the same metrics are accumulated over all valid pixels
of the set (not averaged per frame). One `DepthMetrics.update` call is one frame (one s).
`ms_scale_median` is the median over frames of s: how far off the metric scale is (1 = none).
By true distance (`bands`, edges `DEPTH_BAND_EDGES_M` below max_depth): each band's pixel count and share, metric
AbsRel, and the median over its pixels of gt/pred (from a histogram of log(gt/pred) in 0.5 % steps,
clipped to 1/55..55; the lower middle value for an even count): a model that reads far things near
shows a band ratio above 1 growing with distance, which the set's one median scale hides (a bias,
or regression to the mean: the bands by predicted distance below tell them apart).
By predicted distance (`pred_bands`, the same edges, pixels binned by their clamped prediction; the
last band also holds predictions at or beyond max_depth): why both: an unbiased but uncertain model
(one that predicts E[depth | image]) reads far things near and near things far when binned by the
truth (regression to the mean: the truly far pixels are those it underestimated), yet its ratios
binned by its own reading are 1. A ratio above 1 there is a bias a user can act on: "what it calls
30 m is farther".
A frame without a valid pixel contributes nothing; with none in the whole set every depth
value is NaN.
Segmentation: confusion matrix over the set, ignore 255; IoU per class; a class absent
from both ground truth and prediction over the whole set has IoU NaN (undefined) and is
left out of mIoU. Percentages for IoU and mIoU, as the paper's table.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from meco_core.defaults import DEPTH_BAND_EDGES_M, MAX_DEPTH_M

MIN_PRED_DEPTH = 1e-3
BAND_LOG_RATIO_MAX = 4.0  # log(gt/pred) histogram range: ratios 1/55 .. 55
BAND_HIST_BINS = 1601  # 0.005 wide in log: medians to 0.5 %


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x.detach().cpu()


DEPTH_METRICS = ("rmse", "rmse_log", "abs_rel", "sq_rel", "d1", "d2", "d3")
MEDIAN_SCALED_PREFIX = "ms_"


def _depth_sums() -> dict[str, float]:
    return dict(sq=0.0, sq_log=0.0, abs_rel=0.0, sq_rel=0.0, d1=0.0, d2=0.0, d3=0.0)


def _add_depth_sums(sums: dict[str, float], p: torch.Tensor, g: torch.Tensor) -> None:
    """Add the per-pixel error sums of predictions p (> 0) against valid ground truth g."""
    diff = p - g
    ratio = torch.maximum(p / g, g / p)
    sums["sq"] += float((diff ** 2).sum())
    sums["sq_log"] += float(((p.log() - g.log()) ** 2).sum())
    sums["abs_rel"] += float((diff.abs() / g).sum())
    sums["sq_rel"] += float((diff ** 2 / g).sum())
    for i, name in enumerate(("d1", "d2", "d3"), start=1):
        sums[name] += float((ratio < 1.25 ** i).sum())


def _depth_results(sums: dict[str, float], n: int) -> dict[str, float]:
    if n == 0:
        return {k: math.nan for k in DEPTH_METRICS}
    return {"rmse": math.sqrt(sums["sq"] / n), "rmse_log": math.sqrt(sums["sq_log"] / n),
            "abs_rel": sums["abs_rel"] / n, "sq_rel": sums["sq_rel"] / n,
            "d1": sums["d1"] / n, "d2": sums["d2"] / n, "d3": sums["d3"] / n}


class DepthMetrics:
    """Metric and median-scaled depth errors over a set; each `update` call is one frame."""

    def __init__(self, max_depth: float = MAX_DEPTH_M) -> None:
        self.max_depth = max_depth
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.sums = _depth_sums()
        self.ms_sums = _depth_sums()  # after per-frame median scaling
        self.scales: list[float] = []  # per-frame s = median(gt) / median(pred)
        self.band_edges = tuple(e for e in DEPTH_BAND_EDGES_M if e < self.max_depth)  # a short range: fewer bands
        n_bands = len(self.band_edges) + 1
        # [0]: binned by true distance, [1]: by predicted distance
        self.band_abs_rel = np.zeros((2, n_bands))
        self.band_hist = np.zeros((2, n_bands, BAND_HIST_BINS), dtype=np.int64)  # log(gt/pred) per band

    def update(self, pred, gt) -> None:
        """One frame: prediction and ground truth of the same size (any shape), metres."""
        pred, gt = _as_tensor(pred).double().reshape(-1), _as_tensor(gt).double().reshape(-1)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction and ground truth sizes differ: {pred.numel()} vs {gt.numel()}")
        valid = (gt > 0) & (gt < self.max_depth) & torch.isfinite(gt)
        if not bool(valid.any()):
            return
        p = torch.nan_to_num(pred[valid], nan=MIN_PRED_DEPTH).clamp_min(MIN_PRED_DEPTH)
        g = gt[valid]
        self.count += int(valid.sum())
        _add_depth_sums(self.sums, p, g)
        scale = float(np.median(g.numpy()) / np.median(p.numpy()))
        self.scales.append(scale)
        _add_depth_sums(self.ms_sums, (p * scale).clamp_min(MIN_PRED_DEPTH), g)
        self._add_bands(p, g)

    def _add_bands(self, p: torch.Tensor, g: torch.Tensor) -> None:
        n_bands = self.band_hist.shape[1]
        edges = torch.tensor(self.band_edges, dtype=g.dtype)
        abs_rel = (p - g).abs() / g
        log_ratio = (g / p).log().clamp(-BAND_LOG_RATIO_MAX, BAND_LOG_RATIO_MAX)
        step = 2 * BAND_LOG_RATIO_MAX / (BAND_HIST_BINS - 1)
        idx = ((log_ratio + BAND_LOG_RATIO_MAX) / step).round().long()
        for k, key in enumerate((g, p)):
            band = torch.bucketize(key, edges, right=True)
            self.band_abs_rel[k] += torch.zeros(n_bands, dtype=g.dtype).index_add_(0, band, abs_rel).numpy()
            flat = np.bincount((band * BAND_HIST_BINS + idx).numpy(), minlength=n_bands * BAND_HIST_BINS)
            self.band_hist[k] += flat.reshape(n_bands, BAND_HIST_BINS)

    def merge(self, other: "DepthMetrics") -> None:
        """Add the frames `other` counted (e.g. one frame scored on its own) to this set."""
        self.count += other.count
        for mine, theirs in ((self.sums, other.sums), (self.ms_sums, other.ms_sums)):
            for k, v in theirs.items():
                mine[k] += v
        self.scales += other.scales
        self.band_abs_rel += other.band_abs_rel
        self.band_hist += other.band_hist

    def compute(self) -> dict[str, float]:
        """rmse .. d3, ms_rmse .. ms_d3, ms_scale_median (NaN without valid pixels) and pixels."""
        n = self.count
        out = _depth_results(self.sums, n)
        out |= {MEDIAN_SCALED_PREFIX + k: v for k, v in _depth_results(self.ms_sums, n).items()}
        out["ms_scale_median"] = float(np.median(self.scales)) if self.scales else math.nan
        out["pixels"] = n
        out["bands"] = self._band_results(0)
        out["pred_bands"] = self._band_results(1)
        return out

    def _band_results(self, by: int) -> list[dict[str, float]]:
        """One dict per distance band (by=0: true, 1: predicted distance): from_m, to_m, pixels, share of
        the set's pixels, abs_rel and the median of gt/pred (NaN for a band without pixels)."""
        edges = (0.0, *self.band_edges, self.max_depth)
        centres = np.exp(np.linspace(-BAND_LOG_RATIO_MAX, BAND_LOG_RATIO_MAX, BAND_HIST_BINS))
        out = []
        for b, hist in enumerate(self.band_hist[by]):
            pixels = int(hist.sum())
            median = float(centres[np.searchsorted(np.cumsum(hist), (pixels + 1) // 2)]) if pixels else math.nan
            out.append({"from_m": edges[b], "to_m": edges[b + 1], "pixels": pixels,
                        "share": pixels / self.count if self.count else math.nan,
                        "abs_rel": float(self.band_abs_rel[by, b] / pixels) if pixels else math.nan,
                        "gt_over_pred_median": median})
        return out


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

    def merge(self, other: "SegmentationMetrics") -> None:
        """Add the pixels `other` counted to this set."""
        self.confusion += other.confusion

    def compute(self) -> dict:
        cm = self.confusion.double()
        tp = cm.diag()
        union = cm.sum(0) + cm.sum(1) - tp
        iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, math.nan)) * 100
        present = ~torch.isnan(iou)
        in_gt = cm.sum(1) > 0
        total = cm.sum()
        # miou: classes in the ground truth or the prediction (a class the frames do not hold
        # counts 0 as soon as one pixel is predicted as it); miou_gt: classes the ground truth holds
        return {"miou": float(iou[present].mean()) if bool(present.any()) else math.nan,
                "miou_gt": float(iou[in_gt].mean()) if bool(in_gt.any()) else math.nan,
                "iou_per_class": [float(v) for v in iou],
                "pixel_acc": float(tp.sum() / total * 100) if total > 0 else math.nan,
                "pixels": int(total),
                # rows: ground truth, columns: prediction, pixels (meco_core.evaluation.confusion)
                "confusion": self.confusion.tolist()}
