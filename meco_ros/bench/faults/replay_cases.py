"""Fault cases of the replay evaluator (issue 20): its node killed mid-replay, itself interrupted.

Everything is the real thing: a tiny drive written by `meco data synth` + `meco data make-bag`,
`meco replay-eval` run as a subprocess (it starts its own `perception_node`), signals sent
from outside. The node is found by its command line (replay-eval starts it in the namespace
`/meco_replay_<evaluator pid>`), so "no process left behind" is checked against /proc, not
against what the evaluator says.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from meco_ros.proc import Process, ros_env

from .base import FaultContext, fault_case

DRIVE_FRAMES = 60  # closed loop at ~10-15 FPS: a few seconds of replay to interrupt
DRIVE_SIZE = "96x128"
NOTICE_S = 10.0  # the evaluator must notice its node's death within this
TOPICS = ("--image-topic", "/camera/image_raw", "--seg-gt-topic", "/camera/segmentation",
          "--depth-gt-topic", "/camera/depth")


# ---------------------------------------------------------------- programs and data
def meco_command() -> list[str]:
    """The installed `meco` console script next to this Python (what a user runs)."""
    exe = Path(sys.executable).parent / "meco"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("meco")
    return [found] if found else [sys.executable, "-c", "import sys; from meco_core.cli import main; "
                                                        "sys.exit(main())"]


def run_meco(args: Sequence[str], timeout: float = 300, env: dict[str, str] | None = None,
             preexec_fn: Any = None) -> subprocess.CompletedProcess:
    """`meco ARGS` to completion, stdout+stderr together (a case reads what the user would see)."""
    return subprocess.run([*meco_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, env=env, preexec_fn=preexec_fn)


def make_dataset(root: Path, n: int, size: str = DRIVE_SIZE, seed: int = 1, split: str = "test") -> Path:
    """A synthetic dataset written by `meco data synth` (kept: later cases reuse it)."""
    if not (root / "dataset.yaml").is_file():
        r = run_meco(["data", "synth", "--out", str(root), "--n", str(n), "--size", size, "--seed", str(seed),
                      "--split", split])
        if r.returncode != 0:
            raise RuntimeError(f"meco data synth failed ({r.returncode}): {r.stdout[-2000:]}")
    return root


def make_drive(ctx: FaultContext, n: int = DRIVE_FRAMES) -> Path:
    """A rosbag2 drive (image, camera_info, depth and label ground truth) written by `meco data make-bag`."""
    bag = ctx.work_dir / f"drive_{n}" / "bag"
    if not (bag / "metadata.yaml").is_file():
        data = make_dataset(ctx.work_dir / f"drive_{n}" / "data", n)
        r = run_meco(["data", "make-bag", "--data", str(data), "--split", "test", "--out", str(bag), "--rate", "10",
                      "--overwrite"])
        if r.returncode != 0:
            raise RuntimeError(f"meco data make-bag failed ({r.returncode}): {r.stdout[-2000:]}")
    return bag


def model_args(ctx: FaultContext) -> list[str]:
    """The model replay-eval's node runs: ctx.checkpoint, else the random-weight dev model."""
    if ctx.checkpoint:
        return ["--checkpoint", str(ctx.checkpoint)]
    return ["--dev", *(["--dev-model-config", ctx.dev_model_config] if ctx.dev_model_config else [])]


