"""`meco` subcommands that need ROS (replay-eval, node-bench, node-soak, node-faults). They
reach the `meco` CLI through the `meco.commands` entry-point group (setup.py), so the model
library's CLI never imports meco_ros: the layers point one way."""
from __future__ import annotations

import argparse
import importlib
from typing import Callable


def delegate(name: str, help: str, doc: str | None, module: str  # noqa: A002
             ) -> tuple[Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]:
    """`register` and `run` of a subcommand whose options and logic live in `module`
    (`add_arguments(parser)`, `main_from_args(args) -> int`): the command module stays one
    line, and `module` is imported only when the parser is built or the command runs."""

    def register(subparsers: argparse._SubParsersAction) -> None:
        p = subparsers.add_parser(name, help=help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(handler=run)

    def run(args: argparse.Namespace) -> int:
        return importlib.import_module(module).main_from_args(args)

    return register, run
