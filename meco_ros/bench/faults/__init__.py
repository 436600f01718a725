"""Fault injection for the perception node and the replay evaluator (issue 20).

Each case is a function registered with `@fault_case` in a module of this package; it
provokes one fault against real processes over real DDS and returns what it measured.
`meco node-faults` runs every case (or a chosen few) and writes a report (JSON + Markdown
table: case, expected, measured, pass); `test/test_faults.py` runs the fast ones.
"""
from .base import CASES, FaultContext, FaultResult, fault_case  # noqa: F401
