"""The runner behind `meco node-faults`: loads the case modules, runs the chosen cases, prints
the table and writes faults.json + faults.md (case | expected | measured | pass)."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CASE_MODULES = ("meco_ros.bench.faults.stream_cases", "meco_ros.bench.faults.control_cases",
                "meco_ros.bench.faults.input_cases", "meco_ros.bench.faults.replay_cases",
                "meco_ros.bench.faults.file_cases")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None,
                   help="model the node runs (default: checkpoints/meco_golf.pt when present, else the dev model)")
    p.add_argument("--dev", action="store_true", help="the random-weight test/dev model (fast; same pipeline)")
    p.add_argument("--dev-model-config", default="", help="model_config of the dev model ('' = the project default)")
    p.add_argument("--cases", default="", help="comma-separated case names (default: all); see --list")
    p.add_argument("--list", action="store_true", help="list the cases (name, fast, expected) and exit")
    p.add_argument("--out", default=None, help="directory for faults.json and faults.md")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID of the cases (default: random)")
    p.add_argument("--verbose", action="store_true", help="echo the processes' output")


def load_cases() -> dict[str, Any]:
    """Import every case module that exists (each registers its cases); a module that is
    missing is skipped, any other import error is raised (a broken module must show)."""
    from meco_ros.bench.faults.base import CASES

    for module in CASE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return CASES


def select(cases: dict[str, Any], names: str) -> list[Any]:
    """The cases named (in the order given), or all; an unknown name is an error."""
    if not names.strip():
        return list(cases.values())
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in cases]
    if unknown:
        from meco_core.errors import MecoError

        raise MecoError(f"unknown fault case(s) {', '.join(unknown)}; known: {', '.join(cases)}")
    return [cases[n] for n in wanted]


def print_list(cases: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape  # measured text quotes errors and topics: "[...]" is text, not a style
    from rich.table import Table

    table = Table(title="fault cases")
    for col in ("case", "fast", "module", "expected"):
        table.add_column(col, overflow="fold")
    for case in cases.values():
        table.add_row(case.name, "yes" if case.fast else "", case.run.__module__.rsplit(".", 1)[-1], escape(case.expected))
    Console().print(table)


def print_results(results: list[Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="fault injection")
    for col in ("case", "expected", "measured", "pass", "s"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(r.case, escape(r.expected), escape(r.measured), "[green]pass[/]" if r.passed else "[red]FAIL[/]",
                      f"{r.seconds:.0f}")
    Console().print(table)


def md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report(out: Path, results: list[Any], meta: dict[str, Any]) -> None:
    """faults.json (every field, details included) and faults.md (the table)."""
    from dataclasses import asdict

    out.mkdir(parents=True, exist_ok=True)
    (out / "faults.json").write_text(json.dumps({**meta, "results": [asdict(r) for r in results]}, indent=2,
                                                default=str))
    lines = [f"# Fault injection ({meta['model']})", "",
             f"{sum(r.passed for r in results)}/{len(results)} passed; {meta['cpus']} CPUs; {meta['date']}", "",
             "| case | expected | measured | pass | s |", "|---|---|---|---|---|"]
    lines += [f"| {r.case} | {md_cell(r.expected)} | {md_cell(r.measured)} | {'pass' if r.passed else 'FAIL'} | "
              f"{r.seconds:.0f} |" for r in results]
    (out / "faults.md").write_text("\n".join(lines) + "\n")


def main_from_args(args: argparse.Namespace) -> int:
    cases = load_cases()
    if args.list:
        print_list(cases)
        return 0
    chosen = select(cases, args.cases)
    from meco_ros.bench.faults.base import FaultContext
    from meco_ros.bench.faults.node_harness import ensure_ros_env
    from meco_ros.proc import node_checkpoint

    ensure_ros_env()  # this process's clients talk DDS too: the profile before the first participant
    checkpoint = node_checkpoint(args.checkpoint, args.dev)
    work = Path(tempfile.mkdtemp(prefix="meco_faults_")) if args.out is None else Path(args.out) / "work"
    work.mkdir(parents=True, exist_ok=True)
    ctx = FaultContext(checkpoint=str(checkpoint) if checkpoint else None, work_dir=work,
                       domain_id=args.domain_id if args.domain_id is not None else random.randint(1, 200),
                       verbose=args.verbose, dev_model_config=args.dev_model_config)
    model = str(checkpoint) if checkpoint else "random-weight dev model"
    print(f"fault cases: {len(chosen)} with {model} (ROS_DOMAIN_ID {ctx.domain_id})", file=sys.stderr)
    results = []
    for case in chosen:
        print(f"  {case.name} ...", file=sys.stderr, flush=True)
        results.append(case(ctx))
        r = results[-1]
        print(f"  {case.name}: {'pass' if r.passed else 'FAIL'} in {r.seconds:.0f} s", file=sys.stderr, flush=True)
    print_results(results)
    if args.out:
        meta = {"model": model, "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"),
                "domain_id": ctx.domain_id}
        write_report(Path(args.out), results, meta)
        print(f"report: {Path(args.out) / 'faults.md'}, {Path(args.out) / 'faults.json'}", file=sys.stderr)
    return 0 if all(r.passed for r in results) else 1
