"""`meco`: one command-line tool with subcommands (bench, data, train, eval, replay-eval, export, ...).

Each subcommand is a module with `register(subparsers)` (which sets `handler=run`) and
`run(args) -> int`; heavy imports (torch, timm, rclpy) happen inside `run` so that
`meco --help` stays instant. The model library's commands live in `meco_core.cli.commands`;
commands of other packages (meco_ros: replay-eval, node-bench) join through the
`meco.commands` entry-point group, so nothing here imports them by name. A `MecoError`
raised by any command is printed as one line and the command exits 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

from meco_core.errors import MecoError

# Module names under meco_core.cli.commands, in the order they appear in `meco --help`.
COMMAND_MODULES = ("bench", "data", "train", "evaluate", "compare", "export")
PLUGIN_GROUP = "meco.commands"


def build_parser(plugins: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meco", description="MECO perception: models, data, training, evaluation")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"meco_core.cli.commands.{name}").register(subparsers)
    if plugins:
        for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
            try:
                entry.load().register(subparsers)
            except ImportError as exc:  # e.g. meco_ros installed without ROS: its commands are absent
                print(f"meco: commands of {entry.value} unavailable ({exc})", file=sys.stderr)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except MecoError as exc:
        print(f"meco {args.command}: {exc}", file=sys.stderr)
        return 2

