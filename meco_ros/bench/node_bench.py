"""`meco node-bench`: the perception node end to end, as deployed, against the raw model.

What runs (all over real DDS with the project's Fast DDS profile):
- the node: the installed `perception_node` executable with config/golf_cart.yaml (plus
  only the overrides given on the command line), in a namespace and domain of its own;
- a camera (`meco_ros.bench.bench_camera`): a separate process publishing real-looking frames
  (CamVid images from ../shared/data, else synthetic) best effort at the chosen rate, size and
  encoding;
- a viewer (`meco_ros.bench.viewer`): this process subscribes to depth, segmentation, segmentation/color and
  depth/color reliably, like RViz, and to stats (`--subscribe depth,segmentation`: only those, as a
  navigation stack reads them; the node makes no output nobody subscribes to).

Reported next to each other: node output FPS, latency (image stamp -> receipt) p50/p95/p99,
frames sent/received/processed/dropped/invalid, latency p95 of the first vs the last 10 s
(a backlog would show as growth), the raw model FPS (meco_core.evaluation.bench on the same model
and inference size, in this process, before and after the node run), the image
conversion speed and the CPU each of the node's threads, the camera and the viewer use over
the middle half of the run (`thread_cpu`). Every wait has a timeout.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from meco_core.evaluation.bench import percentiles
from meco_core.defaults import BACKENDS, DEV_MODEL_CONFIG, NODE_ORT_SPIN, NODE_START_TIMEOUT_S

from meco_ros.bench.bench_camera import CAMERA_MATCH_TIMEOUT_S
from meco_ros.bench.thread_cpu import cpu_cores
from meco_ros.bench.thread_cpu import describe as describe_cpu
from meco_ros.bench.viewer import VIEWER_TOPICS, Viewer, checked_topics
from meco_ros.proc import REPO, Process, node_checkpoint, node_ros_args, ros_env, start_node

# ---------------------------------------------------------------- raw model and analysis
def _params_value(params_file: Path, key: str, default: Any) -> Any:
    import yaml

    doc = yaml.safe_load(params_file.read_text())
    for value in doc.values():
        found = value.get("ros__parameters", {}).get(key)
        if found not in (None, "", [0, 0]):
            return found
    return default


def _raw_models(checkpoint: str | None, dev_config: str, size: tuple[int, int], backends: list[str]):
    """{backend: (model, torch twin)} for the raw bench: the node's model as each backend runs it."""
    import torch

    from meco_ros.node.params import parse_model_config

    if checkpoint:
        from meco_core.models.checkpoint import build_from_checkpoint

        model, _ = build_from_checkpoint(checkpoint)
    else:
        from meco_core.models import build_model

        torch.manual_seed(0)
        model = build_model("meco", **parse_model_config(dev_config))
    model.prepare_for_inference()
    models = {"torch": (model, model)}
    if checkpoint and "onnxruntime" in backends:
        from meco_core.inference.runtime import onnx_for

        models["onnxruntime"] = (onnx_for(checkpoint, size), model)  # the file the node runs (same cache)
    return models


def raw_grid(checkpoint: str | None, dev_config: str, size: tuple[int, int], device: str, repeats: int,
             backends: list[str], thread_counts: list[int]) -> list[dict[str, Any]]:
    """meco_core.evaluation.bench of the node's model at its inference size for every backend x thread count
    (model forward only): the best of these is what the machine can do with this model."""
    import torch

    from meco_core.evaluation.bench import benchmark
    from meco_core.inference import resolve_device
    from meco_core.inference.runtime import ORT_SPIN_MODES, OnnxRuntimeModel, RuntimeSpec

    models = _raw_models(checkpoint, dev_config, size, backends)
    rows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        timed, twins = {}, {}
        for backend, (model, twin) in models.items():
            if backend == "torch":
                timed[backend], twins[backend] = model, twin
                continue
            for spin in ORT_SPIN_MODES:  # ORT's default 'always', the node's (defaults.NODE_ORT_SPIN), 'off'
                label = raw_label(backend, spin)
                timed[label] = OnnxRuntimeModel(model, spec=RuntimeSpec(threads=threads, spin=spin))
                twins[label] = twin
        for row in benchmark(timed, size, str(resolve_device(device)), warmup=3, repeats=repeats, progress=False,
                             twins=twins):
            rows.append({"backend": row.model, "threads": threads, "streams": 1, "fps": row.fps,
                         "latency_ms": row.latency_ms})
    rows += stream_rows(models, size, device, repeats)
    return rows


