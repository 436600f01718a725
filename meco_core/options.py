"""Command-line options generated from a dataclass: one definition for a tool's settings.

Why: a tool's options used to be written three times (argparse, a config dataclass, a
field-by-field copy between them) and drifted. Here the dataclass is the definition: each
field's `opt(...)` carries its help text (and, where needed, a parser, choices or a
mutually exclusive group), `add_options` generates the argparse arguments and `from_args`
builds the dataclass back from the parsed namespace. Library code and tests build the
dataclass directly; only the command line goes through argparse.

    @dataclass
    class Settings:
        bag: str = opt(help="the bag", required=True)
        rate: float | None = opt(None, help="Hz", type=float, group="mode")
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Callable, TypeVar

T = TypeVar("T")
_MISSING = dataclasses.MISSING


def opt(default: Any = _MISSING, *, help: str, type: Callable[[str], Any] | None = None,  # noqa: A002
        choices: tuple | list | None = None, group: str | None = None, required: bool = False,
        flag: str | None = None, cli: bool = True, metavar: str | None = None) -> Any:
    """A dataclass field that is also a command-line option.

    Args:
        default: the field's default (omit for a required field: `required=True` then).
        help: the option's help text (also the field's documentation).
        type: parser of the option's text (default: from the annotation: int, float, str).
        choices: allowed values.
        group: options sharing a group name are mutually exclusive.
        required: the option must be given.
        flag: the option's name (default: --field-name).
        cli: False keeps the field off the command line (set by the tool itself).
        metavar: the value's name in the usage text.
    """
    meta = dict(help=help, type=type, choices=choices, group=group, required=required, flag=flag, cli=cli,
                metavar=metavar)
    if default is _MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _base_type(annotation: Any) -> Any:
    """int for `int | None`, and so on; None where the annotation is not one plain type."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args:
        return args[0] if len(args) == 1 else None
    return annotation


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one argument per command-line field of the dataclass `cls` to `parser`."""
    hints = typing.get_type_hints(cls)
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not meta or not meta.get("cli", True):
            continue
        target = parser
        if meta.get("group"):
            if meta["group"] not in groups:  # (not setdefault: every call would add a group to the parser)
                groups[meta["group"]] = parser.add_mutually_exclusive_group()
            target = groups[meta["group"]]
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        default = f.default if f.default is not _MISSING else None
        kind = _base_type(hints[f.name])
        kwargs: dict[str, Any] = {"dest": f.name, "help": meta["help"]}
        if kind is bool:
            kwargs.update(action="store_true", default=bool(default))
        else:
            parse = meta.get("type") or (kind if kind in (int, float, str) else None)
            kwargs.update(default=default, required=meta.get("required", False))
            if parse is not None:
                kwargs["type"] = parse
            if meta.get("choices") is not None:
                kwargs["choices"] = meta["choices"]
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
        target.add_argument(flag, **kwargs)


def from_args(cls: type[T], args: argparse.Namespace, **extra: Any) -> T:
    """The dataclass `cls` from parsed arguments (fields absent from `args` keep their
    defaults), with `extra` fields set by the tool itself."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    values.update(extra)
    return cls(**values)
