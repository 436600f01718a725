"""Same-budget comparison: train several registered models from one config, score them on
the same evaluation sets, benchmark them at one size, and put it all in one table.

This is how the README's results table (the papers' two tables at our scale) is made:
every model gets the same data, augmentation, optimiser, schedule and number of steps;
only `model.name` differs, and each model keeps just the config keys it accepts (MECO's
codebook sizes mean nothing to a single-task model). Runs live in `<out>/<model>/` and a
killed comparison resumes: finished runs are reused, a half-finished one continues.
Each finished run's scores are cached in `<run>/scores.json` (small: commit it), so a
comparison that spans machines or sessions resumes from the scores alone; the cost
columns need no trained weights (they are measured on the config's architecture).

The final weights (`last.pt`) are scored, not `best.pt`: picking the best validation step
and then reporting that validation set would flatter whichever model is noisiest.
With several seeds (`<out>/<model>/seed<k>/`), each metric is reported as the mean over
seeds with its spread (half the min-max range): a 1-point gap inside the spread is noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from meco_core.evaluation.bench import benchmark
from meco_core.models.checkpoint import build_from_checkpoint, load_checkpoint
from meco_core.evaluation.evaluate import class_set_of, evaluate, load_eval_dataset
from meco_core.models import build_model, model_config_keys
from meco_core.evaluation.plotting import pyplot, save_figure
from meco_core.train.config import load_config

SINGLE_PAIR = ("single_depth", "single_segmentation")
PAIR_LABEL = "single-task pair"


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation set: `ROOT:SPLIT` or `ROOT:SPLIT:depth` (labels ignored, depth only)."""
    root: str
    split: str
    depth_only: bool = False

    @classmethod
    def parse(cls, text: str) -> "EvalSpec":
        parts = text.rsplit(":", 2) if text.count(":") >= 2 else text.rsplit(":", 1)
        if len(parts) < 2 or not all(parts):
            raise ValueError(f"eval set must look like ROOT:SPLIT or ROOT:SPLIT:depth, got {text!r}")
        if len(parts) == 3 and parts[2] != "depth":
            raise ValueError(f"eval set {text!r}: the only option after the split is 'depth'")
        return cls(parts[0], parts[1], len(parts) == 3)

    @property
    def label(self) -> str:
        return f"{Path(self.root).name}/{self.split}" + (" depth" if self.depth_only else "")


def config_for(base_model_config: dict[str, Any], name: str) -> tuple[dict[str, Any], list[str]]:
    """The base model config restricted to the keys `name` accepts, and the keys dropped."""
    valid = model_config_keys(name)
    kept = {k: v for k, v in base_model_config.items() if k in valid and k != "tasks"}
    return kept, sorted(set(base_model_config) - set(kept))


def run_dir(out_root: str | Path, name: str, seed: int | None = None) -> Path:
    """Where one run lives: `<out>/<model>` (config's seed) or `<out>/<model>/seed<k>`."""
    return Path(out_root) / name if seed is None else Path(out_root) / name / f"seed{seed}"


def train_model(config_path: str | Path, name: str, out_root: str | Path, overrides: dict[str, Any],
                progress: bool = True, log=print, seed: int | None = None) -> Path:
    """Train (or finish, or reuse) `name` under the shared config; returns its final checkpoint.

    Each run is its own `meco train` process: a second training in one process forks
    data-loader workers from a parent whose OpenMP pool is already running, which can
    hang them, and a fresh process also returns every run's memory.
    """
    import json
    import subprocess
    import sys

    base = load_config(config_path, overrides)
    model_config, dropped = config_for(base.model.config, name)
    out_dir = run_dir(out_root, name, seed)
    run_overrides = {**overrides, "model.name": name, "model.config": model_config, "run.out_dir": str(out_dir)}
    if seed is not None:
        run_overrides["run.seed"] = seed
    last = out_dir / "last.pt"
    done_step = int(load_checkpoint(last).get("step", 0)) if last.is_file() else 0
    label = name if seed is None else f"{name} seed {seed}"
    if done_step >= base.optim.steps:
        log(f"{label}: reusing {last} (step {done_step})")
        return last
    if dropped:
        log(f"{label}: config keys it does not take, dropped: {', '.join(dropped)}")
    cmd = [sys.executable, "-m", "meco_core.cli", "train", "--config", str(config_path)]
    for key, value in run_overrides.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]  # JSON is YAML, which --set parses
    cmd += ["--resume"] if last.is_file() else []
    cmd += [] if progress else ["--no-progress"]
    if subprocess.run(cmd).returncode != 0:
        raise RuntimeError(f"training {name} failed (command: {' '.join(cmd)})")
    return last


