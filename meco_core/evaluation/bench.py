"""Complexity benchmark: parameters, GFLOPs and CPU/GPU latency of models side by side.

Conventions (shared/design/meco.md): FLOPs counted by torch.utils.flop_counter on the
inference form at batch 1 (1 multiply-add = 2 FLOPs; VQ distance matmuls included);
latency at batch 1 after warm-up, all models in one process, interleaved round-robin
so that machine noise hits every model alike; medians and p90 of repeated runs. Each
timed call follows an untimed one of the same model: runtimes whose threads keep
spinning after a call (ONNX Runtime's default, OpenMP) would otherwise slow whichever
model comes next (measured: ORT spinning only inside a run timed 19.5 FPS right after a
spinning session, 33 FPS alone).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from meco_core.defaults import PRECISIONS


@dataclass
class BenchRow:
    model: str
    params_m: float
    gflops: float
    latency_ms: float
    latency_p90_ms: float
    fps: float
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d



def percentiles(values: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99 (NaN when empty) and the count: the latency summary every tool prints."""
    a = np.asarray(list(values), np.float64)
    if a.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "n": int(a.size)}


_AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}  # PRECISIONS below fp32


class Deployed(nn.Module):
    """A model as a deployment runs it: autocast precision, channels-last memory, optionally
    torch.compile'd. Timed by the benchmark; its inner model is what params/FLOPs count."""

    def __init__(self, model: nn.Module, precision: str = "fp32", channels_last: bool = False,
                 compile: bool = False) -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        self.model, self.precision, self.channels_last = model, precision, channels_last
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._run = torch.compile(self.model, dynamic=False) if compile else self.model

    def forward(self, image: torch.Tensor):
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        dtype = _AUTOCAST_DTYPES.get(self.precision)
        if dtype is None:
            return self._run(image)
        with torch.autocast(image.device.type, dtype=dtype):
            return self._run(image)


def count_params(model: nn.Module) -> int:
    """All parameters, frozen ones included (re-parameterised kernels are real storage)."""
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def count_flops(model: nn.Module, image: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter:
        model(image)
    return float(counter.get_total_flops())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def measure_latency(models: dict[str, nn.Module], image: torch.Tensor, warmup: int = 2, repeats: int = 10,
                    progress: bool = True) -> dict[str, list[float]]:
    """Per-model forward times in ms, interleaved; the model order rotates every round."""
    names = list(models)
    for _ in range(warmup):
        for name in names:
            models[name](image)
    times: dict[str, list[float]] = {n: [] for n in names}
    rounds: Iterable[int] = range(repeats)
    if progress:
        from tqdm import tqdm

        rounds = tqdm(rounds, desc="latency", unit="round", leave=False)
    for r in rounds:
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            models[name](image)  # settle: the previous model's threads stop spinning meanwhile
            _sync(image.device)
            start = time.perf_counter()
            models[name](image)
            _sync(image.device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def measure_throughput(model: nn.Module, image: torch.Tensor, streams: int, frames: int = 20) -> float:
    """Frames per second of `streams` threads calling one model at once, `frames` calls each.

    A runtime that releases the GIL (ONNX Runtime) runs the streams in parallel: on a few
    cores, two 1-thread streams can beat one 2-thread stream (no barrier per operator)."""
    import threading

    start = threading.Barrier(streams + 1)

    def loop() -> None:
        model(image)  # warm-up, then wait for the others
        start.wait()
        for _ in range(frames):
            model(image)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(streams)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    _sync(image.device)
    return streams * frames / (time.perf_counter() - t0)


def benchmark(models: dict[str, nn.Module], size: tuple[int, int], device: str = "cpu", warmup: int = 2,
              repeats: int = 10, extras: dict[str, dict] | None = None, progress: bool = True,
              twins: dict[str, nn.Module] | None = None) -> list[BenchRow]:
    """Benchmark models as built, in eval mode, on one input size.

    Models are not converted here: 'mlore' is MLoRE's training form and 'mlore_reparam'
    its re-parameterised inference form, and both belong in the table. `twins` gives the
    torch module whose parameters and FLOPs a row reports when the timed model is another
    runtime's copy of it (an ONNX Runtime session has no torch ops to count).
    """
    dev = torch.device(device)
    image = torch.rand(1, 3, *size, device=dev)
    prepared = {name: model.to(dev).eval() for name, model in models.items()}
    counted = {name: (twins or {}).get(name, model).to(dev).eval() for name, model in prepared.items()}
    flops = {n: count_flops(m, image) for n, m in counted.items()}
    times = measure_latency(prepared, image, warmup, repeats, progress)
    rows = []
    for name in prepared:
        median = statistics.median(times[name])
        rows.append(BenchRow(name, count_params(counted[name]) / 1e6, flops[name] / 1e9, median,
                             percentile(times[name], 90), 1e3 / median, (extras or {}).get(name, {})))
    return rows


def render_table(rows: list[BenchRow], ref: str | None, title: str) -> "rich.table.Table":  # noqa: F821
    from rich.markup import escape  # "[onnxruntime]" in a model name is text, not a rich style tag
    from rich.table import Table

    reference = next((r for r in rows if r.model == ref), None)
    # Model names carry the checkpoint and backend ("meco (runs/x.pt) [onnxruntime]"): never cut them,
    # or two rows of one checkpoint read alike. The reference is named once, in the caption.
    table = Table(title=title, caption=f"x ref: ratio to {escape(ref)}" if reference else None)
    table.add_column("model", justify="left", no_wrap=True, min_width=max(len(r.model) for r in rows) if rows else 5)
    for col in ("params M", "GFLOPs", "ms median", "ms p90", "FPS"):
        table.add_column(col, justify="right")
    if reference:
        for col in ("params x", "FLOPs x", "FPS x"):
            table.add_column(f"{col} ref" if len(ref) > 12 else f"{col} {escape(ref)}", justify="right")
    for r in rows:
        cells = [escape(r.model), f"{r.params_m:.2f}", f"{r.gflops:.2f}", f"{r.latency_ms:.1f}",
                 f"{r.latency_p90_ms:.1f}", f"{r.fps:.2f}"]
        if reference:
            cells += [f"{r.params_m / reference.params_m:.3f}", f"{r.gflops / reference.gflops:.3f}",
                      f"{r.fps / reference.fps:.3f}"]
        table.add_row(*cells)
    return table


def add_ratios(rows: list[BenchRow], ref: str | None) -> None:
    """Store ratios to the reference model in each row's extras (for the JSON)."""
    reference = next((r for r in rows if r.model == ref), None)
    if reference is None:
        return
    for r in rows:
        r.extra.update(ref=ref, params_ratio=r.params_m / reference.params_m,
                       gflops_ratio=r.gflops / reference.gflops, fps_ratio=r.fps / reference.fps)
