"""`meco replay-eval`: replay a rosbag through the ROS perception node and score it.

Starts the perception node (the vehicle's executable and params file, with the
checkpoint override) unless --use-running-node, publishes the bag's camera frames with
their original stamps, collects depth and segmentation, matches them to the bag's ground
truth by header stamp and reports the metrics of `meco eval` plus node FPS, latency
p50/p95/p99 and frames sent/scored/dropped: report.json, report.md and PNGs in --out.

Ground truth: --depth-gt-topic (Image 32FC1 m or 16UC1 mm) or --lidar-topic (PointCloud2,
projected with --info-topic's CameraInfo and --extrinsics YAML or the bag's /tf_static),
and --seg-gt-topic (mono8 class ids, 255 = ignore) in the class set --gt-classes (default: the one
`meco data make-bag` records in the bag, else the model's; ids the model does not have are an
error, never a score), remapped to the model's classes as `meco eval` does. Modes: --closed-loop (default; every
frame scored) or --rate R (Hz, or 'bag' for the recorded timing; real time, drops counted).
The logic lives in meco_ros.replay_eval (rclpy is imported only when this runs).
"""
from __future__ import annotations

import argparse
import os

from meco_core.classes import CLASS_SETS
from meco_core.defaults import BACKENDS, DEV_MODEL_CONFIG, NODE_START_TIMEOUT_S
from meco_core.sizes import parse_size


def _rate(text: str) -> float | str:
    if text.lower() == "bag":
        return "bag"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate must be a number of Hz or 'bag', not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"rate must be positive, got {text!r}")
    return value


def _inference_size(text: str) -> tuple[int, int]:
    """HxW, or 'native' / 0x0: the checkpoint's recorded size (the camera's without one)."""
    if text.lower() in ("native", "input", "0x0", "0"):
        return (0, 0)
    return parse_size(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("replay-eval", help="replay a rosbag through the perception node: metrics, FPS, latency",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bag", required=True, help="ROS 1 .bag, rosbag2 folder, .db3 or .mcap")
    p.add_argument("--image-topic", required=True, help="camera topic (sensor_msgs/Image or CompressedImage)")
    p.add_argument("--seg-gt-topic", default=None, help="label image topic (mono8 ids, 255 = ignore)")
    p.add_argument("--gt-classes", default=None, metavar="NAME",
                   help=f"class set of the label images ({', '.join(sorted(CLASS_SETS))}), remapped to the model's "
                        "as `meco eval` does (default: the class set `meco data make-bag` records in the bag on "
                        "/meco/dataset_info, else the model's: ids outside them are an error)")
    depth = p.add_mutually_exclusive_group()
    depth.add_argument("--depth-gt-topic", default=None, help="depth image topic (32FC1 m or 16UC1 mm)")
    depth.add_argument("--lidar-topic", default=None, help="PointCloud2 projected into the camera as depth ground truth")
    p.add_argument("--info-topic", default=None, help="CameraInfo topic (default: the only one in the bag)")
    p.add_argument("--extrinsics", default=None,
                   help="YAML with T_camera_lidar (or T_lidar_camera); default: the bag's /tf_static")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint for the node (default: checkpoints/meco_golf.pt, else the random-weight "
                        "test/dev model with a loud warning)")
    p.add_argument("--dev", action="store_true", help="force the random-weight test/dev model")
    p.add_argument("--dev-model-config", default=DEV_MODEL_CONFIG, help="config of the dev model")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=_rate, default=None,
                      help="real time: publish at R Hz ('bag' = recorded timing); the node drops what it cannot keep up with")
    mode.add_argument("--closed-loop", action="store_true",
                      help="next frame after the previous result (default): every frame is scored")
    p.add_argument("--use-running-node", action="store_true", help="do not start a node; use the one at --node-namespace")
    p.add_argument("--node-namespace", default=None,
                   help="namespace of the node (default: a private one when started here, /camera with --use-running-node)")
    p.add_argument("--node-image-topic", default=None,
                   help="the node's input topic relative to its namespace (default image, or image/compressed)")
    p.add_argument("--out", default="out/replay", help="report directory (report.json, report.md, PNGs)")
    p.add_argument("--json", default=None, help="also write report.json here")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for one frame's outputs (closed loop), for discovery and the drain")
    p.add_argument("--start-timeout", type=float, default=NODE_START_TIMEOUT_S, help="seconds to wait for the node's 'ready'")
    p.add_argument("--inference-size", type=_inference_size, default=None,
                   help="override the params file's inference_size (HxW; 'native' = the checkpoint's recorded "
                        "size; default: the params file's, which is native)")
    p.add_argument("--params-file", default=None, help="node params (default config/golf_cart.yaml)")
    p.add_argument("--device", default=None, help="override the params file's device")
    p.add_argument("--threads", type=int, default=None, help="override the node's threads")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="override the params file's backend")
    p.add_argument("--tolerance-ms", type=float, default=50.0, help="max |stamp difference| image <-> ground truth")
    p.add_argument("--limit", type=int, default=None, help="replay only the first N frames")
    p.add_argument("--use-sim-time", action="store_true",
                   help="publish /clock from the bag stamps (and start the node with use_sim_time)")
    p.add_argument("--verbose", action="store_true", help="echo the node's log")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from meco_ros.proc import ros_env  # no rclpy: only environment defaults

    for key, value in ros_env().items():  # loopback discovery + large-image Fast DDS profile, before rclpy
        os.environ.setdefault(key, value)
    from meco_ros.replay_eval import main_from_args

    return main_from_args(args)
