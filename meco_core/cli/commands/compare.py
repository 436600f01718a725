"""`meco compare --config C --models a,b,... --eval ROOT:SPLIT[:depth] ... --out DIR`.

Trains every model with the same budget (the config's data, schedule and steps; only
model.name differs; per-model config keys a model does not take are dropped), scores each
final checkpoint on every evaluation set, benchmarks the inference forms at --size, and
writes DIR/compare.json, DIR/compare.md (the README table) and DIR/compare.png. With
single_depth and single_segmentation in the list, a "single-task pair" row adds the two
(both tasks' accuracy, the sum of their costs), as the papers' single-task baseline.
Re-running resumes: finished runs are reused, an interrupted one continues from last.pt.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from meco_core.cli.commands.train import parse_overrides
from meco_core.errors import MecoError
from meco_core.sizes import parse_size


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("compare", help="train models on one budget, evaluate and benchmark them: one table",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="shared training config YAML (its model.config is the base)")
    p.add_argument("--models", default="meco,mlore,taskexpert,single_depth,single_segmentation",
                   help="comma-separated registry names (default: %(default)s)")
    p.add_argument("--eval", dest="evals", action="append", required=True, metavar="ROOT:SPLIT[:depth]",
                   help="evaluation set (repeatable); ':depth' ignores its labels")
    p.add_argument("--out", required=True, help="directory for the runs and the results")
    p.add_argument("--size", type=parse_size, default=(360, 480), help="benchmark input HxW (default 360x480)")
    p.add_argument("--steps", type=int, default=None, help="override optim.steps for every model")
    p.add_argument("--seeds", default=None,
                   help="comma-separated run.seed values: every model trained once per seed, reported as "
                        "mean ± half range (default: the config's seed, one run each)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted config key for every model (repeatable)")
    p.add_argument("--max-frames", type=int, default=None, help="evenly spaced subset of each evaluation set")
    p.add_argument("--repeats", type=int, default=10, help="latency repeats per model")
    p.add_argument("--ref", default="meco", help="reference model for ratios (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from meco_core.models.checkpoint import CheckpointError
    from meco_core.experiments.compare import (EvalSpec, add_single_task_pair, aggregate_seeds, complexity,
                                               markdown_table, model_for_cost, plot, train_and_score)
    from meco_core.data.format import DatasetFormatError
    from meco_core.evaluation.evaluate import json_safe
    from meco_core.models import list_models
    from meco_core.train.config import ConfigError

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [n for n in names if n not in list_models()]
    if unknown or not names:
        raise MecoError(f"unknown models {unknown}; available: {', '.join(list_models())}")
    try:
        specs = [EvalSpec.parse(e) for e in args.evals]
    except ValueError as exc:
        raise MecoError(str(exc)) from exc
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()] if args.seeds else [None]
    except ValueError:
        raise MecoError(f"--seeds takes integers like 1,2; got {args.seeds!r}") from None
    out = Path(args.out)
    overrides = parse_overrides(argparse.Namespace(overrides=args.overrides, steps=args.steps, out=None))
    progress = not args.no_progress
    try:
        # Seed-major: every model's first seed before any second seed, so a comparison cut
        # short still holds one complete row per model.
        per_seed: dict[str, dict] = {n: {} for n in names}
        for seed in seeds:
            for name in names:
                per_seed[name][seed] = train_and_score(args.config, name, out, overrides, specs, seed,
                                                       args.max_frames, progress)
        results = {n: aggregate_seeds(by_seed) for n, by_seed in per_seed.items()}
        models = {n: model_for_cost(args.config, n, overrides) for n in names}
    except (ConfigError, CheckpointError, FileNotFoundError, DatasetFormatError, ValueError, RuntimeError) as exc:
        raise MecoError(str(exc)) from exc
    rows = complexity(models, args.size, args.repeats, progress)
    for name in rows:
        rows[name].update(results[name])
    add_single_task_pair(rows)
    seg_set = next((s.label for s in specs if not s.depth_only), None)
    depth_set = next((s.label for s in specs if s.depth_only), None) or seg_set
    table = markdown_table(rows, seg_set, depth_set, args.ref)
    h, w = args.size
    print(f"\nsame-budget comparison ({args.config}, cost at {h}x{w}, batch 1, CPU):\n{table}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(table + "\n")
    (out / "compare.json").write_text(json.dumps(json_safe(
        {"config": str(args.config), "size": [h, w], "eval": [s.label for s in specs],
         "seeds": [s for s in seeds if s is not None], "rows": rows}), indent=2))
    print(f"plot: {plot(rows, seg_set, depth_set, out / 'compare.png')}")
    return 0
