"""The contract every fault case follows, and the registry `meco node-faults` reads.

Why a registry: the report runner, the tests and the README table all list the same cases
from one place; a case module only has to be imported to take part.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class FaultContext:
    """What a case may use: the model to run, a scratch directory, a ROS domain of its own."""

    checkpoint: str | None  # None: the random-weight test/dev model (fast; the pipeline is the same)
    work_dir: Path
    domain_id: int
    verbose: bool = False
    dev_model_config: str = ""  # model_config of the dev model ('' = meco_core.defaults.DEV_MODEL_CONFIG)


@dataclass
class FaultResult:
    """One row of the report: what was provoked, what is expected, what was measured."""

    case: str
    expected: str
    measured: str
    passed: bool
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FaultCase:
    name: str
    expected: str
    fast: bool  # cheap enough for `make test` (test/test_faults.py)
    run: Callable[[FaultContext], tuple[bool, str, dict[str, Any]]]

    def __call__(self, ctx: FaultContext) -> FaultResult:
        t0 = time.monotonic()
        try:
            passed, measured, details = self.run(ctx)
        except Exception as exc:  # noqa: BLE001 - a crashing case is a failed case, reported as such
            passed, measured, details = False, f"case raised {type(exc).__name__}: {exc}", {}
        return FaultResult(self.name, self.expected, measured, bool(passed), time.monotonic() - t0, details)


CASES: dict[str, FaultCase] = {}


def fault_case(name: str, expected: str, fast: bool = False):
    """Register `fn(ctx) -> (passed, measured text, details)` as the case `name`."""

    def register(fn: Callable[[FaultContext], tuple[bool, str, dict[str, Any]]]):
        if name in CASES:
            raise ValueError(f"fault case {name!r} registered twice")
        CASES[name] = FaultCase(name, expected, fast, fn)
        return fn

    return register
