"""The one error of a replay evaluation: `ReplayAbort`.

Why a module of its own: the evaluator catches it, and the node start (node_process) and the
class-set checks (gt_classes) raise it; defined in any of those, the others would import it
back in a cycle.
"""
from __future__ import annotations


class ReplayAbort(RuntimeError):
    """The replay cannot go on; the message says why (the report is still written)."""
