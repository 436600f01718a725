"""`meco replay-eval`: a recorded drive in, the perception node's metrics, FPS and latency out.

    meco replay-eval --bag drive/ --image-topic /camera/image_raw --seg-gt-topic /camera/segmentation \
        --depth-gt-topic /camera/depth --closed-loop --out out/replay

What runs (everything over real DDS, nothing simulated):
- the perception node: the installed `perception_node` executable with the vehicle's
  params file (config/golf_cart.yaml) plus only the overrides asked for (checkpoint,
  inference size, compressed input, sim time), started as a subprocess in a namespace of
  its own (meco_ros.replay.node_process, on meco_ros.proc as node-bench does), unless
  `--use-running-node` points at one;
- this process publishes the bag's camera frames with their original header (stamp and
  frame_id) and the matching camera_info, and collects `depth`, `segmentation` and `stats`
  (meco_ros.replay.link);
- outputs are matched to the frames, and so to the ground truth, by header stamp
  (meco_ros.replay.playback: closed loop, real time, the probe) and scored with meco eval's
  own MetricSet (meco_ros.replay.report).

Label classes: a label image carries no class set. The bag's is `--gt-classes NAME` (a
registered set: golf, camvid, ycor), else the one `meco data make-bag` records on
/meco/dataset_info (a latched std_msgs/String with JSON), else the model's own. Labels in
another set are remapped to the model's with the registered LUT, exactly as `meco eval`
does (camvid->golf, ...). Before anything is replayed the whole label topic is scanned
once: ids that are not ids of that set (255 = ignore) stop the run with an error instead
of a wrong score (e.g. CamVid's 8 = Car read as a golf id), as do an unknown name and a
pair of sets with no registered remap (meco_ros.replay.gt_classes).

Modes: `--closed-loop` (default): the next frame goes out when the previous frame's
outputs arrived (or after `--timeout`), so every frame is scored and the metrics equal
`meco eval` on the same frames. `--rate R` (Hz, or `bag` for the recorded timing): real
time, what the vehicle would see; the node keeps only the newest frame, and frames it
could not keep up with are counted as dropped.

Before the replay one "probe" frame (the first frame, stamped 1 ns) is sent until the node
answers: it proves discovery is complete both ways (the node computes nothing for outputs
nobody subscribes to), and its Prediction message gives the class names and depth range.
The probe is not scored or counted.

Bad input never hangs: every wait has a timeout; a damaged bag is replayed as far as it
reads, missing ground-truth topics and unmatched stamps are listed, and a report
(possibly empty) is always written. Exit code 0: clean run; 1: partial report (see
`problems`); 2: nothing could be replayed.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NoReturn

from meco_core.bags import BagError
from meco_core.bags.replay_source import BagSource
from meco_core.classes import ClassSet
from meco_core.evaluation.bench import percentiles
from meco_core.options import from_args

from meco_ros.node.process_guards import exit_without_dds_teardown
from meco_ros.proc import REPO, Process
from .config import ReplayConfig
from .errors import ReplayAbort, say
from .gt_classes import checkpoint_class_set, class_set_from, gt_class_set, label_mapping
from .node_process import shell_line, start_perception_node
from .playback import Prefetch, Progress, Replayer, probe
from .report import Scorer, machine, summarize, table, write_report
from .stall_guard import LINK_TEARDOWN_S, StallGuard, dump_stacks_on_sigusr1, stall_seconds


# ---------------------------------------------------------------- provenance
def git_commit() -> str | None:
    """The source tree's commit (read-only git call), for the report."""
    import subprocess

    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                           timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() or None


# ---------------------------------------------------------------- label classes
def _check_labels(run: "_Run", model: ClassSet) -> Any:
    """LUT for the scorer (raises ReplayAbort before anything is scored); notes the classes in the report."""
    gt = run.gt_classes
    lut = label_mapping(gt, run.gt_source, model, run.label_ids, run.source.topics.seg)
    if gt is None:
        run.run_info["gt_classes"] = f"{model.name} (the model's; {run.gt_source})"
    else:
        run.run_info["gt_classes"] = f"{gt.name} ({run.gt_source})" + (
            f", remapped {gt.name}->{model.name}" if lut is not None else "")
    return lut