def stream_rows(models: dict, size: tuple[int, int], device: str, frames: int) -> list[dict[str, Any]]:
    """ONNX Runtime with S frames at once (S = 2 .. cores, cores // S threads each): what the
    node's inference workers can reach, so the best raw configuration includes it."""
    import torch

    from meco_core.evaluation.bench import measure_throughput
    from meco_core.inference import resolve_device
    from meco_core.inference.runtime import OnnxRuntimeModel, RuntimeSpec

    if "onnxruntime" not in models:
        return []
    cores = os.cpu_count() or 1
    image = torch.rand(1, 3, *size, device=resolve_device(device))
    rows = []
    for streams in range(2, cores + 1):
        threads = cores // streams
        model = OnnxRuntimeModel(models["onnxruntime"][0], spec=RuntimeSpec(threads=threads, spin=NODE_ORT_SPIN))
        fps = measure_throughput(model, image, streams, frames)
        rows.append({"backend": raw_label("onnxruntime"), "threads": threads, "streams": streams, "fps": fps,
                     "latency_ms": float("nan")})
    return rows


def config_label(row: dict[str, Any]) -> str:
    """'onnxruntime spin-run, 2 threads' or 'onnxruntime spin-run, 2 streams x 1 thread'."""
    streams = row.get("streams", 1)
    return f"{row['backend']}, " + (f"{row['threads']} threads" if streams == 1 else
                                    f"{streams} streams x {row['threads']} thread(s)")


def raw_label(backend: str, spin: str = NODE_ORT_SPIN) -> str:
    """Raw-grid row name of a backend and ORT spin mode (default: the node's)."""
    return backend if backend == "torch" or spin == "always" else f"{backend} spin-{spin}"


