"""meco perception node: camera image in; depth, segmentation, colour views, stats out.

    perception_node --ros-args --params-file config/golf_cart.yaml [-r __ns:=/camera]

Topics (relative: a namespace or remaps place them): subscribes `image`, optionally
`image/compressed` (topics.image_compressed) and `camera_info` (the intrinsics of the depth:
see below; scaled to depth/camera_info for the clouds); publishes `depth` (32FC1 m,
NaN invalid), `segmentation` (mono8 ids), `segmentation/color` and `depth/color` (rgb8),
`depth/camera_info`, `prediction` (meco_ros/Prediction), `stats` (meco_ros/Stats),
`/diagnostics`, `~/debug/processing_time_ms` and `~/debug/pipeline_latency_ms`
(std_msgs/Float64, Autoware-style), the semantic clouds `points` and `obstacles/points`
(PointCloud2, camera optical frame) and the latched class map `label_map`
(meco_ros/LabelInfo). Every per-frame output carries the input image's header.

Managed (rclpy.lifecycle): configure = validate parameters, load and warm up the model,
create the publishers as rclpy lifecycle publishers (advertised, silent until activated);
activate = enable them (and publish the latched label map), subscriptions, the status
timer; deactivate disables the publishers and removes subscriptions and timers (rclpy
manages publishers only); cleanup releases the model and the publishers. With `autostart` (the default; launch
`managed:=false`) the node configures and activates itself; with `autostart: false` a
lifecycle manager (nav2_lifecycle_manager, `ros2 lifecycle set`) drives it.

Real-time design: the subscription callback validates the message (cheap, zero-copy) and
drops it into a one-slot mailbox; an inference thread always takes the newest frame, so
frames that arrive during inference replace each other (counted as dropped) and no
backlog can form. With the input QoS at KEEP_LAST 1 (the default) a frame leaves DDS only
when an inference thread waits for one (`intake.FrameIntake`: that thread takes it, or the
executor when none has come yet): frames that arrive during inference are replaced in DDS
before Python sees them, and counted as dropped from the publisher's sequence numbers.
With `inference_workers` > 1 (auto: 2 for ONNX Runtime on a multi-core
CPU) several such threads each take the newest frame when free, and a frame finishing
after a newer one is dropped, so outputs stay in stamp order. A publish thread
post-processes and publishes a frame while the next one is inferred (hand-over of at most
one result: still no backlog). Outputs nobody subscribes to are not computed. Model
errors and CUDA out-of-memory are logged (rate-limited) and counted; the node carries on.

Camera: each frame is inferred with the intrinsics (fx=K[0], fy=K[4], cx=K[2], cy=K[5]) of
the newest camera_info when it is for the frame's size (`frames.FrameCamera`); a camera-aware
model (canonical_focal > 0) scales its depth with them. Without one (none yet, another size,
an invalid K, or `use_camera_info: false`) the Estimator's default camera applies; ignored
camera_infos are counted and warned about once per change. /diagnostics reports the camera
in use ("camera", "camera_info ignored", "depth scale", "canonical focal px").

Test/dev mode: `checkpoint:=''` with `model:=meco` (and a small `model_config`) runs a
random-weight model, loudly flagged as UNTRAINED; only for tests and pipeline checks.
Parameters and which of them change at run time: meco_ros/params.py and
config/golf_cart.yaml.
"""
from __future__ import annotations

import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float64

from meco_core.defaults import NODE_ORT_SPIN, PUBLISH_THREAD_NICE
from meco_core.inference import Estimator, RawOutput
from meco_core.stamps import stamp_to_ns