# ---------------------------------------------------------------- orchestration
def _node_stats(link: Any, first_index: int, baseline: Any, timeout: float = 3.0) -> dict[str, Any]:
    """Counter deltas over the replay and mean stage timings, from the node's stats messages."""
    n = len(link.data.stats)
    link.wait(lambda: len(link.data.stats) > n, timeout)  # one more: counters up to the end
    stats = link.data.stats[first_index:]
    last = stats[-1] if stats else None
    if last is None:
        return {}
    out: dict[str, Any] = {}
    for key in ("frames_received", "frames_processed", "frames_dropped", "frames_invalid", "inference_errors"):
        out[key] = int(getattr(last, key)) - (int(getattr(baseline, key)) if baseline is not None else 0)
    busy = [s for s in stats if s.fps > 0]
    for key in ("inference_ms", "convert_ms", "postprocess_ms", "publish_ms"):
        out[f"mean_{key}"] = sum(getattr(s, key) for s in busy) / len(busy) if busy else math.nan
    out["device"], out["model"] = last.device, last.model
    return out


def replay(cfg: ReplayConfig, *, keep_dds: bool = False) -> tuple[int, dict[str, Any]]:
    """Run one replay evaluation and write its report; returns (exit code, report.json body).

    keep_dds: leave this process's DDS participant up at the end, for a caller that ends the
    process right after without tearing DDS down (the CLI, `main_from_args`; why:
    `exit_without_dds_teardown`)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the node gets the cores (restored at the end: callers may be long-lived)
    try:
        with _one_interrupt():
            return _replay(cfg, keep_dds)
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _one_interrupt() -> Iterator[None]:
    """Ctrl-C stops the replay once; later ones are ignored while the node is stopped and the
    partial report written. Why (issue 20): a second Ctrl-C there raised a KeyboardInterrupt out of
    `_Run.close` / `_report`: a traceback, no report, and the node's stop cut short. Stopping is
    bounded (the node gets 30 s, then SIGKILL), so nothing can hang behind this."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread (which is the one interrupted anyway)
        return
    interrupted = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:
            say("replay-eval: interrupted again: still stopping the node and writing the partial report")
            return
        interrupted = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class _Run:
    """One replay's state: what was opened (closed at the end whatever happens) and what it found."""

    cfg: ReplayConfig
    namespace: str
    run_info: dict[str, Any]
    progress: Progress = field(default_factory=Progress)
    problems: list[str] = field(default_factory=list)
    source: Any = None
    node: Process | None = None
    link: Any = None
    prefetch: Prefetch | None = None
    replayer: Replayer | None = None
    node_stats: dict[str, Any] = field(default_factory=dict)
    fatal: bool = False
    gt_classes: ClassSet | None = None  # class set of the bag's labels (None: the model's)
    gt_source: str = ""
    label_ids: dict[int, int] = field(default_factory=dict)  # label id -> messages it is in

    def close(self) -> None:
        """Everything but the DDS link: the bag, the reader thread and the node (its exit code goes
        into the report). The link goes after the report, in `close_link`."""
        if self.prefetch is not None:
            self.prefetch.close()
        if self.node is not None:
            self.run_info["node_exit_code"] = self.node.stop(signal.SIGINT, 30)
        if self.source is not None:
            self.source.close()

    def close_link(self) -> None:
        """This process's DDS participant, after the report is written, bounded: its teardown is
        Fast DDS's C++ with the GIL held, and a teardown that blocked there once hung a finished
        replay forever. If it blocks for LINK_TEARDOWN_S, the watchdog writes every thread's stack
        and ends the process (exit 1); the report is already on disk."""
        if self.link is not None:
            with StallGuard(LINK_TEARDOWN_S):
                self.link.stop()
            self.link = None


def _run_info(cfg: ReplayConfig, namespace: str) -> dict[str, Any]:
    """How the replay is run, for the report's "How it was run" section."""
    return {"command": cfg.command, "bag": str(cfg.bag), "mode": "closed loop" if cfg.closed_loop else
            f"real time at {cfg.rate} {'timing' if cfg.rate == 'bag' else 'Hz'}",
            "node": "already running" if cfg.use_running_node else "started by replay-eval",
            "node_namespace": namespace, "inference_size": list(cfg.inference_size) if cfg.inference_size else
            "params file", "tolerance_ms": cfg.tolerance_ms, "timeout_s": cfg.timeout,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "git_commit": git_commit(), **machine()}