def score_model(checkpoint: str | Path, specs: Sequence[EvalSpec], max_frames: int | None = None,
                progress: bool = True) -> dict[str, dict[str, Any]]:
    """Metrics of one checkpoint on every evaluation set, keyed by the set's label."""
    model, ckpt = build_from_checkpoint(checkpoint)
    model.prepare_for_inference()
    out = {}
    for spec in specs:
        dataset, class_set = load_eval_dataset(spec.root, spec.split, class_set_of(ckpt), model.num_classes,
                                               model.max_depth, depth_only=spec.depth_only)
        out[spec.label] = evaluate(model, dataset, "cpu", max_frames=max_frames, class_set=class_set,
                                   progress=progress).metrics
    return out


def scores_path(out_root: str | Path, name: str, seed: int | None = None) -> Path:
    return run_dir(out_root, name, seed) / "scores.json"


def cached_scores(out_root: str | Path, name: str, seed: int | None, steps: int,
                  specs: Sequence[EvalSpec]) -> dict[str, dict[str, Any]] | None:
    """A finished run's cached scores when they cover `steps` and every evaluation set, else None."""
    import json

    path = scores_path(out_root, name, seed)
    if not path.is_file():
        return None
    cached = json.loads(path.read_text())
    sets = cached.get("sets", {})
    if cached.get("step") != steps or any(s.label not in sets for s in specs):
        return None
    return {s.label: sets[s.label] for s in specs}


def train_and_score(config_path: str | Path, name: str, out_root: str | Path, overrides: dict[str, Any],
                    specs: Sequence[EvalSpec], seed: int | None = None, max_frames: int | None = None,
                    progress: bool = True, log=print) -> dict[str, dict[str, Any]]:
    """One run's scores: from its cache, or trained (resumed) and scored now, then cached."""
    import json

    from meco_core.evaluation.evaluate import json_safe

    cfg = load_config(config_path, overrides)
    steps = cfg.optim.steps
    scores = cached_scores(out_root, name, seed, steps, specs)
    label = name if seed is None else f"{name} seed {seed}"
    if scores is not None:
        log(f"{label}: scores cached in {scores_path(out_root, name, seed)}")
        return scores
    checkpoint = train_model(config_path, name, out_root, overrides, progress, log, seed)
    if cfg.run.threads:  # scoring shares the machine like its training did (two queues side by side)
        torch.set_num_threads(cfg.run.threads)
    scores = score_model(checkpoint, specs, max_frames, progress)
    path = scores_path(out_root, name, seed)
    path.write_text(json.dumps(json_safe({"model": name, "seed": seed, "step": steps, "config": str(config_path),
                                          "sets": scores}), indent=2) + "\n")
    log(f"{label}: scores written to {path}")
    return scores


def _mean(values: list[Any]) -> Any:
    """Mean of numbers (NaN/None left out; None if nothing is left), element-wise for lists."""
    if values and all(isinstance(v, (list, tuple)) for v in values):
        return [_mean(list(col)) for col in zip(*values)]
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not math.isnan(float(v))]
    return sum(numbers) / len(numbers) if numbers else None


