"""`meco train --config C [--resume] [--steps N] [--out DIR]`: train a model from a YAML config.

Multi-process (data parallel): `torchrun --nproc_per_node N -m meco_core.cli train --config C`.
`--steps` and `--out` override optim.steps and run.out_dir; `--set key=value` overrides any
dotted config key (value parsed as YAML, e.g. --set data.batch_size=4).
"""
from __future__ import annotations

import argparse
import json
from meco_core.errors import MecoError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a model from a YAML config (see config/train/)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="training config YAML")
    p.add_argument("--resume", action="store_true", help="continue the run in the output dir from its last.pt")
    p.add_argument("--steps", type=int, default=None, help="override optim.steps")
    p.add_argument("--out", default=None, help="override run.out_dir")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted config key, e.g. --set optim.lr=1e-3 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    p.add_argument("--json", default=None, help="write the run summary (step, s/step, last val metrics) here")
    p.set_defaults(handler=run)


def parse_overrides(args: argparse.Namespace) -> dict:
    import yaml

    out: dict = {}
    for item in args.overrides:
        if "=" not in item:
            raise MecoError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    if args.steps is not None:
        out["optim.steps"] = args.steps
    if args.out is not None:
        out["run.out_dir"] = args.out
    return out


def run(args: argparse.Namespace) -> int:
    from meco_core.models.checkpoint import CheckpointError
    from meco_core.train.config import ConfigError, load_config

    try:
        cfg = load_config(args.config, parse_overrides(args))
    except ConfigError as exc:
        raise MecoError(str(exc)) from exc
    from meco_core.data.format import DatasetFormatError
    from meco_core.train.trainer import TrainingAborted, train

    try:
        summary = train(cfg, resume=args.resume, progress=not args.no_progress)
    except (CheckpointError, FileNotFoundError, DatasetFormatError, TrainingAborted) as exc:
        raise MecoError(str(exc)) from exc
    if args.json and summary.get("rank", 0) == 0:  # under torchrun every rank returns a summary
        from pathlib import Path

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        from meco_core.evaluation.evaluate import json_safe

        Path(args.json).write_text(json.dumps(json_safe(summary), indent=2, default=str))
    return 130 if summary.get("interrupted") else 0  # 130: stopped by Ctrl-C (saved, resumable)