def _connect(run: _Run) -> None:
    """Open the bag, start (or find) the node, and match the replay link to it."""
    cfg = run.cfg
    try:
        run.source = BagSource(cfg.bag, cfg.image_topic, seg_topic=cfg.seg_gt_topic, depth_topic=cfg.depth_gt_topic,
                               lidar_topic=cfg.lidar_topic, info_topic=cfg.info_topic, extrinsics=cfg.extrinsics,
                               tolerance_ms=cfg.tolerance_ms, limit=cfg.limit)
        run.source.open()
    except (BagError, ValueError, OSError) as exc:
        raise ReplayAbort(f"cannot replay: {exc}") from None
    t = run.source.topics
    run.run_info.update(image_topic=t.image, image_type=t.image_type, info_topic=t.info, depth_gt_topic=t.depth,
                        lidar_topic=t.lidar, seg_gt_topic=t.seg, frames_in_bag=run.source.count)
    run.gt_classes, run.gt_source = gt_class_set(cfg, run.source)
    if t.seg:  # what the label ids are, checked before the node starts when the checkpoint tells its classes
        run.label_ids = run.source.label_ids()
        model = checkpoint_class_set(cfg)
        if model is not None:
            _check_labels(run, model)
    if cfg.use_running_node:
        run.run_info["checkpoint"] = cfg.checkpoint or "whatever the running node loaded"
    else:
        run.node = start_perception_node(cfg, run.namespace, t.compressed, run.run_info)
    from .link import ReplayLink  # rclpy: only once the environment is set

    run.link = ReplayLink(run.namespace, compressed=t.compressed, image_topic=cfg.node_image_topic,
                          publish_clock=cfg.use_sim_time).start()
    # a running node (e.g. started by the same launch file) may still be warming up
    wait = cfg.start_timeout if cfg.use_running_node else min(cfg.timeout, 30.0)
    if cfg.use_running_node:
        say(f"replay-eval: waiting up to {wait:g} s for a perception node at {run.namespace} ...")
    if not run.link.wait_matched(wait):
        raise ReplayAbort(f"no perception node at {run.namespace} within {wait:g} s: nothing subscribes to "
                          f"{run.link.image_topic} or publishes {run.link.topic('depth')} and "
                          f"{run.link.topic('segmentation')} (--node-namespace, --node-image-topic)")


def _play(run: _Run, guard: StallGuard) -> None:
    """Probe the node with the first frame, learn its classes, then replay and score every frame
    (each send re-arms `guard`: a replay that stops sending for its bound ends the process)."""
    cfg, link, source = run.cfg, run.link, run.source
    t = source.topics
    frames = source.frames()
    first = next(frames, None)
    if first is None:
        raise ReplayAbort(f"no readable frame on {t.image}")
    rtt = probe(link, first, max(cfg.timeout, 10.0))
    run.run_info["probe_round_trip_ms"] = round(rtt * 1e3, 1) if not math.isnan(rtt) else None
    link.drop_prediction()
    class_set, max_depth = class_set_from(link.data.meta, cfg, run.problems)
    run.run_info.update(classes=class_set.names, max_depth=max_depth)
    lut = _check_labels(run, class_set) if t.seg else None  # before any frame is replayed
    n_stats = len(link.data.stats)  # a fresh stats message: counters from here on are the replay's
    link.wait(lambda: len(link.data.stats) > n_stats, 1.5)
    baseline, first_stats = link.latest_stats(), len(link.data.stats)
    run.replayer = Replayer(cfg, link, run.node, run.progress)
    run.replayer.beat = guard.beat
    run.replayer.resend_s = 2.0 if math.isnan(rtt) else min(cfg.timeout, max(2.0, 5 * rtt))
    tasks = (("depth",) if t.depth or t.lidar else ()) + (("segmentation",) if t.seg else ())
    run.replayer.scorer = Scorer(class_set, max_depth, source.count, tasks, label_lut=lut)
    say(f"replay-eval: replaying {source.count} frames of {t.image} ({run.run_info['mode']}) ...")
    stream = itertools.chain([first], frames)
    if cfg.closed_loop:
        run.replayer.closed_loop(stream)
    else:
        run.prefetch = Prefetch(stream)
        run.replayer.real_time(run.prefetch)
    run.node_stats = _node_stats(link, first_stats, baseline)


