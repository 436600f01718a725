"""Run logs: CSV files (one row per logged step) and TensorBoard, both resume-safe.

On resume, rows written after the checkpoint being resumed from (by the run that was
killed) are dropped, so the CSV reads as one uninterrupted run; TensorBoard gets the same
effect from `purge_step`.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence


class CsvLog:
    """Append-only CSV with a fixed header; unknown keys are an error, missing ones blank."""

    def __init__(self, path: str | Path, columns: Sequence[str], resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keep: list[dict[str, str]] = []
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames == self.columns:
                    keep = [r for r in reader if r.get("step") and int(r["step"]) <= resume_step]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(keep)

    def write(self, row: dict[str, Any]) -> None:
        extra = set(row) - set(self.columns)
        if extra:
            raise KeyError(f"{self.path.name}: no column for {sorted(extra)}")
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow({k: _fmt(v) for k, v in row.items()})


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return v


class TensorBoard:
    """SummaryWriter that tolerates a missing tensorboard install (logs stay in the CSVs)."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - tensorboard is in requirements
            self.writer = None
            return
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def scalars(self, prefix: str, values: dict[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
