"""Per-frame scores beside the set's: which frames a model fails on.

A set's AbsRel and mIoU say how much is wrong, not where: one winter drive or one wrongly
calibrated camera hides in a mean. `MetricSet(per_frame=True)` keeps one row per frame (its
depth errors, median-scaled AbsRel, d1 and scale, its mIoU over the classes it holds, mIoU and
pixel accuracy); `meco eval` prints the worst few and writes them all to JSON and CSV, and the
replay evaluator plots them over bag time, so a user can open the frames that fail.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence

from meco_core.models.metrics import DEPTH_METRICS, DepthMetrics, SegmentationMetrics

SCORES = (*DEPTH_METRICS, "ms_abs_rel", "ms_d1", "ms_scale", "miou_gt", "miou", "pixel_acc")
COLUMNS = ("name", *SCORES)
# key -> (what the printed line calls it, True when a higher value is worse)
RANKED = {"abs_rel": ("AbsRel", True), "miou_gt": ("mIoU over its classes", False)}


def score_frame(name: str | None, depth: DepthMetrics | None, seg: SegmentationMetrics | None) -> dict[str, Any]:
    """One frame's row from the metrics that counted it alone (None: the frame has no such ground
    truth), by the set metrics' own conventions; NaN for what it lacks."""
    row: dict[str, Any] = {k: math.nan for k in COLUMNS}
    row["name"] = name
    if depth is not None:
        r = depth.compute()
        row.update({k: r[k] for k in DEPTH_METRICS}, ms_abs_rel=r["ms_abs_rel"], ms_d1=r["ms_d1"],
                   ms_scale=r["ms_scale_median"])
    if seg is not None:
        r = seg.compute()
        row.update(miou_gt=r["miou_gt"], miou=r["miou"], pixel_acc=r["pixel_acc"])
    return row


def _scored(rows: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [r for r in rows if isinstance(r.get(key), float) and not math.isnan(r[key])]


def worst_frames(rows: Sequence[dict[str, Any]], key: str, n: int = 3) -> list[dict[str, Any]]:
    """The n frames scoring worst on `key` (frames without it left out)."""
    return sorted(_scored(rows, key), key=lambda r: r[key], reverse=RANKED[key][1])[:n]


def worst_lines(rows: Sequence[dict[str, Any]], n: int = 3) -> list[str]:
    """'worst frames by AbsRel: 000012 0.52, 000007 0.48, ...' for each ranked score the set has,
    when it holds more frames than are listed (with n or fewer the list says nothing new)."""
    lines = []
    for key, (label, _) in RANKED.items():
        scored = _scored(rows, key)
        if len(scored) > n:
            worst = worst_frames(scored, key, n)
            fmt = "{:.3f}" if key == "abs_rel" else "{:.1f}"
            lines.append(f"worst frames by {label}: " + ", ".join(f"{r['name']} {fmt.format(r[key])}" for r in worst))
    return lines


def save_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Every frame's row, NaN as an empty cell."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _cell(r.get(k)) for k in COLUMNS})
    return path


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, 4)
    return value