from . import outputs as out
from . import params
from .frames import Frame, FrameCamera, InvalidFrame, frame_to_rgb
from .intake import FrameIntake
from meco_ros.dds_shm import STALE_CHECK_PERIOD_S, remove_stale_segments
from meco_ros.package_paths import find_package_checkpoint
from .monitoring import PipelineStats, RateLimitedLog, diagnostic_status
from .publishing import NEEDS_DEPTH, NEEDS_LABELS, OutputPublishers, StatusPublishers, class_ids
from .qos import make_qos
from .process_guards import (exit_if_teardown_hangs, exit_without_dds_teardown, limit_malloc_arenas,
                             return_freed_memory)
from .worker import Mailbox, Stage, name_native_thread

NODE_NAME = "perception_node"
GIL_SWITCH_INTERVAL_S = 0.0001


@dataclass
class Pending:
    """A frame between the stages: its network outputs, waiting to be post-processed and published."""

    frame: Frame
    rgb: np.ndarray
    raw: RawOutput
    wanted: set[str]
    started: float  # perf_counter when stage 1 took the frame
    camera_info: Any = None  # the camera_info of this image (None: none for its size)


class StartupError(RuntimeError):
    """The node cannot start (missing checkpoint, unavailable device, bad parameters)."""


# rclpy LifecycleNode's services (private names, rclpy 10 / Kilted), destroyed with the node.
LIFECYCLE_SERVICES = ("_service_change_state", "_service_get_state", "_service_get_available_states",
                      "_service_get_available_transitions", "_service_get_transition_graph")


class PerceptionNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._num_classes: int | None = None
        self.estimator: Estimator | None = None
        self.cfg: params.NodeConfig | None = None  # the run-time parameters (replaced whole on every set)
        self.outputs: OutputPublishers | None = None  # managed publishers: configure .. cleanup
        self.status: StatusPublishers | None = None
        self.stages: list[Stage] = []
        self.results: Mailbox[Pending] | None = None  # inferred frame -> post-processing and publishing
        self._inputs: list[Any] = []  # subscriptions: activate .. deactivate
        self.intake: FrameIntake | None = None  # camera messages -> its mailbox -> inference: configure .. cleanup
        self._frame_wanted = self.create_guard_condition(lambda: None)  # a worker waits: wake the executor
        self._input_topics: list[str] = []
        # not `_timers`: rclpy's Node keeps its own timers there, and overwriting that list made
        # the executor forget every other timer of the node (they never fired)
        self._activation_timers: list[Any] = []
        self._active = False
        self._config_lock = threading.Lock()
        self._workers = 1
        self._applied_cfg: params.NodeConfig | None = None  # the config the inference thread runs with
        self._lut: np.ndarray | None = None  # palette of segmentation/color
        self._last_published = float("-inf")  # receipt time of the newest frame out (publish thread only)
        self.stats = PipelineStats()
        self.warn = RateLimitedLog(self.get_logger().warning, 5.0)
        # rclpy fixes a severity per call site, and RateLimitedLog emits from one line: info goes
        # through a call site of its own (this lambda), not through the one `warn` uses.
        self.note = RateLimitedLog(lambda msg: self.get_logger().info(msg), 5.0)
        self.camera = FrameCamera(self.warn, self.note)  # camera_info -> the intrinsics of each frame
        self._depth_scale = 1.0  # of the newest inferred frame (diagnostics)
        self.add_on_set_parameters_callback(self._validate)
        try:
            params.declare_all(self)
        except Exception as exc:  # InvalidParameterValueException / type mismatch from the params file
            raise StartupError(f"invalid parameters: {exc}") from exc
        self.add_post_set_parameters_callback(self._apply)
        self._stale_dds_segments = 0  # Fast DDS segments of dead processes removed (diagnostics)
        self._janitor_stop = threading.Event()
        self._remove_stale_dds_segments()
        threading.Thread(target=self._dds_janitor, name="meco-dds-janitor", daemon=True).start()

    def _remove_stale_dds_segments(self) -> None:
        """Free the /dev/shm segments that killed DDS processes (a restarted camera driver,
        this node's earlier self) left behind: RAM nothing else would free (meco_ros.dds_shm)."""
        removed = remove_stale_segments()
        if removed.segments:
            self._stale_dds_segments += removed.segments
            self.get_logger().warning(str(removed))

    def destroy_node(self) -> None:
        """Also what rclpy's LifecycleNode.destroy_node leaves: its state machine and lifecycle
        services hold the node's handle, so the context (the DDS participant and its /dev/shm
        segments, 143 MB measured) outlived the node until interpreter finalization, which
        `run` skips: every clean stop left its segments behind."""
        self._janitor_stop.set()
        for name in LIFECYCLE_SERVICES:
            service = getattr(self, name, None)
            if service is not None:
                service.destroy()
        state_machine = getattr(self, "_state_machine", None)
        if state_machine is not None:
            state_machine.destroy_when_not_in_use()
        super().destroy_node()

    def _dds_janitor(self) -> None:
        """Every STALE_CHECK_PERIOD_S for the node's life, unconfigured included, on a thread of
        its own: it runs even while the executor is busy in a long transition (a model load)."""
        name_native_thread("meco-dds-janitor")
        while not self._janitor_stop.wait(STALE_CHECK_PERIOD_S):
            try:
                self._remove_stale_dds_segments()
            except Exception as exc:  # noqa: BLE001 - e.g. logging after shutdown: the janitor just ends
                sys.stderr.write(f"dds janitor stopped: {exc!r}\n")
                return

    # ---- lifecycle transitions ----
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters, load the model, warm it up on the inference thread; create the
        publishers (rclpy lifecycle publishers: they publish only while the node is active)."""
        try:
            self._configure()
        except StartupError as exc:
            self.get_logger().fatal(str(exc))
            self._release()
            return TransitionCallbackReturn.FAILURE
        param = lambda n: self.get_parameter(n).value  # noqa: E731
        self.outputs = OutputPublishers(self, param, self.estimator.class_set)
        self.status = StatusPublishers(self, param)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the publishers (then the latched label map), subscriptions, the status timer."""
        result = super().on_activate(state)  # enables the managed publishers
        self.outputs.publish_label_map(self.cfg.palette)
        self._create_subscriptions()
        period = float(self.get_parameter("stats_period").value)
        self._activation_timers = [self.create_timer(period, self._publish_status)]
        self._active = True
        d = self.estimator.describe()
        self.get_logger().info(
            f"ready: model {d['model']} on {d['device']} (backend {d['backend']}, {d['precision']}, "
            f"inference size {d['inference_size']}, {self.cfg.threads or d['threads']} threads); listening on "
            f"{', '.join(self._input_topics)}; depth camera: {self._camera_source()}")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self.get_logger().info("deactivated: no subscriptions, publishers disabled")
        return super().on_deactivate(state)  # disables the managed publishers

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        if not (self.get_parameter("topics.image").value or self.get_parameter("topics.image_compressed").value):
            raise StartupError("no input: topics.image and topics.image_compressed are both ''")
        self.estimator = self._build_estimator()
        class_set = self.estimator.class_set
        self._num_classes = class_set.num_classes
        if not self.has_parameter("palette"):
            params.declare_palette(self, class_set.colors)
        self.cfg = params.NodeConfig.from_node(self)
        self.warn.period = self.note.period = self.cfg.log_throttle
        _, unknown = class_ids(class_set, self.cfg.obstacle_classes)
        if unknown:
            self.get_logger().warning(f"cloud.obstacle_classes {unknown} are not classes of this model "
                                      f"({', '.join(class_set.names)}): left out of obstacles/points")
        self._lut = out.palette_lut(self.cfg.palette)
        self._applied_cfg = None
        self.intake = FrameIntake(self.stats, lambda: self.cfg.min_image_size, self._invalid, self._frame_wanted.trigger,
                                  self.get_logger().error)
        self.results = Mailbox()
        self._last_published = float("-inf")
        inference = [Stage(self.intake.mailbox, self._infer, self._worker_error, f"meco-infer-{i}", init=self._warmup)
                     for i in range(self._workers)]
        self.stages = [*inference, Stage(self.results, self._finish, self._worker_error, "meco-publish",
                                         nice=PUBLISH_THREAD_NICE)]
        for stage in self.stages:
            stage.start()
        for worker in inference:
            while not worker.ready.wait(1.0) and worker.is_alive():
                pass  # warm-up time depends on model and device: no fixed limit, but never past a dead thread
            if worker.init_error is not None or not worker.ready.is_set():
                raise StartupError(f"warm-up failed: {worker.init_error!r}")

    def _deactivate(self) -> None:
        """Subscriptions and timers go (rclpy manages only publishers); in-flight frames still
        finish, their publishing is a no-op once the publishers are disabled."""
        self._active = False
        if self.intake is not None:
            self.intake.subscriptions = []
        for sub in self._inputs:
            self.destroy_subscription(sub)
        for timer in self._activation_timers:
            self.destroy_timer(timer)
        self._inputs, self._activation_timers = [], []

    def _release(self) -> None:
        """Stop the stages (the frame in progress finishes), then the publishers and the model."""
        self.close()
        if self.outputs is not None:
            self.outputs.destroy()
        if self.status is not None:
            self.status.destroy()
        self.stages, self.estimator, self.outputs, self.status = [], None, None, None
        return_freed_memory()

    # ---- setup ----
    def _build_estimator(self) -> Estimator:
        p = lambda n: self.get_parameter(n).value  # noqa: E731
        checkpoint, model = p("checkpoint"), p("model")
        path = None
        if checkpoint:
            path = find_package_checkpoint(checkpoint)
            if path is None:
                raise StartupError(
                    f"checkpoint not found: {checkpoint!r} (tried the working directory, the meco_ros share "
                    "directory and the source tree). Train one (meco train) or, for a test/dev run with a "
                    "RANDOM-weight model, set checkpoint:='' model:=meco")
        elif not model:
            raise StartupError("checkpoint is '' and model is '': nothing to run. Set a checkpoint, or model:=meco "
                               "for the test/dev mode with random weights")
        backend = p("backend")
        if not checkpoint and backend != "torch":
            self.get_logger().warning(f"test/dev mode: the random-weight model runs on backend torch, not {backend}")
            backend = "torch"
        device = str(p("device"))
        self._workers = params.resolve_workers(int(p("inference_workers")), backend, device)
        threads = params.worker_threads(params.resolve_threads(int(p("threads")), backend), self._workers)
        try:
            est = Estimator(str(path) if path else None, device=device, precision=p("precision"),
                            inference_size=list(p("inference_size")), threads=threads,
                            model_name=model or None, model_config=params.parse_model_config(p("model_config")),
                            upsample=p("upsample"), compile=bool(p("compile")), backend=backend,
                            min_island_fraction=float(p("min_island_fraction")),
                            backend_fallback=bool(p("backend_fallback")),
                            engine_cache_dir=p("engine_cache_dir") or None,
                            ort_spin=NODE_ORT_SPIN,
                            warn=self.get_logger().warning)  # e.g. the UNTRAINED warning, in the ROS log
        except Exception as exc:  # device unavailable, checkpoint unreadable, bad model config
            raise StartupError(f"cannot build the model: {exc}") from exc
        self.get_logger().info(f"inference: {self._workers} worker(s) x {threads} thread(s) on {est.device_label}")
        return est

    def _create_subscriptions(self) -> None:
        p = lambda n: self.get_parameter(n).value  # noqa: E731
        qos = make_qos(p("qos.input.reliability"), p("qos.input.depth"))
        # KEEP_LAST 1: frames are taken only while a worker waits (intake.py); a deeper queue
        # would hand over its oldest frame then, so it is drained into the mailbox as it comes
        intake = self.intake
        gate = intake.gate() if qos.depth == 1 else None
        frames = []
        self._input_topics = []
        if p("topics.image"):
            frames.append(self.create_subscription(Image, p("topics.image"), intake.on_image, qos,
                                                   callback_group=gate))
            self._input_topics.append(self.resolve_topic_name(p("topics.image")))
        if p("topics.image_compressed"):
            frames.append(self.create_subscription(CompressedImage, p("topics.image_compressed"),
                                                   intake.on_compressed, qos, callback_group=gate))
            self._input_topics.append(self.resolve_topic_name(p("topics.image_compressed")))
        self._inputs.extend(frames)
        intake.subscriptions = frames if gate is not None else []
        if p("topics.camera_info"):
            self._inputs.append(self.create_subscription(CameraInfo, p("topics.camera_info"), self._on_camera_info,
                                                         qos))

    def _camera_source(self) -> str:
        """Where the depth's intrinsics come from, in words (the activation log line)."""
        focal = self.estimator.canonical_focal
        model = f"canonical focal {focal:g} px" if focal > 0 else "canonical_focal 0: intrinsics unused"
        topic = self.get_parameter("topics.camera_info").value
        if not self.cfg.use_camera_info or not topic:
            why = "use_camera_info is false" if topic else "topics.camera_info is ''"
            return f"the default camera ({why}; {model})"
        return (f"{self.resolve_topic_name(topic)} when it is for the image's size, else the default camera "
                f"({model})")

    def _warmup(self) -> None:
        """Init of the inference thread: its torch thread count, then warm-up frames on it."""
        self._apply_runtime_config()
        n = int(self.get_parameter("warmup_iterations").value)
        if n:
            times = self.estimator.warmup(n)
            self.get_logger().info(f"warm-up: {n} frames, last {times[-1]:.0f} ms")

    # ---- parameters ----
    def _validate(self, parameters: list[Parameter]):
        estimator = getattr(self, "estimator", None)
        return params.validate(parameters, self._num_classes, estimator.fixed_settings() if estimator else None)

    def _apply(self, parameters: list[Parameter]) -> None:
        if self.estimator is None:
            return  # not configured: on_configure reads every parameter
        self.cfg = params.NodeConfig.from_node(self)  # the stages pick it up on their next frame
        self.warn.period = self.note.period = self.cfg.log_throttle
        if any(p.name == "palette" for p in parameters) and self.outputs is not None:
            self.outputs.publish_label_map(self.cfg.palette)  # the latched map follows the colours (when active)
        self.get_logger().info("parameters changed: " + ", ".join(f"{p.name}={p.value}" for p in parameters))

    # ---- input (executor thread; camera frames: intake.FrameIntake) ----
    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera.info = msg  # checked against each frame's size on the inference thread

    def _invalid(self, exc: InvalidFrame) -> None:
        self.stats.count("invalid", case=exc.case)
        self.warn(f"invalid:{exc.case}", f"invalid input image ({exc.case}): {exc}; frame skipped")

    # ---- inference thread ----
    def _wanted(self) -> set[str]:
        outputs = self.outputs
        return outputs.wanted(self.cfg.outputs) if outputs is not None and self._active else set()

    def _apply_runtime_config(self) -> None:
        """Push a new NodeConfig to the estimator, torch and the palette LUT.

        Called per frame on the inference thread, but a no-op until `_apply` builds a new
        config (already validated by the set-parameter callback)."""
        cfg = self.cfg
        if cfg is not self._applied_cfg:
            with self._config_lock:  # several inference workers may see the new config at once
                if cfg is not self._applied_cfg:
                    self.estimator.configure(precision=cfg.precision, inference_size=cfg.inference_size,
                                             upsample=cfg.upsample)
                    self._lut = out.palette_lut(cfg.palette)
                    self._applied_cfg = cfg
        if cfg.threads and self.estimator.backend == "torch":
            import torch

            threads = params.worker_threads(cfg.threads, self._workers)
            if torch.get_num_threads() != threads:  # per thread (OpenMP): set on each inference thread
                torch.set_num_threads(threads)

    def _infer(self, frame: Frame) -> None:
        """Stage 1 (inference thread): newest frame -> network outputs, handed to stage 2."""
        cfg = self.cfg
        t0 = time.perf_counter()
        if cfg.max_frame_age and time.monotonic() - frame.received > cfg.max_frame_age:
            self.stats.count("stale")
            return
        wanted = self._wanted()
        if not wanted:
            self.stats.count("skipped")
            return
        try:
            rgb = frame_to_rgb(frame, cfg.min_image_size)
        except InvalidFrame as exc:
            self._invalid(exc)
            return
        convert_ms = (time.perf_counter() - t0) * 1e3
        self._apply_runtime_config()
        out_size = self.estimator.inference_size if cfg.output_resolution == "inference" \
            else out.output_size(rgb.shape[0], rgb.shape[1], cfg.output_max_pixels)
        need_depth, need_labels = bool(wanted & NEEDS_DEPTH), bool(wanted & NEEDS_LABELS)
        intrinsics, info = self.camera.of_frame(rgb.shape[0], rgb.shape[1], cfg.use_camera_info)
        try:
            raw = self.estimator.infer(rgb, need_depth, need_labels, out_size, intrinsics=intrinsics)
        except Exception as exc:  # noqa: BLE001 - a bad frame or OOM must not end perception
            self._model_error(exc)
            return
        self._depth_scale = raw.depth_scale
        raw.timings["convert"] += convert_ms
        if not self.results.put_wait(Pending(frame, rgb, raw, wanted, t0, info), timeout=10.0):
            if not self.results.closed:
                self.stats.count("dropped")

    def _finish(self, job: "Pending") -> None:
        """Stage 2 (publish thread): post-process and publish one frame, record its timings.
        With several inference workers a frame can finish after a newer one: it is dropped,
        so outputs never go back in time."""
        if job.frame.received < self._last_published:
            self.stats.count("dropped")
            return
        try:
            pred = self.estimator.postprocess(job.raw)
        except Exception as exc:  # noqa: BLE001
            self._model_error(exc)
            return
        if pred.nonfinite:
            self.stats.count("nonfinite")
            self.warn("nonfinite", f"model output has {pred.nonfinite} NaN/inf values; published as invalid "
                                   "(depth NaN, label 255)")
        t_pub = time.perf_counter()
        if not self._active or self.outputs is None:
            return  # deactivated while this frame was in flight
        self.outputs.publish_frame(job.frame.header, job.rgb, pred, job.wanted, self.cfg, self._lut,
                                   self.cfg.max_depth or self.estimator.max_depth, job.camera_info, self.warn)
        t_end = time.perf_counter()
        self._last_published = job.frame.received
        latency_ms = self._latency_ms(job.frame)
        stages = {**pred.timings, "publish": (t_end - t_pub) * 1e3}
        self.stats.record(latency_ms, stages)
        if self.cfg.outputs["debug"] and self._active:
            self.status.processing_ms.publish(Float64(data=(t_end - job.started) * 1e3))
            self.status.latency_ms.publish(Float64(data=latency_ms))

    def _latency_ms(self, frame: Frame) -> float:
        """Header stamp -> now on the node's clock; receipt -> now for unstamped images."""
        stamp = frame.header.stamp
        stamp_ns = stamp_to_ns(stamp)
        if stamp_ns == 0:
            return (time.monotonic() - frame.received) * 1e3
        return (self.get_clock().now().nanoseconds - stamp_ns) / 1e6

    def _model_error(self, exc: Exception) -> None:
        import torch

        self.stats.count("errors")
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            self.stats.count("oom")
            self.estimator.recover()
            self.warn("oom", f"CUDA out of memory, frame skipped (lower inference_size or use fp16): {exc}")
        else:
            self.warn("model", f"inference failed, frame skipped: {type(exc).__name__}: {exc}")

    def _worker_error(self, exc: BaseException) -> None:
        """Anything escaping a stage (e.g. publishing during shutdown)."""
        if rclpy.ok(context=self.context):
            self.stats.count("errors")
            self.warn("worker", f"frame processing failed: {type(exc).__name__}: {exc}")

    # ---- status (executor thread, timer) ----
    def _publish_status(self) -> None:
        w = self.stats.roll()
        now = self.get_clock().now().to_msg()
        d = self.estimator
        s = self.status.stats_type()
        s.header.stamp = now
        s.fps, s.latency_ms = w["fps"], w["latency_ms"]
        s.convert_ms, s.inference_ms = w["stages_ms"]["convert"], w["stages_ms"]["inference"]
        s.postprocess_ms, s.publish_ms = w["stages_ms"]["postprocess"], w["stages_ms"]["publish"]
        s.frames_received, s.frames_processed = w["received"], w["processed"]
        s.frames_dropped, s.frames_invalid, s.inference_errors = w["dropped"], w["invalid"], w["errors"]
        s.device, s.model, s.precision = d.device_label, d.model_name, self.cfg.precision
        self.status.stats.publish(s)
        extra = {"model": d.model_name, "precision": self.cfg.precision,
                 "inference size": str(list(d.inference_size) if d.inference_size else "input"),
                 "camera": self.camera.status, "camera_info ignored": str(self.camera.ignored),
                 "depth scale": f"{self._depth_scale:.6g}",
                 "stale DDS segments removed": str(self._stale_dds_segments),
                 "canonical focal px": f"{d.canonical_focal:g}" if d.canonical_focal > 0
                 else "0 (depth in metres of the training camera: intrinsics unused)"}
        status = diagnostic_status(f"{self.get_fully_qualified_name()}: perception", d.device_label, w,
                                   self._active, d.untrained, self.cfg.max_latency_ms, self.cfg.min_fps, extra)
        self.status.diagnostics.publish(DiagnosticArray(header=s.header, status=[status]))

    def close(self) -> None:
        """Stop both stages (the frame in progress finishes) before the publishers go away."""
        for stage in getattr(self, "stages", []):
            if not stage.stop(timeout=10.0):
                self.get_logger().warning(f"{stage.name} thread did not stop within 10 s")