def _all_problems(run: _Run) -> list[str]:
    """Everything that went wrong, source problems first, then the replay's and the counters'."""
    cfg, progress, replayer = run.cfg, run.progress, run.replayer
    problems = (run.source.all_problems() if run.source is not None else []) + run.problems
    if replayer is not None:
        problems.extend(replayer.problems)
        if replayer.scorer is not None and replayer.scorer.resized:
            problems.append(f"{replayer.scorer.resized} outputs resized to their ground truth's size")
    if progress.timeouts:
        problems.append(f"{progress.timeouts} frame(s) got no outputs within --timeout {cfg.timeout:g} s")
    if progress.no_gt and (cfg.seg_gt_topic or cfg.depth_gt_topic or cfg.lidar_topic):
        problems.append(f"{progress.no_gt} frame(s) replayed without ground truth to score them against")
    return problems


def _report(run: _Run) -> tuple[int, dict[str, Any]]:
    """Metrics + timing -> report files and the terminal table; exit code 2 fatal, 1 problems, 0 clean."""
    cfg, progress, run_info = run.cfg, run.progress, run.run_info
    problems = _all_problems(run)
    timing = {
        "fps": progress.fps(), "frames_sent": progress.sent, "frames_scored": progress.scored,
        "frames_dropped": progress.sent - progress.completed, "frames_completed": progress.completed,
        "frames_without_gt": progress.no_gt, "latency_ms": percentiles(progress.latencies_ms),
        "late_sends": progress.late_sends, "frames_resent": progress.resent, "node_stats": run.node_stats, "problems": problems,
        "class_names": run_info.get("classes", []),
    }
    scorer = run.replayer.scorer if run.replayer is not None else None
    result = summarize(scorer, timing)
    run_info["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    files = write_report(cfg.out, result, scorer, run_info, cfg.json)
    title = (f"replay-eval {Path(cfg.bag).name} [{cfg.image_topic}] with "
             f"{run_info.get('checkpoint', cfg.checkpoint or 'the default checkpoint')}, {run_info['mode']}")
    print(table(result, scorer.class_set.names if scorer else None, title))
    print("report: " + ", ".join(str(p) for p in files.values()))
    return (2 if run.fatal else 1 if problems else 0), result


def _replay(cfg: ReplayConfig, keep_dds: bool = False) -> tuple[int, dict[str, Any]]:
    namespace = cfg.node_namespace or (f"/meco_replay_{os.getpid()}" if not cfg.use_running_node else "/camera")
    run = _Run(cfg, namespace, _run_info(cfg, namespace))
    guard = StallGuard(stall_seconds(cfg))
    dump_stacks_on_sigusr1()
    try:
        _connect(run)
        with guard:
            _play(run, guard)
    except ReplayAbort as exc:
        run.problems.append(str(exc))
        run.fatal = run.progress.sent == 0
        say(f"replay-eval: {exc}")
    except KeyboardInterrupt:
        run.problems.append(f"interrupted (Ctrl-C) after {run.progress.scored} frame(s) were scored "
                            f"({run.progress.sent} sent): partial report")
    except Exception as exc:  # noqa: BLE001 - whatever happens, the report of what ran is written
        import traceback

        traceback.print_exc()
        run.problems.append(f"replay stopped by an unexpected error: {type(exc).__name__}: {exc}")
        run.fatal = run.progress.sent == 0
    finally:
        run.close()
    try:
        return _report(run)
    finally:
        if not keep_dds:
            run.close_link()


def main_from_args(args: Any) -> NoReturn:
    """The `meco replay-eval` process: replay, write the report, end the process with its code
    (without Fast DDS's participant teardown, which can hang: `exit_without_dds_teardown`)."""
    cfg = from_args(ReplayConfig, args,
                    command=getattr(args, "command_line", None) or shell_line(["meco", *sys.argv[1:]]))
    code, _ = replay(cfg, keep_dds=True)
    exit_without_dds_teardown(code)  # the report is written: see its doc for why no teardown

