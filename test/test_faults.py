"""The fast fault-injection cases of the perception node (issue 20), one test each.

Each case starts the real `perception_node` (random-weight dev model) and provokes one
fault over real DDS; the slow ones (camera restarts x20, 50 lifecycle cycles) run in
`meco node-faults`. A failure message carries what the case measured.
"""
from __future__ import annotations


import pytest

from conftest import own_domain_id
from meco_ros.bench.faults import CASES, FaultContext
from meco_ros.bench.faults import control_cases, input_cases, stream_cases

NODE_CASE_MODULES = (stream_cases.__name__, control_cases.__name__, input_cases.__name__)
NODE_FAST = sorted(name for name, case in CASES.items() if case.fast and case.run.__module__ in NODE_CASE_MODULES)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", NODE_FAST)
def test_node_fault_case(name: str, tmp_path) -> None:
    ctx = FaultContext(checkpoint=None, work_dir=tmp_path, domain_id=own_domain_id())
    result = CASES[name](ctx)
    assert result.passed, f"{name}: expected: {result.expected}\nmeasured: {result.measured}"


def test_empty_parameter_name_is_rejected() -> None:
    """rclpy's undeclared-name check tests names for truth, so a set of '' used to declare a
    parameter named '' on the fly (found by the parameter storm): the node's check refuses it."""
    from rclpy.parameter import Parameter

    from meco_ros.node.params import validate

    result = validate([Parameter("", value=16)])
    assert not result.successful and "empty" in result.reason
