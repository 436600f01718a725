"""Fast fault cases of the replay evaluator and of model / dataset files (issue 20).

Each test runs one registered case of meco_ros.bench.faults.replay_cases / file_cases against the
real programs (`meco replay-eval`, `meco eval`, `perception_node`, `meco data synth`,
`meco export`) and fails with what the case measured. `meco node-faults` runs the same cases.
"""
from __future__ import annotations

import os
import random

import pytest

from meco_ros.bench.faults import CASES, FaultContext
from meco_ros.bench.faults import file_cases, replay_cases

pytestmark = pytest.mark.timeout(300)

MODULES = (replay_cases.__name__, file_cases.__name__)
FAST = sorted(name for name, case in CASES.items() if case.fast and case.run.__module__ in MODULES)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> FaultContext:
    """One scratch directory for the module (the drive and dataset are made once), a domain of its own."""
    domain = int(os.environ.get("ROS_DOMAIN_ID") or random.randint(1, 100))
    return FaultContext(checkpoint=None, work_dir=tmp_path_factory.mktemp("faults"), domain_id=domain)


@pytest.mark.parametrize("name", FAST)
def test_fault_case(name: str, ctx: FaultContext) -> None:
    result = CASES[name](ctx)
    assert result.passed, f"{name}: expected {result.expected}; measured {result.measured} ({result.seconds:.1f} s)"
