"""Scoring and reporting of a replay: the SAME metric code as `meco eval`, plus timing.

Every scored frame goes through `meco_core.evaluation.evaluate.MetricSet`, which accumulates the
set-wide numbers (those that must equal `meco eval` on the same frames) and keeps the frame's own
row (`meco_core.evaluation.per_frame`: metrics over time, worst frames). The node publishes class ids, not
logits, which MetricSet accepts as `labels`. The table is `evaluate.format_table` and the
image grids are `evaluate.save_grid`, so a replay report reads like an eval report.

Outputs in `--out`: report.json (keys of `meco eval` + frames_sent / frames_scored /
frames_dropped / latency_ms), report.md (tables and how it was run), metrics_over_time.png,
worst_frames.png, sample_grid.png, confusion.png (rows: ground truth, in % of each class's pixels).
"""
from __future__ import annotations

import heapq
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from meco_core.bags import rgb_from_msg
from meco_core.classes import ClassSet
from meco_core.data.dataset import resize_sparse_depth
from meco_core.evaluation.evaluate import DEPTH_KEYS, MS_DEPTH_KEYS, MetricSet, format_table, json_safe, save_grid
from meco_core.evaluation.confusion import save_confusion
from meco_core.evaluation.plotting import pyplot, save_figure

GRID_ROWS = 4
THUMB_WIDTH = 320  # samples kept for the PNGs are shrunk to this width (memory stays bounded)


