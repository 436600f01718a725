"""`meco node-soak`: the perception node over a long run, sampled every few seconds.

Same setup as `meco node-bench` (and its code: `resolve_setup`, `run_node`, the camera
process `camera_main`, the `Viewer`): the installed `perception_node` with the params file,
a camera process publishing frames and their camera_info best effort at the chosen size and
rate, and this process subscribing to every per-frame output like RViz (depth, segmentation,
the colour views, depth/camera_info, prediction and the clouds `points` and
`obstacles/points`, which need camera_info) and to stats.

Every --sample-every seconds (time 0 = the first output received): the node's RSS (VmRSS)
and thread count from /proc/<pid>/status, its open file descriptors (/proc/<pid>/fd), the
depth output FPS and stamp->receipt latency p50/p95 over that window, the output rate of
every topic, and the node's own counters (stats: received/processed/dropped/invalid).
Written to OUT/soak.json and plotted in OUT/soak.png.

Pass criteria (`criteria`): RSS growth from the end of the warm-up to the end <= 5 %;
threads and fds not growing (the end <= the first minute after warm-up's max); depth FPS of
the last minute >= 0.9x that of the first minute after warm-up; latency p95 of the last
minute <= 1.2x the first's; node alive throughout and exit code 0 after SIGINT.
Exit code 0 when all pass, else 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


from .node_bench import _jsonable, add_camera_arguments, add_node_arguments, resolve_setup, run_node
from .viewer import VIEWER_TOPICS, Viewer
from meco_ros.proc import Process

PRIMARY = "depth"                 # the output FPS and latency are measured on
FIRST_OUTPUT_TIMEOUT_S = 120.0    # camera start -> first output


def soak_topics() -> dict[str, Any]:
    """The outputs the viewer subscribes to beyond node-bench's images: {topic: type}."""
    from sensor_msgs.msg import CameraInfo, PointCloud2

    from meco_ros.msg import Prediction

    return {"depth/camera_info": CameraInfo, "prediction": Prediction, "points": PointCloud2,
            "obstacles/points": PointCloud2}