def merge_grids(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean FPS of each configuration over the runs before and after the node."""
    merged = []
    for b, a in zip(before, after):
        merged.append({**b, "fps_before": b["fps"], "fps_after": a["fps"], "fps": (b["fps"] + a["fps"]) / 2})
    return merged


def queueing_first_last(windows: list[tuple[float, Any]], span: float = 10.0) -> list[float]:
    """Mean (latency - processing) of the stats windows in the first and the last `span` s.

    Latency includes the time a frame waits for the inference thread; processing is the sum
    of the stage times. A backlog makes this wait grow; a machine that gets slower (other
    load) raises processing instead. So this separates 'queue' from 'slow CPU'.
    """
    if not windows:
        return [float("nan"), float("nan")]
    t0, t1 = windows[0][0], windows[-1][0]

    def wait(s: Any) -> float:
        return s.latency_ms - (s.convert_ms + s.inference_ms + s.postprocess_ms + s.publish_ms)

    first = [wait(s) for t, s in windows if t < t0 + span]
    last = [wait(s) for t, s in windows if t > t1 - span]
    return [float(np.mean(first)), float(np.mean(last))]


def analyse(received: list[tuple[float, float, tuple[int, int]]], window: float = 10.0) -> dict[str, Any]:
    """Output FPS and stamp->receipt latency, overall and first vs last `window` seconds."""
    if len(received) < 2:
        return {"fps": 0.0, "latency_ms": percentiles([]), "first_p95_ms": float("nan"),
                "last_p95_ms": float("nan")}
    recv = np.array([r[1] for r in received])
    lat = (recv - np.array([r[0] for r in received])) * 1e3
    t0, t1 = recv.min(), recv.max()
    first = lat[recv < t0 + window]
    last = lat[recv > t1 - window]
    return {"fps": (len(recv) - 1) / (t1 - t0) if t1 > t0 else 0.0, "latency_ms": percentiles(lat.tolist()),
            "first_p95_ms": float(np.percentile(first, 95)), "last_p95_ms": float(np.percentile(last, 95)),
            "span_s": float(t1 - t0)}


# ---------------------------------------------------------------- orchestration
@dataclass
class BenchSetup:
    """What one node-bench run measures, resolved by the node's own rules."""

    checkpoint: str | None
    params_file: Path
    camera_size: tuple[int, int]
    bench_size: tuple[int, int]     # the inference size the raw model is timed at
    backend: str
    threads: int                    # the node's threads in all (split between its workers)
    workers: int                    # the node's inference workers
    model_label: str

    @property
    def worker_threads(self) -> int:
        from meco_ros.node.params import worker_threads

        return worker_threads(self.threads, self.workers)

    @property
    def dev(self) -> bool:
        return self.checkpoint is None


def resolve_setup(args: argparse.Namespace) -> BenchSetup:
    """Checkpoint, inference size, backend and threads exactly as the node will pick them."""
    from meco_core.errors import MecoError

    from meco_ros.node.params import resolve_threads, resolve_workers

    params_file = Path(args.params_file or REPO / "config" / "golf_cart.yaml").resolve()
    try:
        found = node_checkpoint(args.checkpoint, args.dev)
    except FileNotFoundError as exc:
        raise MecoError(str(exc)) from None
    checkpoint = str(found) if found else None
    inference_size = list(args.inference_size) if args.inference_size else \
        [int(v) for v in _params_value(params_file, "inference_size", [0, 0])]
    if inference_size == [0, 0] and checkpoint:  # the node's rule: the checkpoint's recorded size
        from meco_core.models.checkpoint import load_checkpoint

        inference_size = list(load_checkpoint(checkpoint).get("input_size") or [0, 0])
    backend = "torch" if checkpoint is None else args.backend or _params_value(params_file, "backend", "torch")
    workers = resolve_workers(args.workers or int(_params_value(params_file, "inference_workers", 0)), backend,
                              args.device or _params_value(params_file, "device", "auto"))
    return BenchSetup(checkpoint, params_file, tuple(args.size),
                      tuple(args.size) if inference_size == [0, 0] else tuple(inference_size), backend,
                      resolve_threads(args.threads, backend), workers,
                      checkpoint or f"meco {args.dev_model_config} (RANDOM weights, test/dev mode)")


def run_node(args: argparse.Namespace, setup: BenchSetup, say, extra_topics: dict[str, Any] | None = None,
             camera_info: bool = False, while_running: Callable[[Process, Process, "Viewer"], None] | None = None,
             viewer_topics: tuple[str, ...] = VIEWER_TOPICS) -> tuple[dict[str, Any], Any, "Viewer", int | None]:
    """The node, a camera process and this process's viewer over DDS: (camera summary, last
    stats message, the viewer with everything it received, node exit code).

    viewer_topics: the image outputs the viewer reads (node-bench's --subscribe); extra_topics: more
    outputs the viewer subscribes to ({topic: message type}); camera_info:
    the camera also publishes `camera_info`; while_running(node, camera, viewer) is called
    once the camera has started (e.g. to sample the node while it runs; node-soak)."""
    h, w = setup.camera_size
    domain = random.randint(1, 200) if args.domain_id is None else args.domain_id
    ns = f"/meco_bench_{os.getpid()}"
    ros_args = node_ros_args(setup.params_file, ns, setup.checkpoint, args.dev_model_config, threads=setup.threads,
                             inference_workers=setup.workers,
                             backend=setup.backend, inference_size=setup.bench_size if args.inference_size else None,
                             device=args.device)
    say(f"starting perception_node (ROS_DOMAIN_ID={domain}, namespace {ns}) ...")
    node = start_node(ros_args, ros_env(domain_id=domain, OMP_NUM_THREADS=str(setup.threads)), echo=args.verbose)
    from meco_ros.node.outputs import output_size  # here: sensor_msgs must not load for `meco --help`

    # outputs come at the camera size, or smaller past the params file's output_max_pixels
    out_hw = output_size(h, w, int(_params_value(setup.params_file, "output_max_pixels", 0))) or (h, w)
    viewer = Viewer(ns, domain, out_hw, extra_topics=dict(extra_topics or {}), topics=viewer_topics)
    camera: Process | None = None
    try:
        if not node.wait_for("ready", args.start_timeout):
            raise RuntimeError(f"node not ready within {args.start_timeout} s:\n{node.output[-3000:]}")
        viewer.start()
        deadline = time.monotonic() + 30
        while not viewer.matched() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not viewer.matched():
            raise RuntimeError("viewer did not discover the node's publishers within 30 s")
        say(f"node ready; camera publishing for {args.duration:g} s ...")
        camera = Process([sys.executable, "-m", "meco_ros.bench.bench_camera", "--topic", f"{ns}/image",
                          "--rate", str(args.rate), "--size", f"{h}x{w}", "--encoding", args.encoding,
                          "--duration", str(args.duration), *(["--camera-info", f"{ns}/camera_info"] if camera_info
                                                              else [])],
                         env=ros_env(domain_id=domain, OMP_NUM_THREADS="1"))
        if while_running is not None:
            while_running(node, camera, viewer)
        cam = wait_for_camera_summary(camera, CAMERA_MATCH_TIMEOUT_S + args.duration + 60, say)
        time.sleep(2.0)  # drain: the last frame's outputs
        stats = viewer.stats[-1] if viewer.stats else None
    finally:
        exit_code = node.stop(signal.SIGINT, timeout=30)
        if camera is not None and camera.alive():
            camera.stop(signal.SIGKILL, 5)
        if getattr(viewer, "node", None) is not None:
            viewer.stop()
    return cam, stats, viewer, exit_code


def wait_for_camera_summary(camera: Process, timeout: float, say: Callable[..., None]) -> dict[str, Any]:
    """The camera's JSON summary (every stamp sent); RuntimeError if it failed or printed none in time.

    Its job is done once the summary is out: a camera that then does not exit within 5 s is killed
    and said so, not waited for (under a loaded `make test` one ran past its limit after printing)."""
    if not camera.wait_for('{"', timeout):
        raise RuntimeError(f"camera printed no summary within {timeout:g} s (exit code {camera.popen.poll()}); "
                           f"its output:\n{camera.output[-2000:]}")
    try:
        camera.popen.wait(5.0)
    except subprocess.TimeoutExpired:
        say("camera printed its summary but did not exit within 5 s: killed")
        camera.stop(signal.SIGKILL, 5)
    cam = json.loads(next((ln for ln in reversed(camera.lines) if ln.startswith("{")), "{}") or "{}")
    if "error" in cam or "sent" not in cam:
        raise RuntimeError(f"camera failed: {cam.get('error') or camera.output[-2000:]}")
    return cam


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Raw grid, cost benchmarks, the node run, the raw grid again; then the summary."""
    from meco_ros.bench.costs import benchmark_clouds, benchmark_conversion

    setup = resolve_setup(args)
    h, w = setup.camera_size
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if not args.quiet else (lambda *a: None)
    say(f"node-bench: model {setup.model_label}, backend {setup.backend}, inference {setup.bench_size[0]}x"
        f"{setup.bench_size[1]}, camera {h}x{w} {args.encoding} @ {args.rate:g} Hz best effort, {args.duration:g} s, "
        f"{setup.workers} worker(s) x {setup.worker_threads} thread(s)")
    load_before = os.getloadavg()[0]
    backends = ["torch"] if setup.dev else ["torch", "onnxruntime"]
    thread_counts = sorted({setup.threads, *range(1, (os.cpu_count() or 1) + 1)})
    grid_args = (setup.checkpoint, args.dev_model_config, setup.bench_size, args.device or "auto", args.repeats,
                 backends, thread_counts)
    say(f"raw model FPS (before): {', '.join(backends)} x {thread_counts} threads ...")
    grid_before = raw_grid(*grid_args)
    costs = {"conversion": benchmark_conversion(h, w, n=100), "clouds": benchmark_clouds(h, w, stride=2)}
    cpu: dict[str, Any] = {}

    def sample_cpu(node: Process, camera: Process, viewer: "Viewer") -> None:
        """Where the cores go, over the middle half of the camera's run (after its start-up)."""
        time.sleep(0.3 * args.duration)
        cpu.update(cpu_cores(node.popen.pid, {"camera": camera.popen.pid, "viewer": os.getpid()},
                             0.5 * args.duration))

    cam, stats, viewer, exit_code = run_node(args, setup, say, viewer_topics=args.subscribe,
                                             while_running=sample_cpu)
    say("raw model FPS (after) ...")
    grid = merge_grids(grid_before, raw_grid(*grid_args))
    return summarize(args, setup, grid, costs, cam, stats, viewer, exit_code,
                     [load_before, os.getloadavg()[0]], cpu)


def summarize(args: argparse.Namespace, setup: BenchSetup, grid: list[dict[str, Any]], costs: dict[str, Any],
              cam: dict[str, Any], stats: Any, viewer: "Viewer", exit_code: int | None,
              load: list[float], cpu: dict[str, Any] | None = None) -> dict[str, Any]:
    """Node FPS and latency against both raw references, stage times, CPU by thread, counters and checks."""
    sent_stamps = {tuple(s) for s in cam.get("stamps", [])}
    per_topic = {t: analyse(viewer.received[t]) for t in viewer.topics}
    unknown = sum(1 for t in viewer.topics for r in viewer.received[t] if r[2] not in sent_stamps)
    primary = per_topic["depth"]
    steady = [(t, s) for t, s in zip(viewer.stats_times, viewer.stats) if s.fps > 0]
    stage_means = {key: statistics.mean(getattr(s, key) for _, s in steady) if steady else float("nan")
                   for key in ("convert_ms", "inference_ms", "postprocess_ms", "publish_ms", "latency_ms")}
    best = max(grid, key=lambda r: r["fps"])
    own = next((r for r in grid if r["backend"] == raw_label(setup.backend) and r["threads"] == setup.worker_threads
                and r.get("streams", 1) == setup.workers), None)
    target = 0.85 * min(best["fps"], args.rate)
    ratio = primary["last_p95_ms"] / primary["first_p95_ms"] if primary["first_p95_ms"] else float("nan")
    return {
        "config": {"model": setup.model_label, "dev_mode": setup.dev, "backend": setup.backend,
                   "inference_size": list(setup.bench_size), "camera_size": list(setup.camera_size),
                   "encoding": args.encoding, "rate_hz": args.rate, "duration_s": args.duration,
                   "subscribed": list(viewer.topics),
                   "threads": setup.threads, "workers": setup.workers, "worker_threads": setup.worker_threads,
                   "device": stats.device if stats else None,
                   "params_file": str(setup.params_file), "cpus": os.cpu_count(), "load_avg_1min_before_after": load},
        "raw_model": {"grid": grid, "best": best, "node_config": own},
        **costs,
        "camera": {k: v for k, v in cam.items() if k != "stamps"},
        "node": {"fps": primary["fps"], "latency_ms": primary["latency_ms"],
                 "first_10s_p95_ms": primary["first_p95_ms"], "last_10s_p95_ms": primary["last_p95_ms"],
                 "p95_last_over_first": ratio, "stages_ms": stage_means, "exit_code": exit_code,
                 "queueing_first_last_ms": queueing_first_last(steady)},
        "topics": per_topic,
        "cpu_cores": cpu or None,
        "stats": None if stats is None else {
            "frames_received": stats.frames_received, "frames_processed": stats.frames_processed,
            "frames_dropped": stats.frames_dropped, "frames_invalid": stats.frames_invalid,
            "inference_errors": stats.inference_errors},
        "checks": {
            "fps_ge_0.85x_min(best raw, rate)": bool(primary["fps"] >= target),
            "p95_last_le_1.2x_first": bool(ratio <= 1.2),
            "outputs_have_sent_stamps": bool(unknown == 0 and primary["latency_ms"]["n"] > 0),
            "outputs_right_encoding_size_frame_id": not viewer.problems,
            "conversion_ge_500_fps": bool(costs["conversion"]["frames_per_s"] >= 500),
            "clean_exit": exit_code == 0,
        },
        "problems": viewer.problems[:10] + ([f"{unknown} outputs with unknown stamps"] if unknown else []),
    }


def render(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    c, n, raw, st = result["config"], result["node"], result["raw_model"], result["stats"] or {}
    title = (f"node-bench: {c['model']} | backend {c['backend']} | "
             f"inference {c['inference_size'][0]}x{c['inference_size'][1]} | camera "
             f"{c['camera_size'][0]}x{c['camera_size'][1]} {c['encoding']} @ {c['rate_hz']:g} Hz best effort | "
             f"{c['device']} {c['workers']} worker(s) x {c['worker_threads']} thread(s)")
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    lat = n["latency_ms"]
    best, own = raw["best"], raw["node_config"]
    rows = [(f"raw model FPS {config_label(r)} (before / after)",
             f"{r['fps_before']:.2f} / {r['fps_after']:.2f}") for r in raw["grid"]]
    rows += [
        ("best raw configuration", f"{config_label(best)}: {best['fps']:.2f} FPS"),
        ("node FPS (depth outputs received)", f"{n['fps']:.2f}"),
        ("node FPS / min(best raw, camera rate)", f"{n['fps'] / min(best['fps'], c['rate_hz']):.3f}"),
        (f"node FPS / raw at the node's configuration ({config_label(own) if own else c['backend']})",
         f"{n['fps'] / own['fps']:.3f}" if own else "-"),
        ("latency stamp->receipt p50 / p95 / p99 ms", f"{lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f}"),
        ("latency p95 first 10 s / last 10 s ms", f"{n['first_10s_p95_ms']:.1f} / {n['last_10s_p95_ms']:.1f} "
                                                  f"(x{n['p95_last_over_first']:.2f})"),
        ("queueing (latency - processing) first / last 10 s ms",
         f"{n['queueing_first_last_ms'][0]:.1f} / {n['queueing_first_last_ms'][1]:.1f}"),
        ("node stages ms: convert / inference / post / publish",
         " / ".join(f"{n['stages_ms'][k]:.1f}" for k in ("convert_ms", "inference_ms", "postprocess_ms",
                                                          "publish_ms"))),
        ("CPU cores over the middle half of the run: the node's threads; other processes",
         describe_cpu(result["cpu_cores"]) if result.get("cpu_cores") else "-"),
        ("frames sent by camera", str(result["camera"].get("sent", "?"))),
        ("frames received / processed by node", f"{st.get('frames_received', '?')} / {st.get('frames_processed', '?')}"),
        ("frames dropped (superseded) / invalid / errors",
         f"{st.get('frames_dropped', '?')} / {st.get('frames_invalid', '?')} / {st.get('inference_errors', '?')}"),
        ("outputs received: " + " / ".join(result["topics"]),
         " / ".join(str(t["latency_ms"]["n"]) for t in result["topics"].values())),
        ("image conversion 640x480-class round trip (frames/s)", f"{result['conversion']['frames_per_s']:.0f}"),
        (f"semantic cloud build, {result['clouds']['width']}x{result['clouds']['height']} stride "
         f"{result['clouds']['stride']} ({result['clouds']['points']} points), median ms",
         f"{result['clouds']['median_ms']:.2f}"),
        ("node exit code after SIGINT", str(n["exit_code"])),
        ("machine load average 1 min, before / after (cpus)",
         f"{c['load_avg_1min_before_after'][0]:.2f} / {c['load_avg_1min_before_after'][1]:.2f} ({c['cpus']})"),
    ]
    for r in rows:
        t.add_row(*r)
    for name, ok in result["checks"].items():
        t.add_row(f"check: {name}", "[green]pass[/]" if ok else "[red]FAIL[/]")
    Console(width=max(120, Console().width)).print(t)
    for p in result["problems"]:
        print(f"problem: {p}")


def add_camera_arguments(p: argparse.ArgumentParser, size: tuple[int, int], duration: float) -> None:
    """The camera process's options (node-bench, node-soak): size, rate, encoding, duration."""
    from meco_core.sizes import parse_size

    p.add_argument("--size", type=parse_size, default=size, help=f"camera HxW (default {size[0]}x{size[1]})")
    p.add_argument("--rate", type=float, default=30.0, help="camera rate Hz (default 30)")
    p.add_argument("--encoding", default="rgb8", help="camera encoding (rgb8, bgr8, rgba8, bgra8, mono8, mono16)")
    p.add_argument("--duration", type=float, default=duration, help=f"seconds of camera frames (default {duration:g})")


def add_node_arguments(p: argparse.ArgumentParser) -> None:
    """The node's options (node-bench, node-soak): the model, the params file and its overrides."""
    from meco_core.sizes import parse_size

    p.add_argument("--checkpoint", default=None,
                   help="model checkpoint (default: checkpoints/meco_golf.pt if present, else the test/dev "
                        "random-weight model)")
    p.add_argument("--dev", action="store_true", help="force the random-weight test/dev model")
    p.add_argument("--dev-model-config", default=DEV_MODEL_CONFIG,
                   help=f"model config of the test/dev model (default {DEV_MODEL_CONFIG})")
    p.add_argument("--params-file", default=None, help="node params (default config/golf_cart.yaml)")
    p.add_argument("--inference-size", type=parse_size, default=None,
                   help="override the params file's inference_size (HxW)")
    p.add_argument("--device", default=None, help="override the params file's device")
    p.add_argument("--backend", default=None, choices=BACKENDS, help="override the params file's backend")
    p.add_argument("--threads", type=int, default=0,
                   help="the node's threads (default 0 = the node's auto: all cores but one); node-bench's raw "
                        "bench tries every count from 1 to the CPU count on each backend")
    p.add_argument("--workers", type=int, default=0,
                   help="the node's inference workers (default 0 = the params file's, else the node's auto)")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: random)")
    p.add_argument("--start-timeout", type=float, default=NODE_START_TIMEOUT_S,
                   help="seconds to wait for the node's 'ready'")
    p.add_argument("--verbose", action="store_true", help="echo the node's log")


def _viewer_topics(text: str) -> tuple[str, ...]:
    """--subscribe: 'depth,segmentation' -> ('depth', 'segmentation'), checked against the outputs."""
    try:
        return checked_topics([t.strip() for t in text.split(",") if t.strip()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--subscribe: {exc}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_camera_arguments(p, (480, 640), 20.0)
    add_node_arguments(p)
    p.add_argument("--subscribe", type=_viewer_topics, default=VIEWER_TOPICS,
                   help="image outputs the viewer subscribes to, comma-separated, depth included (default: all four, "
                        "as RViz showing them; depth,segmentation: a navigation stack's share)")
    p.add_argument("--repeats", type=int, default=20, help="raw model bench repeats (default 20)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--quiet", action="store_true")


def _jsonable(o: Any) -> Any:
    """numpy scalars -> Python (json.dumps default)."""
    return o.item() if hasattr(o, "item") else str(o)


def main_from_args(args: argparse.Namespace) -> int:
    result = run(args)
    render(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=_jsonable))
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m meco_ros.bench.node_bench")
    add_arguments(parser)
    sys.exit(main_from_args(parser.parse_args()))