def _thumb(sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Shrink a grid sample to THUMB_WIDTH (area for the image, nearest/sparse-safe for the rest)."""
    h, w = sample["image"].shape[:2]
    if w <= THUMB_WIDTH:
        return sample
    nh, nw = max(1, round(h * THUMB_WIDTH / w)), THUMB_WIDTH
    out = {"image": cv2.resize(sample["image"], (nw, nh), interpolation=cv2.INTER_AREA)}
    for key, arr in sample.items():
        if key == "image":
            continue
        if key == "gt_depth":
            out[key] = resize_sparse_depth(arr, nh, nw)
        else:
            out[key] = cv2.resize(arr, (nw, nh), interpolation=cv2.INTER_NEAREST)
    return out


@dataclass
class FrameScore:
    index: int
    stamp: int
    latency_ms: float
    metrics: dict[str, Any]  # the frame's row (meco_core.evaluation.per_frame), name included


@dataclass
class Scorer:
    """Set-wide and per-frame metrics, plus the samples the PNGs need."""

    class_set: ClassSet
    max_depth: float
    expected_frames: int
    tasks: tuple[str, ...] = ("depth", "segmentation")
    metrics: MetricSet = field(init=False)
    frames: list[FrameScore] = field(default_factory=list)
    worst: list[tuple[float, int, dict[str, np.ndarray]]] = field(default_factory=list)  # min-heap of badness
    samples: list[dict[str, np.ndarray]] = field(default_factory=list)
    resized: int = 0
    label_lut: np.ndarray | None = None  # (256,) uint8: bag label ids -> class_set ids (None: already in them)

    def __post_init__(self) -> None:
        self.metrics = MetricSet(self.tasks, self.class_set.num_classes, self.max_depth, per_frame=True)
        n = max(self.expected_frames, 1)
        self._targets = sorted(set(np.linspace(0, n - 1, min(GRID_ROWS, n)).round().astype(int).tolist()))

    def score(self, index: int, stamp: int, image_msg: Any, pred_depth: np.ndarray | None,
              pred_labels: np.ndarray | None, gt_depth: np.ndarray | None, gt_labels: np.ndarray | None,
              latency_ms: float) -> dict[str, float] | None:
        """Add one frame; returns its own metrics (None: no output has ground truth to compare with)."""
        outputs, batch = self._tensors(pred_depth, pred_labels, gt_depth, gt_labels)
        if not outputs:
            return None
        batch["name"] = [f"#{index}"]  # the frame's index on the camera topic, as report.md names frames
        self.metrics.update(outputs, batch)
        per = self.metrics.frame_rows[-1]  # shared with the set's rows, not copied (long bags)
        self.frames.append(FrameScore(index, stamp, latency_ms, per))
        self._keep(index, image_msg, outputs, batch, per)
        return per

    def _tensors(self, pred_depth, pred_labels, gt_depth, gt_labels) -> tuple[dict, dict]:
        outputs: dict[str, torch.Tensor] = {}
        batch: dict[str, Any] = {}
        if pred_depth is not None and gt_depth is not None:
            d = np.where(np.isposinf(pred_depth), self.max_depth, pred_depth)  # REP 118 "too far"
            d = self._fit(d, gt_depth.shape, cv2.INTER_LINEAR)
            outputs["depth"] = torch.from_numpy(np.ascontiguousarray(d, np.float32))[None, None]
            batch["depth"] = torch.from_numpy(np.ascontiguousarray(gt_depth, np.float32))[None, None]
        if pred_labels is not None and gt_labels is not None:
            if self.label_lut is not None:  # the bag's class set -> the model's, as `meco eval` remaps
                gt_labels = self.label_lut[gt_labels]
            lab = self._fit(pred_labels, gt_labels.shape, cv2.INTER_NEAREST)
            outputs["labels"] = torch.from_numpy(lab.astype(np.int64))[None]
            batch["seg"] = torch.from_numpy(gt_labels.astype(np.int64))[None]
        return outputs, batch

    def _fit(self, arr: np.ndarray, shape: tuple[int, ...], interp: int) -> np.ndarray:
        """Outputs come at the input size; ground truth of another size gets the prediction resized."""
        if arr.shape == shape:
            return arr
        self.resized += 1
        return cv2.resize(arr, (shape[1], shape[0]), interpolation=interp)

    def _keep(self, index: int, image_msg: Any, outputs: dict, batch: dict, per: dict[str, float]) -> None:
        badness = per["abs_rel"] if not math.isnan(per["abs_rel"]) else (
            100.0 - per["miou"] if not math.isnan(per["miou"]) else math.nan)
        want_sample = bool(self._targets) and index >= self._targets[0] and len(self.samples) < GRID_ROWS
        want_worst = not math.isnan(badness) and (len(self.worst) < GRID_ROWS or badness > self.worst[0][0])
        if not (want_sample or want_worst):
            return
        sample = {"image": rgb_from_msg(image_msg).astype(np.float32) / 255.0}
        if "depth" in outputs:
            sample["pred_depth"] = outputs["depth"][0, 0].numpy()
            sample["gt_depth"] = batch["depth"][0, 0].numpy()
        if "labels" in outputs:
            sample["pred_seg"] = outputs["labels"][0].numpy().astype(np.int32)
            sample["gt_seg"] = batch["seg"][0].numpy().astype(np.int32)
        sample = _thumb(sample)
        if want_sample:
            self.samples.append(sample)
            while self._targets and self._targets[0] <= index:
                self._targets.pop(0)
        if want_worst:
            item = (badness, index, sample)
            if len(self.worst) < GRID_ROWS:
                heapq.heappush(self.worst, item)
            else:
                heapq.heapreplace(self.worst, item)

    def worst_frames(self) -> list[tuple[float, int, dict[str, np.ndarray]]]:
        return sorted(self.worst, key=lambda x: -x[0])


# ---------------------------------------------------------------- results
def summarize(scorer: Scorer | None, timing: dict[str, Any]) -> dict[str, Any]:
    """report.json body: MetricSet results with meco eval's keys, then the replay's own."""
    if scorer is not None:
        out = scorer.metrics.compute()
    else:
        out = {"frames": 0, **{k: math.nan for k in (*DEPTH_KEYS, *MS_DEPTH_KEYS)}, "miou": math.nan,
               "iou_per_class": [], "confusion": []}
    out.update(timing)
    return out


def write_report(out_dir: str | Path, result: dict[str, Any], scorer: Scorer | None, run_info: dict[str, Any],
                 json_path: str | Path | None = None) -> dict[str, Path]:
    """report.json, report.md and the PNGs; returns what was written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    doc = {**result, "run": run_info}
    if scorer is not None:
        doc["per_frame"] = [{"index": f.index, "stamp_ns": f.stamp, "latency_ms": f.latency_ms, **f.metrics}
                            for f in scorer.frames]
    text = json.dumps(json_safe(doc), indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    for path in filter(None, (out / "report.json", Path(json_path) if json_path else None)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    written["json"] = out / "report.json"
    if scorer is not None and scorer.frames:
        written["over_time"] = plot_over_time(scorer, out / "metrics_over_time.png")
        if scorer.worst:
            written["worst"] = save_grid([s for _, _, s in scorer.worst_frames()], scorer.class_set,
                                         out / "worst_frames.png", scorer.max_depth)
        if scorer.samples:
            written["grid"] = save_grid(scorer.samples, scorer.class_set, out / "sample_grid.png", scorer.max_depth)
        if result.get("seg_pixels"):
            written["confusion"] = save_confusion(result["confusion"], scorer.class_set.names, out / "confusion.png")
    md = out / "report.md"
    md.write_text(markdown(result, scorer, run_info, {k: p.name for k, p in written.items()}))
    written["md"] = md
    return written


def plot_over_time(scorer: Scorer, path: Path) -> Path:
    """Per-frame AbsRel and d1 (metric, and median-scaled beside them when present), mIoU and latency
    against bag time."""
    plt = pyplot()

    frames = scorer.frames
    t0 = frames[0].stamp
    t = np.array([(f.stamp - t0) / 1e9 for f in frames])
    rows = [("abs_rel", "AbsRel (lower is better)"), ("d1", "delta < 1.25"), ("miou", "mIoU % (classes present)")]
    rows = [(k, label) for k, label in rows if not all(math.isnan(f.metrics[k]) for f in frames)]
    rows.append(("latency_ms", "latency send->receive (ms)"))
    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 1.9 * len(rows)), sharex=True, squeeze=False)
    for ax, (key, label) in zip(axes[:, 0], rows):
        y = [f.latency_ms if key == "latency_ms" else f.metrics[key] for f in frames]
        ax.plot(t, y, ".-", lw=0.8, ms=3, label="metric")
        ms = [f.metrics.get("ms_" + key, math.nan) for f in frames] if key in ("abs_rel", "d1") else []
        if ms and not all(math.isnan(v) for v in ms):
            ax.plot(t, ms, ".-", lw=0.8, ms=3, label="median-scaled per frame")
            ax.legend(fontsize=7, loc="best")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("bag time (s)")
    return save_figure(fig, path)


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def markdown(result: dict[str, Any], scorer: Scorer | None, run: dict[str, Any], files: dict[str, str]) -> str:
    """report.md: result tables first, then how the run was made and what went wrong."""
    r = result
    lines = [f"# Replay evaluation: {Path(run.get('bag', '?')).name}", ""]
    if run.get("untrained"):
        lines += ["> **UNTRAINED MODEL**: the node ran a random-weight model (test/dev mode); the metrics "
                  "below only show that the pipeline works.", ""]
    lines += ["## Depth", "", "| | RMSE | RMSE log | AbsRel | SqRel | δ<1.25 | δ<1.25² | δ<1.25³ |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |",
              "| metric | " + " | ".join(_fmt(r.get(k)) for k in DEPTH_KEYS) + " |"]
    ms_scale = r.get("ms_scale_median")
    if isinstance(ms_scale, float) and not math.isnan(ms_scale):
        lines += ["| median-scaled | " + " | ".join(_fmt(r.get("ms_" + k)) for k in DEPTH_KEYS) + " |", "",
                  f"Median-scaled: each frame's prediction times s = median(gt)/median(pred) over its valid "
                  f"pixels (median s over frames {ms_scale:.3f}; 1 = no metric scale error)."]
    lines += [""]
    names = scorer.class_set.names if scorer is not None else []
    ious = r.get("iou_per_class") or []
    lines += ["## Segmentation (IoU %)", "", "| " + " | ".join([*names, "mIoU"]) + " |",
              "| " + " | ".join(["---"] * (len(names) + 1)) + " |",
              "| " + " | ".join([*(_fmt(v, ".2f") for v in ious), _fmt(r.get("miou"), ".2f")]) + " |", ""]
    lat = r.get("latency_ms", {})
    lines += ["## Timing and frames", "", "| node FPS | latency p50 ms | p95 ms | p99 ms | frames sent | scored | "
              "dropped |", "| --- | --- | --- | --- | --- | --- | --- |",
              f"| {_fmt(r.get('fps'), '.2f')} | {_fmt(lat.get('p50'), '.1f')} | {_fmt(lat.get('p95'), '.1f')} | "
              f"{_fmt(lat.get('p99'), '.1f')} | {r.get('frames_sent', 0)} | {r.get('frames_scored', 0)} | "
              f"{r.get('frames_dropped', 0)} |", ""]
    node = r.get("node_stats") or {}
    if node:
        lines += ["Node's own stats over the replay: " + ", ".join(f"{k} {_fmt(v, '.1f') if isinstance(v, float) else v}"
                                                                   for k, v in node.items()), ""]
    lines += ["FPS: completed frames per second of node output (first to last receipt); latency: "
              "image published -> both depth and segmentation received, in this process.", ""]
    if files:
        lines += ["## Figures", ""]
        for key, title in (("over_time", "Metrics over time"), ("worst", "Worst frames"), ("grid", "Sample frames"),
                           ("confusion", "Confusion (rows: ground truth, % of each class's pixels)")):
            if key in files:
                lines += [f"### {title}", "", f"![{title}]({files[key]})", ""]
        if scorer is not None and scorer.worst:
            depth_seen = any(not math.isnan(f.metrics["abs_rel"]) for f in scorer.frames)
            lines += ["Worst frames (rows of worst_frames.png, top first; frame index on the camera topic): " + ", ".join(
                f"#{i} ({'AbsRel' if depth_seen else '100 - mIoU'} {b:.3f})" for b, i, _ in scorer.worst_frames()),
                ""]
    problems = r.get("problems") or []
    lines += ["## Problems", ""] + ([f"- {p}" for p in problems] or ["none"]) + [""]
    lines += ["## How it was run", ""] + [f"- **{k}**: `{v}`" for k, v in run.items()] + [""]
    return "\n".join(lines)


def table(result: dict[str, Any], class_names: Sequence[str] | None, title: str) -> str:
    """evaluate.format_table plus the replay's frame counts and latency percentiles."""
    r = dict(result)
    r["latency_ms_median"] = (result.get("latency_ms") or {}).get("p50", math.nan)
    lines = [format_table(r, class_names, title).replace("(batch 1, median latency", "(node output; median latency")]
    lat = result.get("latency_ms") or {}
    lines.append(f"frames sent {result.get('frames_sent', 0)}, scored {result.get('frames_scored', 0)}, dropped "
                 f"{result.get('frames_dropped', 0)}; latency send->receive p50/p95/p99 "
                 f"{_fmt(lat.get('p50'), '.1f')} / {_fmt(lat.get('p95'), '.1f')} / {_fmt(lat.get('p99'), '.1f')} ms")
    for p in result.get("problems") or []:
        lines.append(f"problem: {p}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)}
