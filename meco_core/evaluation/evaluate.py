"""Evaluation shared by `meco eval`, validation during training and the rosbag replay evaluator.

The one place that turns model outputs + ground truth into the paper's numbers is
`MetricSet.update` (via `predict_and_update`), so training-time validation, offline
evaluation and replay can never disagree on conventions (see meco_core.models.metrics: depth over
all valid pixels of the set with 0 < gt < max_depth; IoU from one confusion matrix,
classes absent from both gt and prediction left out of mIoU).

Images are evaluated at their full resolution (the model pads to the patch size and crops
back), one at a time: batch 1 is what the cart runs, so FPS is measured on the same passes.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from meco_core.camera import DEFAULT_HFOV_DEG, canonical_focal_of, metric_depth_outputs
from meco_core.classes import ClassSet, get_class_set, get_remap
from meco_core.defaults import MAX_DEPTH_M, MIN_ISLAND_FRACTION
from meco_core.evaluation.confusion import top_confusions
from meco_core.evaluation.per_frame import score_frame, worst_lines
from meco_core.evaluation.plotting import pyplot, save_figure
from meco_core.inference.islands import fold_small_islands, island_class_ids
from meco_core.models.metrics import DepthMetrics, SegmentationMetrics

DEPTH_KEYS = ("rmse", "rmse_log", "abs_rel", "sq_rel", "d1", "d2", "d3")
# per-frame median-scaled versions (s = median(gt)/median(pred)) and the median over frames of s
MS_DEPTH_KEYS = (*(f"ms_{k}" for k in DEPTH_KEYS), "ms_scale_median")


class MetricSet:
    """Depth and segmentation metrics for the tasks a model has, fed with per-sample label flags."""

    def __init__(self, tasks: Sequence[str], num_classes: int, max_depth: float = MAX_DEPTH_M,
                 per_frame: bool = False) -> None:
        self.depth = DepthMetrics(max_depth) if "depth" in tasks else None
        self.seg = SegmentationMetrics(num_classes) if "segmentation" in tasks else None
        self.frames = 0
        # per_frame: also one row of scores per frame (meco_core.evaluation.per_frame), for `meco eval`
        self.frame_rows: list[dict[str, Any]] | None = [] if per_frame else None

    def update(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> None:
        """outputs from the model (or `labels` (B,H,W) class ids instead of `segmentation` logits, as the
        ROS node publishes them: replay evaluation); batch with depth (B,1,H,W) m, seg (B,H,W) ids,
        has_depth/has_seg (B,)."""
        b = next(iter(outputs.values())).shape[0]
        has_depth = batch.get("has_depth", torch.ones(b, dtype=torch.bool))
        has_seg = batch.get("has_seg", torch.ones(b, dtype=torch.bool))
        names = batch.get("name") or [None] * b
        for i in range(b):
            # each frame is counted once, on its own, then added to the set (its row needs it alone)
            depth = seg = None
            if self.depth is not None and "depth" in batch and bool(has_depth[i]):
                depth = DepthMetrics(self.depth.max_depth)
                depth.update(outputs["depth"][i].float(), batch["depth"][i])
                self.depth.merge(depth)
            if self.seg is not None and "seg" in batch and bool(has_seg[i]):
                pred = outputs["labels"][i] if "labels" in outputs else outputs["segmentation"][i].argmax(dim=0)
                seg = SegmentationMetrics(self.seg.num_classes, self.seg.ignore_index)
                seg.update(pred, batch["seg"][i])
                self.seg.merge(seg)
            if self.frame_rows is not None:
                name = names[i] if names[i] is not None else str(self.frames + i)
                self.frame_rows.append(score_frame(name, depth, seg))
        self.frames += b

    def compute(self) -> dict[str, Any]:
        """Flat dict: depth keys and their median-scaled ms_ versions (NaN when no depth was seen),
        miou (%; classes in the ground truth or the prediction), miou_gt (classes in the ground
        truth), iou_per_class, frames; per_frame (one row per frame) when asked for."""
        out: dict[str, Any] = {"frames": self.frames}
        depth = self.depth.compute() if self.depth is not None else {}
        for k in (*DEPTH_KEYS, *MS_DEPTH_KEYS):
            out[k] = depth.get(k, math.nan)
        out["depth_pixels"] = depth.get("pixels", 0)
        out["depth_bands"] = depth.get("bands", [])
        out["depth_bands_by_pred"] = depth.get("pred_bands", [])
        seg = self.seg.compute() if self.seg is not None else {}
        out["miou"] = seg.get("miou", math.nan)
        out["miou_gt"] = seg.get("miou_gt", math.nan)
        out["iou_per_class"] = seg.get("iou_per_class", [])
        out["pixel_acc"] = seg.get("pixel_acc", math.nan)
        out["seg_pixels"] = seg.get("pixels", 0)
        out["confusion"] = seg.get("confusion", [])
        if self.frame_rows is not None:
            out["per_frame"] = list(self.frame_rows)
        return out


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Forward in eval mode (no aux losses); images (B,3,H,W) in [0,1] on the model's device."""
    return model(images)


