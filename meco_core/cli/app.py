"""`meco`: one command-line tool with subcommands (bench, data, train, eval, replay-eval, export, ...).

Each subcommand is a module with `register(subparsers)` (which sets `handler=run`) and
`run(args) -> int`; heavy imports (torch, timm, rclpy) happen inside `run` so that
`meco --help` stays instant. The model library's commands live in `meco_core.cli.commands`;
commands of other packages (meco_ros: replay-eval, node-bench) join through the
`meco.commands` entry-point group, so nothing here imports them by name. A `MecoError`
raised by any command is printed as one line and the command exits 2, and so is a path the
user gave that is missing, of the wrong kind or not theirs (FileNotFoundError, PermissionError,
...): the message names the path, a traceback would only hide it.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path

from meco_core.errors import MecoError

# Module names under meco_core.cli.commands, in the order they appear in `meco --help`.
COMMAND_MODULES = ("bench", "data", "train", "evaluate", "predict", "compare", "export")
PLUGIN_GROUP = "meco.commands"
# OSErrors that mean "the path you gave": reported like a MecoError (other OSErrors keep their traceback).
USER_PATH_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def describe_error(exc: BaseException) -> str:
    """One line for the user. mkdir(exist_ok=True) under an output path whose folder is a file
    raises a bare "[Errno 17] File exists": say which file is in the way."""
    if isinstance(exc, FileExistsError) and exc.filename and Path(exc.filename).is_file():
        return f"{exc.filename} is a file, where a folder is needed"
    return str(exc)


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
    except (MecoError, *USER_PATH_ERRORS) as exc:
        print(f"meco {args.command}: {describe_error(exc)}", file=sys.stderr)
        return 2

