"""`meco node-faults`: the fault-injection suite of issue 20 as a report.

Runs the registered fault cases (meco_ros.bench.faults: the perception node's own cases, plus the
replay-evaluator and file cases where those modules exist) against real processes over
real DDS, each with what is expected and what was measured; prints a table, writes
faults.json and faults.md (case | expected | measured | pass) to --out, and exits 1 if
any case failed. The model: --checkpoint, else the shipped checkpoints/meco_golf.pt when
present, else (or with --dev) the random-weight test/dev model.
"""
from __future__ import annotations

from . import delegate

register, run = delegate("node-faults", "fault-injection suite: node, replay evaluator, files (report)", __doc__,
                         "meco_ros.bench.faults.runner")