@torch.no_grad()
def predict_and_update(model: nn.Module, batch: dict[str, Any], metrics: MetricSet,
                       device: torch.device | str = "cpu", island_ids: Sequence[int] = (),
                       min_island_fraction: float = 0.0) -> tuple[dict[str, torch.Tensor], float]:
    """Predict one batch and add it to `metrics`; returns (outputs on CPU, forward seconds).
    With `island_ids`, labels are the arg-max with small ground islands folded, as the
    Estimator publishes them (`meco_core.inference.islands`)."""
    images = batch["image"].to(device, non_blocking=True)
    _sync(device)
    t0 = time.perf_counter()
    outputs = predict(model, images)
    _sync(device)
    seconds = time.perf_counter() - t0
    outputs = metric_depth_outputs({k: v.float().cpu() for k, v in outputs.items()}, batch.get("focal"),
                                   canonical_focal_of(model))
    outputs = to_target_size(outputs, batch)
    if island_ids and min_island_fraction > 0 and "segmentation" in outputs:
        labels = outputs["segmentation"].argmax(dim=1).to(torch.uint8).numpy()
        outputs["labels"] = torch.from_numpy(np.stack([fold_small_islands(frame, island_ids, min_island_fraction)
                                                       for frame in labels])).long()
    metrics.update(outputs, batch)
    return outputs, seconds