# ---------------------------------------------------------------- processes, from /proc
def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def pids_with(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        st = _stat(int(entry.name))
        if marker in cmdline and st is not None and st[0] != "Z":
            found.append(int(entry.name))
    return found


def node_marker(evaluator_pid: int) -> str:
    """What only the node of this evaluator has on its command line (replay_eval's namespace)."""
    return f"__ns:=/meco_replay_{evaluator_pid}"


def wait_for_node(evaluator: Process, timeout: float = 30.0) -> int | None:
    """The pid of the perception_node the evaluator started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and evaluator.alive():
        pids = pids_with(node_marker(evaluator.popen.pid))
        if pids:
            return pids[0]
        time.sleep(0.1)
    return None


def wait_new_line(proc: Process, start: int, words: Sequence[str], timeout: float) -> str | None:
    """The first line printed after line `start` that contains all `words` (None: timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = proc.lines[start:]
        hit = next((ln for ln in lines if all(w in ln for w in words)), None)
        if hit is not None or time.monotonic() > deadline:
            return hit
        if not proc.alive() and not proc._reader.is_alive():
            return next((ln for ln in proc.lines[start:] if all(w in ln for w in words)), None)
        time.sleep(0.05)


def wait_exit(proc: Process, timeout: float) -> int | None:
    """Exit code once `proc` ends (None: still running after `timeout`, then killed)."""
    try:
        return proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.stop(signal.SIGKILL, 5)
        return None


# ---------------------------------------------------------------- the evaluator mid-replay
def start_replay(ctx: FaultContext, out: Path) -> tuple[Process, int | None, str]:
    """`meco replay-eval` of the drive with its own node, stopped once frames are flowing:
    (evaluator, node pid, problem or '')."""
    bag = make_drive(ctx)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [*meco_command(), "replay-eval", "--bag", str(bag), *TOPICS, *model_args(ctx), "--threads", "1",
           "--out", str(out)]
    ev = Process(cmd, env=ros_env(ctx.domain_id, OMP_NUM_THREADS="1"), echo=ctx.verbose)
    if not ev.wait_for("replay-eval: replaying", 240):
        ev.stop(signal.SIGKILL, 5)
        return ev, None, f"replay never started: {ev.output[-1500:]}"
    node = wait_for_node(ev, 5)
    time.sleep(1.5)  # a few frames scored, most still to come
    if not ev.alive():
        return ev, node, f"the replay ended before the fault could be injected: {ev.output[-800:]}"
    return ev, node, ""


def read_report(out: Path) -> dict[str, Any] | None:
    path = out / "report.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _left_behind(ev: Process, node: int | None) -> list[int]:
    """Processes of this replay still running: the node by pid and by its command line."""
    time.sleep(0.5)
    pids = set(pids_with(node_marker(ev.popen.pid)))
    if node is not None and (st := _stat(node)) is not None and st[0] != "Z":
        pids.add(node)
    return sorted(pids)


def _outcome(ev: Process, node: int | None, out: Path, since: float) -> tuple[int | None, float, list[int], dict,
                                                                              str, int | None]:
    """After a provoked end: (exit code, seconds since `since`, processes left, the report,
    its problems as one line, frames scored)."""
    code = wait_exit(ev, 60)
    t_exit = time.monotonic() - since
    left = _left_behind(ev, node)
    report = read_report(out) or {}
    return code, t_exit, left, report, " | ".join(report.get("problems") or []), report.get("frames_scored")


def _report_text(report: dict, scored: int | None, problems: str, left: list[int]) -> str:
    return "report: " + (f"{scored}/{DRIVE_FRAMES} frames scored, problems: {problems[:300]!r}" if report
                         else "none written") + f"; processes left: {left or 'none'}"


@fault_case("replay_node_killed",
            f"perception_node SIGKILLed mid `meco replay-eval` (closed loop): the evaluator notices within "
            f"{NOTICE_S:g} s, writes a partial report saying the node died and how many frames were scored, "
            "exits 1, leaves no process behind", fast=True)
def replay_node_killed(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    out = ctx.work_dir / "replay_node_killed"
    ev, node, problem = start_replay(ctx, out)
    if problem or node is None:
        return False, problem or "perception_node of the evaluator not found in /proc", {}
    mark = len(ev.lines)
    t_kill = time.monotonic()
    os.kill(node, signal.SIGKILL)
    notice = wait_new_line(ev, mark, ("perception_node", "died"), NOTICE_S + 20)
    t_notice = time.monotonic() - t_kill if notice else None
    code, t_exit, left, report, problems, scored = _outcome(ev, node, out, t_kill)
    says_scored = scored is not None and f"{scored} frame" in problems
    details = {"notice_s": t_notice, "exit_s": round(t_exit, 2), "exit_code": code, "left_behind": left,
               "frames_scored": scored, "frames_in_bag": DRIVE_FRAMES, "problems": report.get("problems")}
    passed = (t_notice is not None and t_notice <= NOTICE_S and code == 1 and not left and bool(report)
              and "died" in problems and says_scored and 0 < scored < DRIVE_FRAMES)
    measured = (f"noticed after {t_notice:.1f} s" if t_notice is not None else "never said the node died") + \
        f", exit {code} after {t_exit:.1f} s; " + _report_text(report, scored, problems, left)
    return passed, measured, details


def _interrupt(ctx: FaultContext, name: str, presses: int) -> tuple[bool, str, dict[str, Any]]:
    """SIGINT the evaluator `presses` times (0.3 s apart, as an impatient Ctrl-C) mid-replay."""
    out = ctx.work_dir / name
    ev, node, problem = start_replay(ctx, out)
    if problem or node is None:
        return False, problem or "perception_node of the evaluator not found in /proc", {}
    t_int = time.monotonic()
    for i in range(presses):
        if i:
            time.sleep(0.3)
        if ev.alive():
            ev.popen.send_signal(signal.SIGINT)
    code, t_exit, left, report, problems, scored = _outcome(ev, node, out, t_int)
    traceback = "Traceback" in ev.output
    details = {"exit_s": round(t_exit, 2), "exit_code": code, "left_behind": left, "frames_scored": scored,
               "problems": report.get("problems"), "traceback": traceback}
    passed = (code is not None and code != 0 and not left and bool(report) and "interrupted" in problems
              and scored is not None and scored < DRIVE_FRAMES and not traceback)
    measured = f"exit {code} after {t_exit:.1f} s; " + _report_text(report, scored, problems, left) + \
        ("; printed a traceback" if traceback else "")
    return passed, measured, details


@fault_case("replay_eval_interrupted",
            "`meco replay-eval` sent SIGINT mid-replay (the evaluator only, not its process group): its node "
            "ends, no process left, a partial report that says it was interrupted, exit non-zero", fast=True)
def replay_eval_interrupted(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    return _interrupt(ctx, "replay_eval_interrupted", 1)


@fault_case("replay_eval_interrupted_twice",
            "`meco replay-eval` sent SIGINT twice 0.3 s apart mid-replay (Ctrl-C pressed again while it stops): "
            "the same as once (node ends, no process left, partial report, no traceback)", fast=False)
def replay_eval_interrupted_twice(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    return _interrupt(ctx, "replay_eval_interrupted_twice", 2)
