"""Subcommands of the `meco` CLI: one module each, each with `register(subparsers)`.

A module's `register` adds its parser and sets `handler=<function(args) -> int>`.
"""
