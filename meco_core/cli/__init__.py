"""The `meco` command line: `main` dispatches to one module per command (`commands/`, plus
ROS commands registered through the `meco.commands` entry-point group)."""
from __future__ import annotations

from .app import main

__all__ = ["main"]
