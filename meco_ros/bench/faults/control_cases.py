"""Fault cases on the node's control interfaces (issue 20): a storm of /set_parameters calls
with random names, types and values, and configure/activate/deactivate/cleanup cycles over
~/change_state. The node, the client and the parameter service calls come from node_harness.
"""
from __future__ import annotations

import math
import random
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from meco_ros.bench.faults.base import FaultContext, fault_case
from meco_ros.bench.faults.node_harness import (PTYPE_FIELDS, Client, NodeUnderTest, check_log, client_for, image_msg,
                                                outputs_since, running_node, set_one, streaming, summary, wait_until,
                                                watch_depth_and_status)


# ================================================================ 4. parameter storm
PARAM_SETS = 1000
PARAM_STORM_S = 10.0
PARAM_SEED = 20


def ptype_of(default: Any) -> int:
    """The ParameterType a declared default has (what the node's static typing requires)."""
    if isinstance(default, bool):
        return 1
    if isinstance(default, int):
        return 2
    if isinstance(default, float):
        return 3
    if isinstance(default, str):
        return 4
    return 9 if default and isinstance(default[0], str) else 7


@dataclass(frozen=True)
class ParamRule:
    """What a declared parameter accepts, written down independently of the node's checks."""

    ptype: int
    runtime: bool
    valid: Callable[[Any], bool] = lambda v: True
    pool: tuple[Any, ...] = ()  # plausible values (valid and invalid) to draw from


def param_rules() -> dict[str, ParamRule]:
    """Every declared parameter: type, run-time or not, the documented allowed values."""
    from meco_core.classes import GOLF
    from meco_core.inference import PRECISIONS, UPSAMPLE_MODES
    from meco_core.visualize import COLORMAPS

    from meco_ros.node.params import SPECS

    def in_range(lo: float, hi: float) -> Callable[[Any], bool]:
        return lambda v: math.isfinite(v) and lo <= v <= hi

    def one_of(options: tuple[str, ...]) -> Callable[[Any], bool]:
        return lambda v: v in options

    def size_ok(v: Any) -> bool:
        return len(v) == 2 and (list(v) == [0, 0] or all(16 <= x <= 8192 for x in v))

    def palette_ok(v: Any) -> bool:
        return 0 < len(v) and len(v) % 3 == 0 and len(v) >= 3 * GOLF.num_classes and all(0 <= x <= 255 for x in v)

    special: dict[str, tuple[Callable[[Any], bool], tuple[Any, ...]]] = {
        "precision": (one_of(PRECISIONS), ("fp32", "bf16", "int4", "FP32", "")),
        "upsample": (one_of(UPSAMPLE_MODES), ("bilinear", "nearest", "cubic")),
        "output_resolution": (one_of(("input", "inference")), ("input", "inference", "native")),
        "depth_colormap": (one_of(tuple(COLORMAPS)), (*COLORMAPS[:3], "rainbow", "")),
        "inference_size": (size_ok, ([96, 128], [64, 96], [128, 160], [15, 128], [96], [-1, 128], [96, 128, 3],
                                     [9000, 96])),
        "palette": (palette_ok, ([c for _ in range(5) for c in (10, 200, 30)], [1, 2], [0] * 15 + [256], [],
                                 [255, 255, 255] * 8)),
        "cloud.obstacle_classes": (lambda v: True, (["obstacle"], [], ["hazard", "no_such_class"])),
    }
    rules: dict[str, ParamRule] = {}
    for name, spec in {**SPECS, "palette": None}.items():
        default = [0, 0, 0] if spec is None else spec.default
        runtime = True if spec is None else spec.runtime
        if runtime and spec is not None and spec.check is not None and name not in special:
            raise RuntimeError(f"parameter_storm has no rule for run-time parameter {name!r}'s check: add it to "
                               "control_cases.param_rules")
        valid, pool = special.get(name, (lambda v: True, ()))
        if spec is not None and spec.range is not None:
            valid = in_range(*spec.range)
            lo, hi = spec.range
            pool = tuple(type(default)(x) for x in (lo, hi, (lo + hi) / 2 if isinstance(default, float) else lo + 1,
                                                    lo - 1, hi + 1)) + ((float("nan"),) if isinstance(default, float)
                                                                        else ())
        rules[name] = ParamRule(ptype_of(default), runtime, valid, pool)
    return rules