def proc_sample(pid: int) -> dict[str, float]:
    """RSS (MB, VmRSS), threads and open file descriptors of a live process (Linux /proc)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            fields[key] = int(value.split()[0])
    return {"rss_mb": fields["VmRSS"] / 1024.0, "threads": fields["Threads"], "fds": len(os.listdir(f"/proc/{pid}/fd"))}


class SoakStopped(Exception):
    """The run ended before its time: the node died, or the user interrupted it."""


class Sampler:
    """run_node's while_running hook: samples the node until the camera's duration is over."""

    def __init__(self, duration: float, every: float, progress: Any = None) -> None:
        self.duration, self.every, self.progress = duration, every, progress
        self.samples: list[dict[str, Any]] = []
        self.node: Process | None = None
        self.viewer: Viewer | None = None
        self.stopped: str | None = None   # why the run ended early

    def __call__(self, node: Process, camera: Process, viewer: Viewer) -> None:
        self.node, self.viewer = node, viewer
        try:
            self._loop(node, camera, viewer)
        except KeyboardInterrupt:
            self.stopped = "interrupted (Ctrl-C)"
        if self.stopped:
            raise SoakStopped(self.stopped)

    def _loop(self, node: Process, camera: Process, viewer: Viewer) -> None:
        first = viewer.received[PRIMARY]
        deadline = time.monotonic() + FIRST_OUTPUT_TIMEOUT_S
        while not first:
            if not node.alive():
                self.stopped = f"node died before its first output (exit code {node.popen.returncode})"
                return
            if not camera.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"no {PRIMARY} output within {FIRST_OUTPUT_TIMEOUT_S:g} s of the camera's start:"
                                   f"\n{camera.output[-1500:]}\n{node.output[-2000:]}")
            time.sleep(0.05)
        t0 = first[0][1]                         # receipt time of the first output
        index = {topic: 0 for topic in viewer.received}
        prev, k = t0, 1
        while k * self.every <= self.duration + 1e-6:
            target = t0 + k * self.every
            while time.time() < target and node.alive() and camera.alive():
                time.sleep(min(0.2, max(target - time.time(), 0.0)))
            if not node.alive():
                self.stopped = f"node died at t={time.time() - t0:.0f} s (exit code {node.popen.returncode})"
                return
            now = time.time()
            self.samples.append(self._sample(node.popen.pid, viewer, index, prev, now, t0))
            if self.progress is not None:
                self.progress(self.samples[-1])
            if not camera.alive():
                return
            prev, k = now, k + 1

    @staticmethod
    def _sample(pid: int, viewer: Viewer, index: dict[str, int], prev: float, now: float, t0: float) -> dict[str, Any]:
        window = now - prev
        counts, latencies = {}, []
        for topic, log in viewer.received.items():
            i, n = index[topic], len(log)
            j = i
            while j < n and log[j][1] <= now:
                j += 1
            counts[topic] = j - i
            if topic == PRIMARY:
                latencies = [round((recv - stamp) * 1e3, 1) for stamp, recv, _ in log[i:j]]
            index[topic] = j
        stats = viewer.stats[-1] if viewer.stats else None
        lat = np.asarray(latencies, np.float64)
        return {
            "t_s": round(now - t0, 3), "window_s": round(window, 3), **proc_sample(pid),
            "frames": counts[PRIMARY], "fps": counts[PRIMARY] / window if window > 0 else 0.0,
            "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
            "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
            "topics_fps": {t: c / window if window > 0 else 0.0 for t, c in counts.items()},
            "node_stats": None if stats is None else {
                "fps": stats.fps, "latency_ms": stats.latency_ms, "received": stats.frames_received,
                "processed": stats.frames_processed, "dropped": stats.frames_dropped,
                "invalid": stats.frames_invalid, "errors": stats.inference_errors},
            "latencies_ms": latencies,
        }


# ---------------------------------------------------------------- pass criteria
def window_figures(samples: list[dict[str, Any]]) -> dict[str, float]:
    """Depth FPS (frames / time) and latency p50/p95 over all frames of these samples."""
    span = sum(s["window_s"] for s in samples)
    lat = np.asarray([v for s in samples for v in s["latencies_ms"]], np.float64)
    return {"fps": sum(s["frames"] for s in samples) / span if span > 0 else 0.0,
            "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
            "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
            "from_s": samples[0]["t_s"] - samples[0]["window_s"] if samples else float("nan"),
            "to_s": samples[-1]["t_s"] if samples else float("nan")}


def criteria(samples: list[dict[str, Any]], warmup: float, window: float = 60.0, rss_limit: float = 0.05,
             fps_ratio: float = 0.9, p95_ratio: float = 1.2, node_alive: bool = True,
             exit_code: int | None = 0) -> dict[str, Any]:
    """The pass criteria over the samples: {"figures": ..., "checks": [{name, measured, limit, ok}]}.

    Baseline = the sample at the end of the warm-up (the first at t >= `warmup` s); "first
    minute" = the sample windows within [warmup, warmup + window]; "last minute" = those
    within the last `window` s (and after the warm-up). Times are the samples' end times,
    matched with a quarter-window tolerance (sampling jitter)."""
    every = float(np.median([s["window_s"] for s in samples])) if samples else 0.0
    tol = 0.25 * every
    post = [s for s in samples if s["t_s"] >= warmup - tol]
    checks: list[dict[str, Any]] = []

    def check(name: str, measured: str, limit: str, ok: bool) -> None:
        checks.append({"name": name, "measured": measured, "limit": limit, "ok": bool(ok)})

    if not post:
        check("samples after warm-up", "0", ">= 1", False)
        figures: dict[str, Any] = {}
    else:
        base, end = post[0], post[-1]
        steady = [s for s in post if s["t_s"] - s["window_s"] >= warmup - tol] or [end]
        first = [s for s in steady if s["t_s"] <= warmup + window + tol]
        last = [s for s in steady if s["t_s"] - s["window_s"] >= end["t_s"] - window - tol]
        f, la = window_figures(first), window_figures(last)
        growth = end["rss_mb"] / base["rss_mb"] - 1.0
        max_threads, max_fds = max(s["threads"] for s in [base, *first]), max(s["fds"] for s in [base, *first])
        figures = {"rss_baseline_mb": base["rss_mb"], "rss_end_mb": end["rss_mb"],
                   "rss_peak_mb": max(s["rss_mb"] for s in post), "rss_growth": growth,
                   "threads_first_minute_max": max_threads, "threads_end": end["threads"],
                   "fds_first_minute_max": max_fds, "fds_end": end["fds"], "first_minute": f, "last_minute": la}
        check(f"RSS growth after warm-up (t={base['t_s']:.0f} s -> {end['t_s']:.0f} s)",
              f"{base['rss_mb']:.1f} -> {end['rss_mb']:.1f} MB ({100 * growth:+.2f} %)", f"<= {100 * rss_limit:g} %",
              growth <= rss_limit)
        check("threads not growing (end vs first minute's max)", f"{max_threads} -> {end['threads']}", "no growth",
              end["threads"] <= max_threads)
        check("open fds not growing (end vs first minute's max)", f"{max_fds} -> {end['fds']}", "no growth",
              end["fds"] <= max_fds)
        check("FPS last minute / first minute", f"{la['fps']:.2f} / {f['fps']:.2f}", f">= {fps_ratio:g}x",
              f["fps"] > 0 and la["fps"] >= fps_ratio * f["fps"])
        check("latency p95 last minute / first minute", f"{la['latency_p95_ms']:.1f} / {f['latency_p95_ms']:.1f} ms",
              f"<= {p95_ratio:g}x", bool(la["latency_p95_ms"] <= p95_ratio * f["latency_p95_ms"]))
    check("node alive throughout", "yes" if node_alive else "no", "alive", node_alive)
    check("clean exit after SIGINT", f"exit code {exit_code}", "0", exit_code == 0)
    return {"figures": figures, "checks": checks}


# ---------------------------------------------------------------- run, outputs
def run(args: argparse.Namespace) -> dict[str, Any]:
    setup = resolve_setup(args)
    h, w = setup.camera_size
    quiet = args.quiet
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    say(f"node-soak: model {setup.model_label}, backend {setup.backend}, camera {h}x{w} @ {args.rate:g} Hz "
        f"(+ camera_info), {args.duration:g} s, sample every {args.sample_every:g} s, warm-up {args.warmup:g} s, "
        f"{setup.workers} worker(s) x {setup.worker_threads} thread(s)")
    load_before = os.getloadavg()[0]
    progress, update = _progress(args.duration, quiet)
    sampler = Sampler(args.duration, args.sample_every, update)
    cam, stats, exit_code, viewer = {}, None, None, None
    try:
        with progress:
            cam, stats, viewer, exit_code = run_node(args, setup, say, extra_topics=soak_topics(), camera_info=True,
                                                     while_running=sampler)
    except SoakStopped as exc:
        say(f"node-soak stopped early: {exc}")
        viewer = sampler.viewer
        exit_code = sampler.node.popen.returncode if sampler.node is not None else None
        stats = viewer.stats[-1] if viewer is not None and viewer.stats else None
    node_alive = sampler.stopped is None or not sampler.stopped.startswith("node died")
    verdict = criteria(sampler.samples, args.warmup, node_alive=node_alive, exit_code=exit_code)
    totals = {t: len(v) for t, v in viewer.received.items()} if viewer is not None else {}
    return {
        "config": {"model": setup.model_label, "dev_mode": setup.dev, "backend": setup.backend,
                   "inference_size": list(setup.bench_size), "camera_size": [h, w], "rate_hz": args.rate,
                   "duration_s": args.duration, "sample_every_s": args.sample_every, "warmup_s": args.warmup,
                   "threads": setup.threads, "workers": setup.workers, "worker_threads": setup.worker_threads,
                   "device": stats.device if stats else None, "params_file": str(setup.params_file),
                   "topics": [*VIEWER_TOPICS, *soak_topics()], "cpus": os.cpu_count(),
                   "load_avg_1min_before_after": [load_before, os.getloadavg()[0]]},
        "stopped_early": sampler.stopped,
        "camera": {k: v for k, v in cam.items() if k != "stamps"},
        "outputs_received": totals,
        "stats": None if stats is None else {
            "frames_received": stats.frames_received, "frames_processed": stats.frames_processed,
            "frames_dropped": stats.frames_dropped, "frames_invalid": stats.frames_invalid,
            "inference_errors": stats.inference_errors},
        "exit_code": exit_code,
        "figures": verdict["figures"],
        "checks": verdict["checks"],
        "problems": (viewer.problems[:10] if viewer is not None else []),
        "samples": sampler.samples,
    }


def _progress(duration: float, quiet: bool):
    """(context manager, per-sample update) for a rich progress bar on stderr (no-ops when quiet)."""
    import contextlib

    if quiet:
        return contextlib.nullcontext(), None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("soak"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                        TimeRemainingColumn(), TextColumn("{task.description}"), console=Console(stderr=True))
    task = progress.add_task("waiting for the first output", total=duration)

    def update(s: dict[str, Any]) -> None:
        progress.update(task, completed=min(s["t_s"], duration),
                        description=f"RSS {s['rss_mb']:.0f} MB | {s['threads']} threads | {s['fds']} fds | "
                                    f"{s['fps']:.1f} FPS | p95 {s['latency_p95_ms']:.0f} ms")
    return progress, update


def plot(result: dict[str, Any], path: Path) -> Path:
    """RSS, threads/fds, FPS and latency against time (warm-up shaded)."""
    from meco_core.evaluation.plotting import pyplot, save_figure

    plt = pyplot()
    samples = result["samples"]
    t = np.array([s["t_s"] for s in samples], np.float64)
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    axes[0].plot(t, [s["rss_mb"] for s in samples], "-", color="tab:blue")
    axes[0].set_ylabel("node RSS (MB)")
    axes[1].plot(t, [s["threads"] for s in samples], "-", label="threads")
    axes[1].plot(t, [s["fds"] for s in samples], "-", label="open fds")
    axes[1].set_ylabel("count")
    axes[1].legend(loc="best", fontsize=8)
    axes[2].plot(t, [s["fps"] for s in samples], "-", label=PRIMARY)
    axes[2].plot(t, [s["topics_fps"].get("points", float("nan")) for s in samples], "--", label="points")
    axes[2].set_ylabel("output FPS")
    axes[2].legend(loc="best", fontsize=8)
    axes[3].plot(t, [s["latency_p95_ms"] for s in samples], "-", label="p95")
    axes[3].plot(t, [s["latency_p50_ms"] for s in samples], "--", label="p50")
    axes[3].set_ylabel("latency (ms)")
    axes[3].set_xlabel("time since the first output (s)")
    axes[3].legend(loc="best", fontsize=8)
    warmup = result["config"]["warmup_s"]
    for ax in axes:
        ax.axvspan(0, warmup, color="0.9", zorder=0)
        ax.grid(alpha=0.3)
    c = result["config"]
    axes[0].set_title(f"node-soak {c['camera_size'][0]}x{c['camera_size'][1]} @ {c['rate_hz']:g} Hz, {c['backend']} "
                      f"(warm-up shaded)", fontsize=10)
    return save_figure(fig, path)


def render(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    c, f, st = result["config"], result["figures"], result["stats"] or {}
    t = Table(title=f"node-soak: {c['model']} | backend {c['backend']} | camera {c['camera_size'][0]}x"
                    f"{c['camera_size'][1]} @ {c['rate_hz']:g} Hz | {c['duration_s']:g} s, warm-up {c['warmup_s']:g} s "
                    f"| {c['device']} {c['workers']} worker(s) x {c['worker_threads']} thread(s)")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("limit", justify="right")
    t.add_column("")
    if f:
        fm, lm = f["first_minute"], f["last_minute"]
        t.add_row("node RSS baseline / end / peak MB", f"{f['rss_baseline_mb']:.1f} / {f['rss_end_mb']:.1f} / "
                                                      f"{f['rss_peak_mb']:.1f}", "", "")
        t.add_row("depth FPS first / last minute", f"{fm['fps']:.2f} / {lm['fps']:.2f}", "", "")
        t.add_row("latency p50 first / last minute ms", f"{fm['latency_p50_ms']:.1f} / {lm['latency_p50_ms']:.1f}",
                  "", "")
    t.add_row("samples", str(len(result["samples"])), "", "")
    t.add_row("frames sent by camera (late)", f"{result['camera'].get('sent', '?')} ({result['camera'].get('late', '?')})",
              "", "")
    t.add_row("node frames recv / processed / dropped / invalid / errors",
              " / ".join(str(st.get(k, "?")) for k in ("frames_received", "frames_processed", "frames_dropped",
                                                      "frames_invalid", "inference_errors")), "", "")
    t.add_row("outputs received", ", ".join(f"{k} {v}" for k, v in result["outputs_received"].items()), "", "")
    load = c["load_avg_1min_before_after"]
    t.add_row("machine load average 1 min, before / after (cpus)", f"{load[0]:.2f} / {load[1]:.2f} ({c['cpus']})", "",
              "")
    for ch in result["checks"]:
        t.add_row(f"check: {ch['name']}", ch["measured"], ch["limit"], "[green]pass[/]" if ch["ok"] else "[red]FAIL[/]")
    Console(width=max(140, Console().width)).print(t)
    if result["stopped_early"]:
        print(f"stopped early: {result['stopped_early']}")
    for p in result["problems"]:
        print(f"problem: {p}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_camera_arguments(p, (720, 1280), 600.0)
    add_node_arguments(p)
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples (default 5)")
    p.add_argument("--warmup", type=float, default=60.0,
                   help="seconds after the first output left out of the RSS baseline (default 60)")
    p.add_argument("--out", default="soak", help="folder for soak.json and soak.png (default ./soak)")
    p.add_argument("--quiet", action="store_true", help="no progress or log lines (the table is still printed)")


def main_from_args(args: argparse.Namespace) -> int:
    if args.sample_every <= 0 or args.duration <= 0 or args.warmup < 0:
        from meco_core.errors import MecoError

        raise MecoError("--duration and --sample-every must be > 0, --warmup >= 0")
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=1, default=_jsonable))
    if result["samples"]:
        plot(result, out / "soak.png")
    render(result)
    print(f"wrote {out / 'soak.json'}" + (f" and {out / 'soak.png'}" if result["samples"] else ""))
    return 0 if all(ch["ok"] for ch in result["checks"]) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m meco_ros.bench.node_soak")
    add_arguments(parser)
    sys.exit(main_from_args(parser.parse_args()))