def main(args: list[str] | None = None) -> int:
    """Console script: spin until Ctrl-C / SIGTERM; exit code 0 on a clean stop, 1 if an
    autostarted node cannot configure (the reason is logged)."""
    # The inference thread needs the GIL between torch ops; with the executor and the
    # publishing thread running Python, the default 5 ms switch interval stalls it.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    limit_malloc_arenas()
    rclpy.init(args=args)
    node: PerceptionNode | None = None
    code = 0
    try:
        node = PerceptionNode()
        if node.get_parameter("autostart").value:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise StartupError("configure failed (see the error above)")
            node.trigger_activate()
        else:
            node.get_logger().info("unconfigured: waiting for lifecycle transitions (autostart is false)")
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except StartupError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(exc))
        code = 1
    except Exception:
        if rclpy.ok():  # a real failure, not a signal arriving during start-up
            code = 1
            raise
    finally:
        exit_if_teardown_hangs(code, NODE_NAME)
        if node is not None:
            node.close()  # the frame in progress finishes and is published
        # The node and its DDS participant are not destroyed: `run` ends the process right after,
        # without Fast DDS's participant teardown, which can hang (`exit_without_dds_teardown`).
    return code


def run() -> NoReturn:
    """Console script (`perception_node`, lib/meco_ros/perception_node): `main`, then leave
    at once with its exit code, its shared memory unlinked and no DDS teardown to hang in
    (`exit_without_dds_teardown`)."""
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported like an uncaught exception, then exit 1
        traceback.print_exc()
        code = 1
    exit_without_dds_teardown(code)


if __name__ == "__main__":
    run()
