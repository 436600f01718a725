"""How a replay evaluation speaks to its user: progress lines on stderr (`say`) and the one
error that ends it (`ReplayAbort`).

Why a module of its own: the evaluator catches the error, and the node start (node_process)
and the class-set checks (gt_classes) raise it; defined in any of those, the others would
import it back in a cycle. `say` lives beside it so every replay module prints one way.
"""
from __future__ import annotations

import sys
from typing import Any


class ReplayAbort(RuntimeError):
    """The replay cannot go on; the message says why (the report is still written)."""


def say(*parts: Any) -> None:
    """A progress line on stderr, flushed at once (stdout may be a report pipe)."""
    print(*parts, file=sys.stderr, flush=True)