def _half_range(values: list[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not math.isnan(float(v))]
    return (max(numbers) - min(numbers)) / 2 if len(numbers) > 1 else None


def aggregate_seeds(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """{seed: {set label: metrics}} -> {"metrics": means, "spread": half ranges, "seeds": per_seed}."""
    labels = next(iter(per_seed.values())).keys()
    metrics, spread = {}, {}
    for label in labels:
        runs = [per_seed[s][label] for s in per_seed]
        keys = runs[0].keys()
        metrics[label] = {k: _mean([r.get(k) for r in runs]) for k in keys}
        spread[label] = {k: _half_range([r.get(k) for r in runs]) for k in keys
                         if not isinstance(runs[0].get(k), (list, tuple))}
    return {"metrics": metrics, "spread": spread, "seeds": per_seed}


def complexity(models: dict[str, torch.nn.Module], size: tuple[int, int], repeats: int = 10,
               progress: bool = True) -> dict[str, dict[str, float]]:
    """Params, GFLOPs and batch-1 latency of each model's inference form, interleaved."""
    models = {name: m.eval().prepare_for_inference() for name, m in models.items()}
    rows = benchmark(models, size, "cpu", warmup=2, repeats=repeats, progress=progress)
    return {r.model: {"params_m": r.params_m, "gflops": r.gflops, "latency_ms": r.latency_ms, "fps": r.fps}
            for r in rows}


def model_for_cost(config_path: str | Path, name: str, overrides: dict[str, Any]) -> torch.nn.Module:
    """`name` built from the shared config, untrained: cost does not depend on the weights."""
    model_config, _ = config_for(load_config(config_path, overrides).model.config, name)
    return build_model(name, **model_config)


def add_single_task_pair(rows: dict[str, dict[str, Any]]) -> None:
    """The papers' single-task baseline: one depth model + one segmentation model, run both.

    Its accuracy is each model on its own task; its cost is the sum of the two.
    """
    if not all(n in rows for n in SINGLE_PAIR):
        return
    depth, seg = (rows[n] for n in SINGLE_PAIR)
    latency = depth["latency_ms"] + seg["latency_ms"]
    pair = {"params_m": depth["params_m"] + seg["params_m"], "gflops": depth["gflops"] + seg["gflops"],
            "latency_ms": latency, "fps": 1e3 / latency, "metrics": {}, "spread": {}}
    seg_keys = ("miou", "iou_per_class", "pixel_acc")
    for part in ("metrics", "spread"):
        for label in depth.get(part, {}):
            d, s = depth[part][label], seg[part][label]
            pair[part][label] = {**{k: v for k, v in d.items() if k not in seg_keys},
                                 **{k: s[k] for k in seg_keys if k in s}}
    rows[PAIR_LABEL] = pair


def _fmt(value: Any, spec: str, spread: Any = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec) + (f" ± {format(spread, spec)}" if spread is not None else "")


def markdown_table(rows: dict[str, dict[str, Any]], seg_set: str | None, depth_set: str | None,
                   ref: str = "meco") -> str:
    """README table: accuracy on each set (mean ± half range over seeds), then cost, ratios to `ref`."""
    header = ["model"]
    if seg_set:
        header += [f"mIoU % ({seg_set})"]
    if depth_set:
        header += [f"AbsRel ({depth_set})", "RMSE m", "d1"]
    header += ["params M", "GFLOPs", "FPS", f"GFLOPs x {ref}", f"FPS x {ref}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    reference = rows.get(ref)
    for name, r in rows.items():
        cells = [name]
        if seg_set:
            cells.append(_fmt(r["metrics"].get(seg_set, {}).get("miou"), ".1f",
                              r.get("spread", {}).get(seg_set, {}).get("miou")))
        if depth_set:
            m, sp = r["metrics"].get(depth_set, {}), r.get("spread", {}).get(depth_set, {})
            cells += [_fmt(m.get(k), f, sp.get(k)) for k, f in (("abs_rel", ".4f"), ("rmse", ".2f"), ("d1", ".3f"))]
        cells += [f"{r['params_m']:.2f}", f"{r['gflops']:.2f}", f"{r['fps']:.2f}"]
        cells += ([f"{r['gflops'] / reference['gflops']:.2f}", f"{r['fps'] / reference['fps']:.2f}"]
                  if reference else ["-", "-"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: dict[str, dict[str, Any]], seg_set: str | None, depth_set: str | None, path: str | Path) -> Path:
    """Accuracy against GFLOPs, one panel per task: where each model sits on the cost curve."""
    plt = pyplot()

    panels = [(s, k, t) for s, k, t in ((seg_set, "miou", "mIoU % (higher is better)"),
                                        (depth_set, "abs_rel", "AbsRel (lower is better)")) if s]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (label, key, title) in zip(axes[0], panels):
        for name, r in rows.items():
            value = r["metrics"].get(label, {}).get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            ax.scatter(r["gflops"], value, s=60)
            ax.annotate(name, (r["gflops"], value), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xlabel("GFLOPs (inference form, batch 1)")
        ax.set_title(f"{label}: {title}", fontsize=10)
        ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=120)
