"""meco perception node: camera image in; depth, segmentation, colour views, stats out.

    perception_node --ros-args --params-file config/golf_cart.yaml [-r __ns:=/camera]

Topics (relative: a namespace or remaps place them): subscribes `image`, optionally
`image/compressed` (topics.image_compressed) and `camera_info`; publishes `depth` (32FC1 m,
NaN invalid), `segmentation` (mono8 ids), `segmentation/color` and `depth/color` (rgb8),
`depth/camera_info`, `prediction` (meco_ros/Prediction), `stats` (meco_ros/Stats),
`/diagnostics`, `~/debug/processing_time_ms` and `~/debug/pipeline_latency_ms`
(std_msgs/Float64, Autoware-style). Every output carries the input image's header.

Real-time design: the subscription callback validates the message (cheap, zero-copy) and
drops it into a one-slot mailbox; an inference thread always takes the newest frame, so
frames that arrive during inference replace each other (counted as dropped) and no
backlog can form. A second thread post-processes and publishes a frame while the next
one is inferred (hand-over of at most one result: still no backlog). Outputs nobody
subscribes to are not computed. Model errors and CUDA
out-of-memory are logged (rate-limited) and counted; the node carries on.

Test/dev mode: `checkpoint:=''` with `model:=meco` (and a small `model_config`) runs a
random-weight model, loudly flagged as UNTRAINED; only for tests and pipeline checks.
Parameters and which of them change at run time: meco_ros/params.py and
config/golf_cart.yaml.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float64

from meco_core.inference import Estimator, RawOutput, find_checkpoint

from . import outputs as out
from . import params
from .frames import Frame, InvalidFrame, check_raw, frame_to_rgb
from .monitoring import PipelineStats, RateLimitedLog, diagnostic_status
from .qos import make_qos, status_qos
from .worker import Mailbox, Stage

NODE_NAME = "perception_node"
GIL_SWITCH_INTERVAL_S = 0.0001
IMAGE_OUTPUTS = ("depth", "segmentation", "segmentation_color", "depth_color", "prediction")


@dataclass
class Pending:
    """A frame between the stages: its network outputs, waiting to be post-processed and published."""

    frame: Frame
    rgb: np.ndarray
    raw: RawOutput
    wanted: set[str]
    started: float  # perf_counter when stage 1 took the frame


class StartupError(RuntimeError):
    """The node cannot start (missing checkpoint, unavailable device, bad parameters)."""


def _share_dir() -> tuple:
    try:
        from ament_index_python.packages import get_package_share_directory
        from pathlib import Path

        return (Path(get_package_share_directory("meco_ros")),)
    except Exception:  # noqa: BLE001 - not installed as an ament package: source tree only
        return ()


class PerceptionNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._num_classes: int | None = None
        self.add_on_set_parameters_callback(self._validate)
        try:
            params.declare_all(self)
        except Exception as exc:  # InvalidParameterValueException / type mismatch from the params file
            raise StartupError(f"invalid parameters: {exc}") from exc
        if not (self.get_parameter("topics.image").value or self.get_parameter("topics.image_compressed").value):
            raise StartupError("no input: topics.image and topics.image_compressed are both ''")
        self.estimator = self._build_estimator()
        self._num_classes = self.estimator.class_set.num_classes
        params.declare_palette(self, self.estimator.class_set.colors)
        self.cfg = params.NodeConfig.from_node(self)
        self.add_post_set_parameters_callback(self._apply)
        self.stats = PipelineStats()
        self.warn = RateLimitedLog(self.get_logger().warning, self.cfg.log_throttle)
        self._camera_info: CameraInfo | None = None
        self._applied_cfg: params.NodeConfig | None = None  # the config the inference thread runs with
        self._lut = out.palette_lut(self.cfg.palette)
        self._ready = False
        self._create_publishers()
        self.mailbox: Mailbox[Frame] = Mailbox()
        self.results: Mailbox[Pending] = Mailbox()
        self.stages = [Stage(self.mailbox, self._infer, self._worker_error, "meco-inference", init=self._warmup),
                       Stage(self.results, self._finish, self._worker_error, "meco-publish")]
        for stage in self.stages:
            stage.start()
        inference = self.stages[0]
        while not inference.ready.wait(1.0) and inference.is_alive():
            pass  # warm-up time depends on model and device: no fixed limit, but never past a dead thread
        if inference.init_error is not None or not inference.ready.is_set():
            raise StartupError(f"warm-up failed: {inference.init_error!r}")
        self._create_subscriptions()
        period = float(self.get_parameter("stats_period").value)
        self.create_timer(period, self._publish_status)
        self._ready = True
        d = self.estimator.describe()
        threads = self.cfg.threads or d["threads"]
        self.get_logger().info(
            f"ready: model {d['model']} on {d['device']} (backend {d['backend']}, {d['precision']}, "
            f"inference size {d['inference_size']}, "
            f"{threads} threads); listening on {', '.join(self._input_topics)}")

    # ---- setup ----
    def _build_estimator(self) -> Estimator:
        p = lambda n: self.get_parameter(n).value  # noqa: E731
        checkpoint, model = p("checkpoint"), p("model")
        path = None
        if checkpoint:
            path = find_checkpoint(checkpoint, _share_dir())
            if path is None:
                raise StartupError(
                    f"checkpoint not found: {checkpoint!r} (tried the working directory, the meco_ros share "
                    "directory and the source tree). Train one (meco train) or, for a test/dev run with a "
                    "RANDOM-weight model, set checkpoint:='' model:=meco")
        elif not model:
            raise StartupError("checkpoint is '' and model is '': nothing to run. Set a checkpoint, or model:=meco "
                               "for the test/dev mode with random weights")
        try:
            est = Estimator(str(path) if path else None, device=p("device"), precision=p("precision"),
                            inference_size=list(p("inference_size")),
                            threads=params.resolve_threads(int(p("threads")), p("backend")),
                            model_name=model or None, model_config=params.parse_model_config(p("model_config")),
                            upsample=p("upsample"), compile=bool(p("compile")), backend=p("backend"),
                            backend_fallback=bool(p("backend_fallback")),
                            engine_cache_dir=p("engine_cache_dir") or None,
                            ort_spin=False)  # its other threads need the cores (params.resolve_threads)
        except Exception as exc:  # device unavailable, checkpoint unreadable, bad model config
            raise StartupError(f"cannot build the model: {exc}") from exc
        if est.untrained:
            self.get_logger().warning(
                f"UNTRAINED MODEL: checkpoint is '' so '{model}' was built with RANDOM "
                "weights (test/dev mode). Depth and segmentation are meaningless!")
        return est

    def _create_publishers(self) -> None:
        p = lambda n: self.get_parameter(n).value  # noqa: E731
        qos = make_qos(p("qos.output.reliability"), p("qos.output.depth"))
        self.pubs = {
            "depth": self.create_publisher(Image, p("topics.depth"), qos),
            "segmentation": self.create_publisher(Image, p("topics.segmentation"), qos),
            "segmentation_color": self.create_publisher(Image, p("topics.segmentation_color"), qos),
            "depth_color": self.create_publisher(Image, p("topics.depth_color"), qos),
            "depth_camera_info": self.create_publisher(CameraInfo, p("topics.depth_camera_info"), qos),
        }
        from meco_ros.msg import Prediction, Stats  # generated: tools/build_msgs.sh or colcon

        self._prediction_type = Prediction
        self._stats_type = Stats
        self.pubs["prediction"] = self.create_publisher(Prediction, p("topics.prediction"), qos)
        self.stats_pub = self.create_publisher(Stats, p("topics.stats"), status_qos())
        self.diag_pub = self.create_publisher(DiagnosticArray, p("topics.diagnostics"), status_qos())
        self.debug_pubs = {
            "processing": self.create_publisher(Float64, "~/debug/processing_time_ms", status_qos()),
            "latency": self.create_publisher(Float64, "~/debug/pipeline_latency_ms", status_qos()),
        }

    def _create_subscriptions(self) -> None:
        p = lambda n: self.get_parameter(n).value  # noqa: E731
        qos = make_qos(p("qos.input.reliability"), p("qos.input.depth"))
        self._input_topics = []
        if p("topics.image"):
            self.create_subscription(Image, p("topics.image"), self._on_image, qos)
            self._input_topics.append(self.resolve_topic_name(p("topics.image")))
        if p("topics.image_compressed"):
            self.create_subscription(CompressedImage, p("topics.image_compressed"), self._on_compressed, qos)
            self._input_topics.append(self.resolve_topic_name(p("topics.image_compressed")))
        if p("topics.camera_info"):
            self.create_subscription(CameraInfo, p("topics.camera_info"), self._on_camera_info, qos)

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
        self.cfg = params.NodeConfig.from_node(self)  # the stages pick it up on their next frame
        self.warn.period = self.cfg.log_throttle
        self.get_logger().info("parameters changed: " + ", ".join(f"{p.name}={p.value}" for p in parameters))

    # ---- input (executor thread) ----
    def _on_image(self, msg: Image) -> None:
        self.stats.count("received")
        try:
            view = check_raw(msg, self.cfg.min_image_size)
        except InvalidFrame as exc:
            self._invalid(exc)
            return
        self._enqueue(Frame(msg, False, view))

    def _on_compressed(self, msg: CompressedImage) -> None:
        self.stats.count("received")
        if len(msg.data) == 0:
            self._invalid(InvalidFrame("compressed", f"compressed image ({msg.format!r}) has no data"))
            return
        self._enqueue(Frame(msg, True))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _enqueue(self, frame: Frame) -> None:
        if self.mailbox.put(frame) is not None:
            self.stats.count("dropped")

    def _invalid(self, exc: InvalidFrame) -> None:
        self.stats.count("invalid", case=exc.case)
        self.warn(f"invalid:{exc.case}", f"invalid input image ({exc.case}): {exc}; frame skipped")

    # ---- inference thread ----
    def _wanted(self) -> set[str]:
        on = self.cfg.outputs
        return {k for k in IMAGE_OUTPUTS if on[k] and self.pubs[k].get_subscription_count() > 0}

    def _apply_runtime_config(self) -> None:
        """Push a new NodeConfig to the estimator, torch and the palette LUT.

        Called per frame on the inference thread, but a no-op until `_apply` builds a new
        config (already validated by the set-parameter callback)."""
        cfg = self.cfg
        if cfg is self._applied_cfg:
            return
        self.estimator.configure(precision=cfg.precision, inference_size=cfg.inference_size, upsample=cfg.upsample)
        if cfg.threads:
            import torch

            if torch.get_num_threads() != cfg.threads:  # per thread (OpenMP): called on the inference thread
                torch.set_num_threads(cfg.threads)
        self._lut = out.palette_lut(cfg.palette)
        self._applied_cfg = cfg

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
        out_size = self.estimator.inference_size if cfg.output_resolution == "inference" else None
        need_depth = bool(wanted & {"depth", "depth_color", "prediction"})
        need_labels = bool(wanted & {"segmentation", "segmentation_color", "prediction"})
        try:
            raw = self.estimator.infer(rgb, need_depth, need_labels, out_size)
        except Exception as exc:  # noqa: BLE001 - a bad frame or OOM must not end perception
            self._model_error(exc)
            return
        raw.timings["convert"] += convert_ms
        if not self.results.put_wait(Pending(frame, rgb, raw, wanted, t0), timeout=10.0):
            if not self.results.closed:
                self.stats.count("dropped")

    def _finish(self, job: "Pending") -> None:
        """Stage 2 (publish thread): post-process and publish one frame, record its timings."""
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
        self._publish(job.frame, job.rgb, pred, job.wanted)
        t_end = time.perf_counter()
        latency_ms = self._latency_ms(job.frame)
        stages = {**pred.timings, "publish": (t_end - t_pub) * 1e3}
        self.stats.record(latency_ms, stages)
        if self.cfg.outputs["debug"]:
            self.debug_pubs["processing"].publish(Float64(data=(t_end - job.started) * 1e3))
            self.debug_pubs["latency"].publish(Float64(data=latency_ms))

    def _latency_ms(self, frame: Frame) -> float:
        """Header stamp -> now on the node's clock; receipt -> now for unstamped images."""
        stamp = frame.header.stamp
        stamp_ns = stamp.sec * 1_000_000_000 + stamp.nanosec
        if stamp_ns == 0:
            return (time.monotonic() - frame.received) * 1e3
        return (self.get_clock().now().nanoseconds - stamp_ns) / 1e6

    def _publish(self, frame: Frame, rgb: np.ndarray, pred, wanted: set[str]) -> None:
        header, cfg = frame.header, self.cfg
        max_depth = cfg.max_depth or self.estimator.max_depth
        msgs: dict[str, Any] = {}
        depth = pred.depth_m
        if depth is not None:
            if cfg.max_depth:
                depth[depth > cfg.max_depth] = np.inf  # REP 118: too far
            if wanted & {"depth", "prediction"}:
                msgs["depth"] = out.image_msg(depth, "32FC1", header)
                if "depth" in wanted:
                    self.pubs["depth"].publish(msgs["depth"])
        labels = pred.labels
        if labels is not None:
            if wanted & {"segmentation", "prediction"}:
                msgs["segmentation"] = out.image_msg(labels, "mono8", header)
                if "segmentation" in wanted:
                    self.pubs["segmentation"].publish(msgs["segmentation"])
            if "segmentation_color" in wanted:
                color = out.colorize_labels(labels, self._lut, cfg.segmentation_blend, rgb)
                self.pubs["segmentation_color"].publish(out.image_msg(color, "rgb8", header))
        if depth is not None and "depth_color" in wanted:
            color = out.colorize_depth(depth, max_depth, cfg.depth_colormap)
            self.pubs["depth_color"].publish(out.image_msg(color, "rgb8", header))
        if "prediction" in wanted and "depth" in msgs and "segmentation" in msgs:
            self.pubs["prediction"].publish(out.prediction_msg(
                self._prediction_type, header, msgs["depth"], msgs["segmentation"],
                self.estimator.class_set.names, cfg.palette, max_depth))
        info = self._camera_info
        if info is not None and cfg.outputs["depth_camera_info"]:
            ref = depth if depth is not None else labels
            if ref is not None:
                self.pubs["depth_camera_info"].publish(out.scale_camera_info(info, *ref.shape[:2], header))

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
        s = self._stats_type()
        s.header.stamp = now
        s.fps, s.latency_ms = w["fps"], w["latency_ms"]
        s.convert_ms, s.inference_ms = w["stages_ms"]["convert"], w["stages_ms"]["inference"]
        s.postprocess_ms, s.publish_ms = w["stages_ms"]["postprocess"], w["stages_ms"]["publish"]
        s.frames_received, s.frames_processed = w["received"], w["processed"]
        s.frames_dropped, s.frames_invalid, s.inference_errors = w["dropped"], w["invalid"], w["errors"]
        s.device, s.model, s.precision = d.device_label, d.model_name, self.cfg.precision
        self.stats_pub.publish(s)
        extra = {"model": d.model_name, "precision": self.cfg.precision,
                 "inference size": str(list(d.inference_size) if d.inference_size else "input")}
        status = diagnostic_status(f"{self.get_fully_qualified_name()}: perception", d.device_label, w,
                                   self._ready, d.untrained, self.cfg.max_latency_ms, self.cfg.min_fps, extra)
        self.diag_pub.publish(DiagnosticArray(header=s.header, status=[status]))

    def close(self) -> None:
        """Stop both stages (the frame in progress finishes) before the publishers go away."""
        for stage in getattr(self, "stages", []):
            if not stage.stop(timeout=10.0):
                self.get_logger().warning(f"{stage.name} thread did not stop within 10 s")


def main(args: list[str] | None = None) -> int:
    """Console script: spin until Ctrl-C / SIGTERM; exit code 0 on a clean stop, 1 if startup fails."""
    # The inference thread needs the GIL between torch ops; with the executor and the
    # publishing thread running Python, the default 5 ms switch interval stalls it.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    rclpy.init(args=args)
    node: PerceptionNode | None = None
    code = 0
    try:
        node = PerceptionNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except StartupError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(exc))
        code = 1
    except Exception:
        if rclpy.ok():  # a real failure, not a signal arriving during start-up
            raise
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