# values the node can live with while frames keep flowing (threads etc. stay small)
SAFE_POOLS: dict[str, tuple[Any, ...]] = {
    "threads": (0, 1, 2, -1, 257), "min_image_size": (1, 16, 64, 0, 10001), "max_frame_age": (0.0, 1.0, 5.0, -1.0),
    "cloud.stride": (1, 2, 4, 0, 65), "max_depth": (0.0, 20.0, 80.0, -5.0, float("nan"), float("inf")),
}


def random_name(rng: random.Random) -> str:
    """A name an operator might mistype: garbage, a near miss, empty, unicode, a deep path."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._/~- ü"
    kind = rng.randrange(5)
    if kind == 0:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
    if kind == 1:
        return rng.choice(["outputs.", "cloud.", "qos.input.", "topics.", "diagnostics."]) + \
            "".join(rng.choice(alphabet[:26]) for _ in range(rng.randrange(1, 10)))
    if kind == 2:
        return rng.choice(["", " ", ".", "/", "..", "precision ", "Precision", "inference_size/0", "palette.r"])
    if kind == 3:
        return "x" * rng.randrange(200, 2000)
    return rng.choice(["thread", "precisions", "max-depth", "outputs.depth.color", "cloud_stride"])


def random_value(rng: random.Random, ptype: int) -> Any:
    """A random value of a ParameterType (edge values included: NaN, inf, huge ints, unicode)."""
    ints = (0, 1, -1, 2, 7, 16, 255, 256, 10**6, 2**63 - 1, -2**63)
    floats = (0.0, 0.5, 1.0, -1.0, 2.5, 1e9, float("nan"), float("inf"), -float("inf"), 1e-300)
    strings = ("", "fp16", "bilinear", "input", "turbo", "ü" * 5, "x" * 5000, "a\tb", "{}", "[1, 2]")
    scalar: dict[int, Callable[[], Any]] = {
        1: lambda: rng.random() < 0.5, 2: lambda: rng.choice(ints), 3: lambda: rng.choice(floats),
        4: lambda: rng.choice(strings), 5: lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(8)))}
    if ptype in scalar:
        return scalar[ptype]()
    base = {6: 1, 7: 2, 8: 3, 9: 4}[ptype]
    return [scalar[base]() for _ in range(rng.randrange(0, 7))]


def draw_param(rng: random.Random, rules: dict[str, ParamRule]) -> tuple[str, int, Any]:
    """(name, type, value): a mix of unknown names, read-only ones, wrong types, and run-time
    parameters with plausible values (valid and invalid)."""
    runtime = sorted(n for n, r in rules.items() if r.runtime)
    roll = rng.random()
    if roll < 0.15:
        return random_name(rng), rng.randrange(0, 10), None
    if roll < 0.25:
        name = rng.choice(sorted(n for n, r in rules.items() if not r.runtime))
        return name, rng.choice([rules[name].ptype, rng.randrange(0, 10)]), None
    name = rng.choice(runtime)
    rule = rules[name]
    if roll < 0.35:
        return name, rng.choice([t for t in range(0, 10) if t != rule.ptype]), None
    pool = SAFE_POOLS.get(name) or rule.pool
    if pool and rng.random() < 0.8:
        return name, rule.ptype, rng.choice(pool)
    return name, rule.ptype, None


def expected_valid(rules: dict[str, ParamRule], name: str, ptype: int, value: Any) -> bool:
    """Whether the node must accept the set (declared, run-time, its type, an allowed value)."""
    rule = rules.get(name)
    if rule is None or not rule.runtime or ptype != rule.ptype:
        return False
    try:
        return bool(rule.valid(value))
    except (TypeError, ValueError):
        return False


def same_value(a: Any, b: Any) -> bool:
    """Read-back equality (lists from arrays, floats exact)."""
    if isinstance(a, (list, tuple)) or hasattr(a, "tolist"):
        return list(a) == list(b)
    return a == b


def fixed_by_backend(rules: dict[str, ParamRule], client: Client, target: NodeUnderTest,
                     initial: dict[str, Any]) -> dict[str, ParamRule]:
    """An ONNX backend (onnxruntime, tensorrt) fixes precision and inference_size at start: then
    only the running values are valid (inference_size: the size /diagnostics reports, or [0, 0]
    = the export's own)."""
    import json
    from dataclasses import replace

    # the backend the node runs (its 'ready' line), not the parameter: the random-weight dev
    # model runs on torch whatever the params file asks for
    running = re.search(r"ready: model .*?\(backend (\w+)", target.proc.output)
    if running is None or running.group(1) == "torch":
        return rules
    size = json.loads(client.latest_diagnostics().get("inference size", "null") or "null")
    sizes = [[0, 0], *([list(size)] if size else [])]
    precision = initial.get("precision")
    return {**rules,
            "inference_size": replace(rules["inference_size"], valid=lambda v: list(v) in sizes),
            "precision": replace(rules["precision"], valid=lambda v: v == precision)}


@dataclass
class StormTally:
    """What the storm saw."""

    sets: int = 0
    expected_valid: int = 0
    accepted: int = 0
    rejected: int = 0
    read_back_ok: int = 0
    no_reason: int = 0
    timeouts: int = 0
    mismatches: list[str] = field(default_factory=list)


def get_values(client: Client, target: NodeUnderTest, names: list[str]) -> list[Any] | None:
    """Current values (python) of `names` over /get_parameters."""
    from rcl_interfaces.srv import GetParameters

    res = client.call(GetParameters, target.fqn("get_parameters"), GetParameters.Request(names=names), timeout=5.0)
    if res is None:
        return None
    return [getattr(v, PTYPE_FIELDS[v.type]) if v.type else None for v in res.values]


def list_names(client: Client, target: NodeUnderTest) -> list[str]:
    """Every parameter name the node has (/list_parameters): a rejected set must not add one."""
    from rcl_interfaces.srv import ListParameters

    res = client.call(ListParameters, target.fqn("list_parameters"), ListParameters.Request(), timeout=5.0)
    return list(res.result.names) if res is not None else []


def storm(client: Client, target: NodeUnderTest, rules: dict[str, ParamRule], rng: random.Random) -> StormTally:
    """PARAM_SETS sets paced over PARAM_STORM_S s; each valid one read back at once."""
    tally = StormTally()
    t0 = time.monotonic()
    for i in range(PARAM_SETS):
        wait = t0 + i * PARAM_STORM_S / PARAM_SETS - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        name, ptype, value = draw_param(rng, rules)
        if value is None and ptype:
            value = random_value(rng, ptype)
        want = expected_valid(rules, name, ptype, value)
        tally.sets += 1
        tally.expected_valid += want
        result = set_one(client, target, name, ptype, value)
        if result is None:
            tally.timeouts += 1
            if not target.alive():  # the node died: say so now, not after the rest of the storm times out
                tally.mismatches.append(f"node died after setting {name[:40]!r}={str(value)[:40]} (type {ptype})")
                break
            continue
        tally.accepted += result.successful
        tally.rejected += not result.successful
        if not result.successful and not result.reason.strip():
            tally.no_reason += 1
        if result.successful != want:
            tally.mismatches.append(f"{name[:40]!r}={str(value)[:40]} (type {ptype}): expected "
                                    f"{'accept' if want else 'reject'}, got "
                                    f"{'accepted' if result.successful else 'rejected: ' + result.reason[:80]}")
        elif want:
            back = get_values(client, target, [name])
            if back is not None and same_value(back[0], value if ptype != 5 else list(value)):
                tally.read_back_ok += 1
            else:
                tally.mismatches.append(f"{name}: set {str(value)[:40]}, read back {str(back)[:40]}")
    return tally


def restore(client: Client, target: NodeUnderTest, rules: dict[str, ParamRule], initial: dict[str, Any]) -> bool:
    """Set every run-time parameter back to its value before the storm."""
    ok = True
    for name, value in initial.items():
        res = set_one(client, target, name, rules[name].ptype, value)
        ok &= res is not None and res.successful
    return ok


@fault_case("parameter_storm",
            f"{PARAM_SETS} /set_parameters calls in {PARAM_STORM_S:g} s with random names, types and values: every "
            "invalid one rejected with a reason, every valid run-time one accepted and read back, outputs "
            "continue (and after restoring), same PID, no restart", fast=True)
def parameter_storm(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    rules = param_rules()
    runtime = sorted(n for n, r in rules.items() if r.runtime)
    with running_node(ctx, "params") as target, \
            client_for(target, "fault_param_client", watch_depth_and_status) as client:
        pid = target.pid
        with streaming(client, 10.0, image_msg(240, 320)) as cam:
            wait_until(lambda: bool(client.received("depth")) and client.latest_stats() is not None, 20.0)
            values = get_values(client, target, runtime) or []
            initial = dict(zip(runtime, values))
            rules = fixed_by_backend(rules, client, target, initial)
            names_before = list_names(client, target)
            start, sent_before, stats_before = time.time_ns(), len(cam.sent), client.latest_stats()
            t0 = time.monotonic()
            tally = storm(client, target, rules, random.Random(PARAM_SEED))
            storm_s = time.monotonic() - t0
            during = len(outputs_since(client, "depth", start))
            sent, stats_after = len(cam.sent) - sent_before, client.latest_stats()
            new_names = sorted(set(list_names(client, target)) - set(names_before))
            restored = len(initial) == len(runtime) and restore(client, target, rules, initial)
            after_ns = time.time_ns()
            resumed = wait_until(lambda: len(outputs_since(client, "depth", after_ns)) >= 3, 10.0)
        same_pid = target.alive() and target.pid == pid and target.proc.output.count("ready: model") == 1
        traceback = check_log(target)
    received = stats_after.frames_received - stats_before.frames_received
    processed = stats_after.frames_processed - stats_before.frames_processed
    problems = []
    if tally.mismatches:
        problems.append(f"{len(tally.mismatches)} wrong answers, e.g. {tally.mismatches[0]}")
    if tally.no_reason:
        problems.append(f"{tally.no_reason} rejections without a reason")
    if tally.timeouts:
        problems.append(f"{tally.timeouts} sets unanswered")
    if not during or not resumed:
        problems.append(f"outputs: {during} during the storm, {'resumed' if resumed else 'NOT resumed'} after")
    if not restored:
        problems.append("restoring the initial values failed")
    if new_names:
        problems.append(f"parameters that appeared: {[n[:40] for n in new_names][:5]}")
    if not same_pid:
        problems.append("node died or restarted")
    if traceback:
        problems.append(traceback)
    measured = (f"{tally.sets} sets in {storm_s:.1f} s: {tally.expected_valid} valid -> {tally.accepted} accepted "
                f"({tally.read_back_ok} read back equal), {tally.rejected} rejected ({tally.no_reason} without a "
                f"reason), {tally.timeouts} unanswered, {len(new_names)} new parameter names; frames during: {sent} sent, "
                f"{received} received, {processed} processed, {during} depth outputs; resumed after restore: "
                f"{resumed}; same PID {pid}: {same_pid}")
    if problems:
        measured += " | PROBLEMS: " + "; ".join(problems)
    return not problems, measured, {"tally": asdict(tally), "seconds": storm_s, "seed": PARAM_SEED}


# ================================================================ 5. lifecycle cycles
LIFECYCLE_CYCLES = 50
RSS_TOLERANCE = 0.05


def transition(client: Client, target: NodeUnderTest, transition_id: int) -> bool:
    """One ~/change_state call (a configure builds and warms up the model: long timeout)."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    res = client.call(ChangeState, target.fqn("change_state"),
                      ChangeState.Request(transition=Transition(id=transition_id)), timeout=120.0)
    return bool(res is not None and res.success)


def one_cycle(client: Client, target: NodeUnderTest) -> dict[str, Any]:
    """configure, activate, a depth output, deactivate, cleanup; then /proc figures."""
    from lifecycle_msgs.msg import Transition

    t0 = time.monotonic()
    row: dict[str, Any] = {}
    for label, tid in (("configure", Transition.TRANSITION_CONFIGURE), ("activate", Transition.TRANSITION_ACTIVATE)):
        if not transition(client, target, tid):
            return {"error": f"{label} failed"}
    since = time.time_ns()
    row["output"] = wait_until(lambda: bool(outputs_since(client, "depth", since)), 15.0)
    for label, tid in (("deactivate", Transition.TRANSITION_DEACTIVATE), ("cleanup", Transition.TRANSITION_CLEANUP)):
        if not transition(client, target, tid):
            return {"error": f"{label} failed"}
    time.sleep(0.3)  # let stopped threads exit before counting them
    row.update(target.resources(), seconds=time.monotonic() - t0)
    return row


@fault_case("lifecycle_cycles",
            f"{LIFECYCLE_CYCLES} configure/activate/deactivate/cleanup cycles over ~/change_state (autostart false): "
            f"outputs in every active phase; after cycle {LIFECYCLE_CYCLES} (unconfigured) RSS within "
            f"{RSS_TOLERANCE:.0%} of cycle 1, threads and open fds equal to cycle 1", fast=False)
def lifecycle_cycles(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    from sensor_msgs.msg import Image

    with running_node(ctx, "lifecycle", ready_text="waiting for lifecycle transitions", autostart=False) as target, \
            client_for(target, "fault_lifecycle_manager", lambda c: c.watch("depth", Image)) as client:
        with streaming(client, 10.0, image_msg(120, 160)):
            rows = [one_cycle(client, target) for _ in range(LIFECYCLE_CYCLES)]
        alive, traceback = target.alive(), check_log(target)
    errors = [r["error"] for r in rows if "error" in r]
    good = [r for r in rows if "error" not in r]
    problems = [f"{len(errors)} cycles failed: {errors[0]}"] if errors else []
    if len(good) < 2:
        return False, "; ".join(problems) or "no complete cycle", {"cycles": rows}
    first, last = good[0], good[-1]
    rss_change = last["rss_kb"] / first["rss_kb"] - 1
    no_output = sum(1 for r in good if not r["output"])
    if no_output:
        problems.append(f"{no_output} active phases without a depth output")
    if abs(rss_change) > RSS_TOLERANCE:
        problems.append(f"RSS {rss_change:+.1%}")
    for key in ("threads", "fds"):
        if last[key] != first[key]:
            problems.append(f"{key} {first[key]} -> {last[key]}")
    if not alive or traceback:
        problems.append(traceback or "node died")
    measured = (f"{len(good)}/{LIFECYCLE_CYCLES} cycles; cycle 1 -> {len(good)}: RSS {first['rss_kb'] / 1024:.0f} -> "
                f"{last['rss_kb'] / 1024:.0f} MB ({rss_change:+.1%}), threads {first['threads']} -> {last['threads']}, "
                f"fds {first['fds']} -> {last['fds']}; RSS max {max(r['rss_kb'] for r in good) / 1024:.0f} MB; "
                f"outputs in {len(good) - no_output} active phases; {summary([r['seconds'] for r in good])} per cycle")
    if problems:
        measured += " | PROBLEMS: " + "; ".join(problems)
    return not problems, measured, {"cycles": rows}