def to_target_size(outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Outputs of a model run at another size, brought to the ground truth's (depth and logits
    bilinearly, half-pixel centres: as the node upsamples what it publishes)."""
    ref = batch.get("seg") if batch.get("seg") is not None else batch.get("depth")
    if ref is None:
        return outputs
    size = tuple(ref.shape[-2:])
    return {k: v if v.dim() != 4 or tuple(v.shape[-2:]) == size else
            F.interpolate(v, size, mode="bilinear", align_corners=False) for k, v in outputs.items()}


def _sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def score(results: dict[str, Any], metric: str = "auto") -> float:
    """One number, higher is better, for picking best.pt.

    auto: mean of the available task scores mIoU/100 and max(0, 1 - AbsRel), so a
    multi-task model is judged on both tasks with comparable 0..1 scales.
    """
    if metric == "miou":
        return results["miou"]
    if metric == "d1":
        return results["d1"]
    if metric in ("abs_rel", "rmse"):
        return -results[metric]
    parts = []
    if not math.isnan(results.get("miou", math.nan)):
        parts.append(results["miou"] / 100.0)
    if not math.isnan(results.get("abs_rel", math.nan)):
        parts.append(max(0.0, 1.0 - results["abs_rel"]))
    return sum(parts) / len(parts) if parts else math.nan


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    class_set: ClassSet | None
    samples: list[dict[str, np.ndarray]] = field(default_factory=list)  # for the PNG grid


def evaluate(model: nn.Module, dataset: Iterable[dict[str, Any]] | Any, device: torch.device | str = "cpu",
             max_frames: int | None = None, warmup: int = 2, keep_samples: int = 0,
             class_set: ClassSet | None = None, progress: bool = False,
             min_island_fraction: float = MIN_ISLAND_FRACTION) -> EvalResult:
    """Run the model over a dataset one frame at a time; metrics + FPS (+ a few samples to plot).

    FPS = timed frames / their forward time, excluding the first `warmup` frames (allocator
    and thread-pool start-up); the metrics include every frame. Labels are scored as the
    Estimator outputs them: small islands of `class_set`'s ground surfaces folded
    (`min_island_fraction`, 0: raw arg-max).
    """
    island_ids = island_class_ids(class_set) if class_set is not None else ()
    model.eval()
    n = len(dataset) if max_frames is None else min(len(dataset), max_frames)
    indices = np.linspace(0, len(dataset) - 1, n).round().astype(int) if n < len(dataset) else np.arange(n)
    keep = set(np.linspace(0, n - 1, keep_samples).round().astype(int).tolist()) if keep_samples else set()
    metrics = MetricSet(getattr(model, "tasks", ("depth", "segmentation")),
                        getattr(model, "num_classes", class_set.num_classes if class_set else 0),
                        getattr(model, "max_depth", MAX_DEPTH_M), per_frame=True)
    times: list[float] = []
    samples = []
    cameras: dict[str, int] = {}
    iterator = enumerate(indices)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=n, desc="eval", unit="frame")
    for j, idx in iterator:
        item = dataset[int(idx)]
        batch = {k: (v.unsqueeze(0) if isinstance(v, torch.Tensor) else [v]) for k, v in item.items()}
        outputs, seconds = predict_and_update(model, batch, metrics, device, island_ids, min_island_fraction)
        cameras[item.get("camera", "default")] = cameras.get(item.get("camera", "default"), 0) + 1
        if j >= warmup:
            times.append(seconds)
        if j in keep:
            samples.append(_sample_arrays(item, outputs))
    results = metrics.compute()
    if not times and n:  # tiny sets: time whatever there is
        times = [seconds]
    results["fps"] = len(times) / sum(times) if times and sum(times) > 0 else math.nan
    results["latency_ms_median"] = float(np.median(times) * 1000) if times else math.nan
    if class_set is not None:
        results["class_names"] = list(class_set.names)
    results["camera"] = describe_cameras(cameras, canonical_focal_of(model))
    return EvalResult(results, class_set, samples)


def describe_cameras(counts: dict[str, int], canonical_focal: float) -> str:
    """Which camera model the depth was computed for, in words (printed and in the JSON)."""
    if not canonical_focal:
        return "camera-agnostic model (canonical_focal 0): depth in metres of its training camera; intrinsics unused"
    parts = []
    if counts.get("given"):
        parts.append(f"{counts['given']} frame{'s' * (counts['given'] != 1)} with the dataset's intrinsics")
    if counts.get("default"):
        n = counts["default"]
        parts.append(f"{n} frame{'s' * (n != 1)} with the default camera ({DEFAULT_HFOV_DEG:g} deg HFOV: the data has "
                     "no intrinsics)")
    return f"canonical focal {canonical_focal:g} px, rescaled per frame: " + ", ".join(parts or ["no frames"])


def _sample_arrays(item: dict[str, Any], outputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    out = {"image": item["image"].permute(1, 2, 0).numpy()}
    if bool(item.get("has_depth", True)):
        out["gt_depth"] = item["depth"][0].numpy()
    if bool(item.get("has_seg", True)):
        out["gt_seg"] = item["seg"].numpy()
    if "depth" in outputs:
        out["pred_depth"] = outputs["depth"][0, 0].numpy()
    if "labels" in outputs:
        out["pred_seg"] = outputs["labels"][0].numpy()
    elif "segmentation" in outputs:
        out["pred_seg"] = outputs["segmentation"][0].argmax(dim=0).numpy()
    return out


# --------------------------------------------------------------------------- class sets
def resolve_class_sets(model_cs: ClassSet | None, data_cs: ClassSet, num_classes: int) -> ClassSet:
    """The class set to evaluate in (the model's); errors if the data cannot be expressed in it."""
    if model_cs is None:
        if data_cs.num_classes != num_classes:
            raise ValueError(f"checkpoint has no class set and {num_classes} classes; the data has "
                             f"{data_cs.num_classes} ({data_cs.name!r})")
        return data_cs
    if model_cs.num_classes != num_classes:
        raise ValueError(f"checkpoint class set {model_cs.name!r} has {model_cs.num_classes} classes but the model "
                         f"predicts {num_classes}")
    if not model_cs.same_classes(data_cs) and get_remap(data_cs.name, model_cs.name) is None:
        raise ValueError(f"model classes {model_cs.name!r} {model_cs.names} differ from the data's {data_cs.name!r} "
                         f"{data_cs.names} and no remap {data_cs.name}->{model_cs.name} is registered "
                         "(meco_core.classes.REMAPS)")
    return model_cs


# --------------------------------------------------------------------------- reporting
def band_lines(bands: Sequence[dict[str, float]], by: str = "true") -> list[str]:
    """Depth by true (or predicted) distance: each band's metric AbsRel, median gt/pred (above 1: read
    too near) and share of the valid pixels; bands without pixels are left out."""
    cells = [f"{b['from_m']:g}-{b['to_m']:g} m: AbsRel {b['abs_rel']:.3f}, gt/pred {b['gt_over_pred_median']:.2f} "
             f"({100 * b['share']:.0f} %)" for b in bands if b.get("pixels")]
    return [f"by {by} distance: " + "; ".join(cells)] if cells else []


def format_table(results: dict[str, Any], class_names: Sequence[str] | None = None, title: str = "") -> str:
    """The paper's layout: depth row (RMSE, RMSE log, AbsRel, SqRel, d1-d3) and, when present, the
    median-scaled row under it (ms_ keys) and the distance bands, then per-class IoU."""
    lines = [title] if title else []
    if not math.isnan(results.get("rmse", math.nan)):
        head = f"{'RMSE':>8} {'RMSE log':>9} {'AbsRel':>8} {'SqRel':>8} {'d<1.25':>8} {'d<1.25^2':>9} {'d<1.25^3':>9}"

        def row(p: str) -> str:
            return (f"{results[p + 'rmse']:8.3f} {results[p + 'rmse_log']:9.3f} {results[p + 'abs_rel']:8.3f} "
                    f"{results[p + 'sq_rel']:8.3f} {results[p + 'd1']:8.3f} {results[p + 'd2']:9.3f} "
                    f"{results[p + 'd3']:9.3f}")

        lines += ["Depth (m; lower is better for errors, higher for delta)", head, row("")]
        if all(k in results for k in MS_DEPTH_KEYS) and not math.isnan(results["ms_rmse"]):
            lines += [f"median-scaled (per frame, median(gt)/median(pred)); median scale "
                      f"{results['ms_scale_median']:.3f}", row("ms_")]
        lines += band_lines(results.get("depth_bands") or [])
        lines += band_lines(results.get("depth_bands_by_pred") or [], by="predicted")
    elif "rmse" in results:
        lines.append("Depth: no valid ground truth in this set")
    ious = results.get("iou_per_class") or []
    if ious and not results.get("seg_pixels", 1):
        lines.append("Segmentation: no labelled pixels in this set")
    elif ious:
        names = list(class_names) if class_names else [f"class {i}" for i in range(len(ious))]
        width = max(8, *(len(n) for n in names))
        lines.append("Segmentation IoU (%)")
        lines += [f"  {n:<{width}} {('   n/a' if math.isnan(v) else f'{v:6.2f}')}" for n, v in zip(names, ious)]
        lines.append(f"  {'mIoU':<{width}} {results['miou']:6.2f}")
        if results.get("miou_gt", results["miou"]) != results["miou"]:  # a class the frames lack was predicted
            lines.append(f"  {'mIoU over the classes the ground truth holds':<{width}} {results['miou_gt']:6.2f}")
        if results.get("confusion") and len(results["confusion"]) == len(names):
            lines += [f"  most confused: {true} called {called} ({share:.1f} % of its pixels, {of_all:.1f} % of all)"
                      for true, called, share, of_all in top_confusions(results["confusion"], names)]
    lines += worst_lines(results.get("per_frame") or [])
    if results.get("camera") and not math.isnan(results.get("rmse", math.nan)):
        lines.append(f"camera: {results['camera']}")
    lines.append(f"frames {results.get('frames', 0)}, FPS {results.get('fps', math.nan):.2f} (batch 1, "
                 f"median latency {results.get('latency_ms_median', math.nan):.1f} ms)")
    return "\n".join(lines)


def save_grid(samples: Sequence[dict[str, np.ndarray]], class_set: ClassSet | None, path: str | Path,
              max_depth: float = MAX_DEPTH_M) -> Path:
    """PNG: one row per sample; columns input | pred depth | pred seg | GT depth | GT seg."""
    plt = pyplot()

    cols = ["image", "pred_depth", "pred_seg", "gt_depth", "gt_seg"]
    titles = ["input", "predicted depth", "predicted segmentation", "GT depth", "GT segmentation"]
    rows = max(1, len(samples))
    fig, axes = plt.subplots(rows, len(cols), figsize=(3.2 * len(cols), 2.6 * rows), squeeze=False)
    palette = class_set.palette() if class_set is not None else None
    for r, sample in enumerate(samples):
        vmax = _depth_range(sample, max_depth)  # one scale per row: predicted and GT comparable
        for c, key in enumerate(cols):
            ax = axes[r][c]
            ax.axis("off")
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
            if key not in sample:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
                continue
            arr = sample[key]
            if key == "image":
                ax.imshow(np.clip(arr, 0, 1))
            elif key.endswith("depth"):
                shown = np.ma.masked_where(arr <= 0, arr)
                ax.imshow(shown, cmap="turbo_r", vmin=0, vmax=vmax)
            else:
                ids = np.where((arr >= 0) & (arr < 256), arr, 255).astype(np.uint8)
                ax.imshow(palette[ids] if palette is not None else ids, interpolation="nearest")
    return save_figure(fig, path)


def _depth_range(sample: dict[str, np.ndarray], max_depth: float) -> float:
    """Upper end of the depth colour scale: 99th percentile of valid GT (else prediction)."""
    for key in ("gt_depth", "pred_depth"):
        arr = sample.get(key)
        if arr is not None and (arr > 0).any():
            return float(min(max_depth, max(np.percentile(arr[arr > 0], 99), 1e-3)))
    return max_depth


def load_eval_dataset(data: str | Path, split: str, class_set: ClassSet | None, num_classes: int,
                      max_depth: float = MAX_DEPTH_M, size: tuple[int, int] | None = None, depth_only: bool = False,
                      keep_aspect: bool = False):
    """MecoDataset (no augmentation, full resolution unless `size`) expressed in the model's classes.

    With `size`, only the images are resized: predictions are scored at the ground truth's
    own resolution (`to_target_size`), as replay evaluation scores the node's outputs.

    depth_only: ignore the data's labels (e.g. a CamVid-class model's depth on golf frames).
    keep_aspect: `size` is a pixel budget run at each frame's aspect ratio, as
    `Estimator(keep_aspect=True)` runs frames (default: resized to `size`, as the node does).
    """
    from meco_core.data.dataset import MecoDataset
    from meco_core.data.format import DatasetReader

    data_cs = DatasetReader(data).class_set
    if depth_only:
        target = class_set or data_cs
        ds = MecoDataset(data, split, augment=False, class_set=target, max_depth=max_depth, resize=size,
                         resize_targets=False, label_remap=np.full(256, 255, np.uint8), keep_aspect=keep_aspect)
        return ds, target
    target = resolve_class_sets(class_set, data_cs, num_classes)
    ds = MecoDataset(data, split, augment=False, class_set=target, max_depth=max_depth, resize=size,
                     resize_targets=False, keep_aspect=keep_aspect)
    return ds, target


def json_safe(v: Any) -> Any:
    """NaN -> None (strict JSON), recursively."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def class_set_of(ckpt: dict[str, Any]) -> ClassSet | None:
    cs = ckpt.get("class_set")
    return get_class_set(cs) if cs else None
