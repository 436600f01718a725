"""Counters, per-window timings, rate-limited warnings and the /diagnostics status.

Written from two threads (executor callbacks count received/invalid/dropped frames, the
inference thread records timings), read by the stats timer: one lock, tiny critical
sections. Counters are totals since start (robust to a lost stats message); rates and
latencies are over the last window (one stats period).
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

STAGES = ("convert", "inference", "postprocess", "publish")


class RateLimitedLog:
    """At most one message per key every `period` s, reporting how many were suppressed.

    rclpy's throttle_duration_sec throttles per call site; here each kind of bad input
    (encoding, step, size, ...) gets its own budget, so one noisy fault cannot hide another.
    """

    def __init__(self, emit: Callable[[str], None], period: float = 5.0) -> None:
        self.emit, self.period = emit, period
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, key: str, message: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -1e18) < self.period:
                self._suppressed[key] += 1
                return False
            self._last[key] = now
            skipped = self._suppressed.pop(key, 0)
        self.emit(message + (f" ({skipped} similar suppressed)" if skipped else ""))
        return True


@dataclass
class Window:
    processed: int = 0
    received: int = 0
    latency_ms: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})


class PipelineStats:
    """Frame counters and timing samples of the node (see module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = self.processed = self.dropped = self.stale = self.invalid = 0
        self.skipped = self.errors = self.nonfinite = self.oom = 0
        self.invalid_by_case: Counter[str] = Counter()
        self._window = Window()
        self._window_start = time.monotonic()
        self.last_input = 0.0

    def count(self, name: str, n: int = 1, case: str | None = None) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)
            if name == "received":
                self._window.received += n
                self.last_input = time.monotonic()
            if case:
                self.invalid_by_case[case] += n

    def record(self, latency_ms: float, stages: dict[str, float]) -> None:
        with self._lock:
            self.processed += 1
            self._window.processed += 1
            self._window.latency_ms.append(latency_ms)
            for k in STAGES:
                self._window.stages[k].append(stages.get(k, 0.0))

    def roll(self) -> dict:
        """Close the window: totals plus the window's fps, input rate, latency and stage means."""
        now = time.monotonic()
        with self._lock:
            w, self._window = self._window, Window()
            span = max(now - self._window_start, 1e-6)
            self._window_start = now
            totals = dict(received=self.received, processed=self.processed, dropped=self.dropped + self.stale,
                          stale=self.stale, invalid=self.invalid, skipped=self.skipped, errors=self.errors,
                          nonfinite=self.nonfinite, oom=self.oom, invalid_by_case=dict(self.invalid_by_case),
                          since_input=now - self.last_input if self.last_input else float("inf"))
        lat = np.asarray(w.latency_ms) if w.latency_ms else None
        return {**totals, "fps": w.processed / span, "input_rate": w.received / span,
                "latency_ms": float(lat.mean()) if lat is not None else 0.0,
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat is not None else 0.0,
                "stages_ms": {k: float(np.mean(v)) if v else 0.0 for k, v in w.stages.items()}}


def diagnostic_status(name: str, hardware_id: str, window: dict, ready: bool, untrained: bool,
                      max_latency_ms: float, min_fps: float, extra: dict[str, str]) -> DiagnosticStatus:
    """One DiagnosticStatus: rate and latency against thresholds, plus the counters."""
    level, problems = DiagnosticStatus.OK, []
    if not ready:
        level, problems = DiagnosticStatus.WARN, ["warming up"]
    elif window["since_input"] > 5.0:
        level, problems = DiagnosticStatus.STALE, ["no input images"]
    else:
        if window["input_rate"] > 0 and window["fps"] < min_fps and window["skipped"] == 0:
            problems.append(f"output rate {window['fps']:.1f} Hz < {min_fps:g}")
        if window["latency_p95_ms"] > max_latency_ms:
            problems.append(f"latency p95 {window['latency_p95_ms']:.0f} ms > {max_latency_ms:g}")
        if untrained:
            problems.append("UNTRAINED model (random weights)")
        if problems:
            level = DiagnosticStatus.WARN
    values = {"fps": f"{window['fps']:.2f}", "input rate": f"{window['input_rate']:.2f}",
              "latency mean ms": f"{window['latency_ms']:.1f}", "latency p95 ms": f"{window['latency_p95_ms']:.1f}",
              **{f"{k} ms": f"{v:.1f}" for k, v in window["stages_ms"].items()},
              **{f"frames {k}": str(window[k]) for k in ("received", "processed", "dropped", "stale", "invalid",
                                                         "skipped", "errors", "nonfinite", "oom")},
              **{f"invalid {k}": str(v) for k, v in sorted(window["invalid_by_case"].items())}, **extra}
    return DiagnosticStatus(level=level, name=name, hardware_id=hardware_id,
                            message="; ".join(problems) or "ok",
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])
