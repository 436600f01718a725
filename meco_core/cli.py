"""`meco`: one command-line tool with subcommands (bench, data, train, eval, replay-eval, export, ...).

Each subcommand lives in its own module under `meco_core.commands` and exposes
`register(subparsers)`; heavy imports (torch, timm, rclpy) happen inside the handler so
that `meco --help` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Module names under meco_core.commands, in the order they appear in `meco --help`.
COMMAND_MODULES = ("bench", "data", "train", "evaluate", "compare", "replay_eval", "node_bench", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meco", description="MECO perception: models, data, training, evaluation")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"meco_core.commands.{name}")
        except ModuleNotFoundError as exc:  # a subcommand not written yet
            if exc.name != f"meco_core.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
