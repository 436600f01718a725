"""The settings of one replay evaluation: one dataclass, from which `meco replay-eval`'s
options are generated (meco_core.options). Light on purpose: `meco --help` imports it.
"""
from __future__ import annotations

from dataclasses import dataclass

from meco_core.classes import CLASS_SETS
from meco_core.defaults import BACKENDS, DEV_MODEL_CONFIG, NODE_START_TIMEOUT_S
from meco_core.options import opt
from meco_core.sizes import parse_size


def parse_rate(text: str) -> float | str:
    """--rate: Hz, or 'bag' for the recorded timing."""
    import argparse

    if text.lower() == "bag":
        return "bag"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate must be a number of Hz or 'bag', not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"rate must be positive, got {text!r}")
    return value


def parse_inference_size(text: str) -> tuple[int, int]:
    """HxW, or 'native' / 0x0: the checkpoint's recorded size (the camera's without one)."""
    if text.lower() in ("native", "input", "0x0", "0"):
        return (0, 0)
    return parse_size(text)


@dataclass
class ReplayConfig:
    """Everything one replay needs; `meco replay-eval`'s options are generated from it."""

    bag: str = opt(help="ROS 1 .bag, rosbag2 folder, .db3 or .mcap", required=True)
    image_topic: str = opt(help="camera topic (sensor_msgs/Image or CompressedImage)", required=True)
    seg_gt_topic: str | None = opt(None, help="label image topic (mono8 ids, 255 = ignore)")
    gt_classes: str | None = opt(
        None, metavar="NAME",
        help=f"class set of the label images ({', '.join(sorted(CLASS_SETS))}), remapped to the model's as "
             "`meco eval` does (default: the class set `meco data make-bag` records in the bag on "
             "/meco/dataset_info, else the model's: ids outside them are an error)")
    depth_gt_topic: str | None = opt(None, group="depth", help="depth image topic (32FC1 m or 16UC1 mm)")
    lidar_topic: str | None = opt(None, group="depth",
                                  help="PointCloud2 projected into the camera as depth ground truth")
    info_topic: str | None = opt(None, help="CameraInfo topic (default: the only one in the bag)")
    extrinsics: str | None = opt(None, help="YAML with T_camera_lidar (or T_lidar_camera); default: the bag's "
                                            "/tf_static")
    checkpoint: str | None = opt(None, help="checkpoint for the node (default: checkpoints/meco_golf.pt, else the "
                                            "random-weight test/dev model with a loud warning)")
    dev: bool = opt(False, help="force the random-weight test/dev model")
    dev_model_config: str = opt(DEV_MODEL_CONFIG, help="config of the dev model")
    rate: float | str | None = opt(None, type=parse_rate, group="mode",
                                   help="real time: publish at R Hz ('bag' = recorded timing); the node drops "
                                        "what it cannot keep up with (default: closed loop)")
    closed_loop_flag: bool = opt(False, flag="--closed-loop", group="mode",
                                 help="next frame after the previous result (the default): every frame is scored")
    use_running_node: bool = opt(False, help="do not start a node; use the one at --node-namespace")
    node_namespace: str | None = opt(None, help="namespace of the node (default: a private one when started here, "
                                                "/camera with --use-running-node)")
    node_image_topic: str | None = opt(None, help="the node's input topic relative to its namespace (default "
                                                  "image, or image/compressed)")
    out: str = opt("out/replay", help="report directory (report.json, report.md, PNGs)")
    json: str | None = opt(None, help="also write report.json here")
    timeout: float = opt(30.0, help="seconds to wait for one frame's outputs (closed loop), for discovery and "
                                    "the drain")
    start_timeout: float = opt(NODE_START_TIMEOUT_S, help="seconds to wait for the node's 'ready'")
    inference_size: tuple[int, int] | None = opt(
        None, type=parse_inference_size,
        help="override the params file's inference_size (HxW; 'native' = the checkpoint's recorded size; "
             "default: the params file's, which is native)")
    params_file: str | None = opt(None, help="node params (default config/golf_cart.yaml)")
    device: str | None = opt(None, help="override the params file's device")
    threads: int | None = opt(None, help="override the node's threads")
    backend: str | None = opt(None, choices=BACKENDS, help="override the params file's backend")
    tolerance_ms: float = opt(50.0, help="max |stamp difference| image <-> ground truth")
    limit: int | None = opt(None, help="replay only the first N frames")
    use_sim_time: bool = opt(False, help="publish /clock from the bag stamps (and start the node with "
                                         "use_sim_time)")
    verbose: bool = opt(False, help="echo the node's log")
    command: str = opt("", cli=False, help="the command line, for the report")

    @property
    def closed_loop(self) -> bool:
        return self.rate is None
