"""Project-wide defaults and constants, defined once; every module imports them from here.

Kept free of imports so any module (models, data, ROS) can depend on it without cycles.
"""
from __future__ import annotations

DEFAULT_CHECKPOINT = "checkpoints/meco_golf.pt"  # the node's / demo's model (repo-relative)
DEV_MODEL = "meco"  # test/dev mode: a registry model with RANDOM weights, loudly flagged
DEV_MODEL_CONFIG = "backbone=vit_tiny_patch16_224"
BACKENDS = ("torch", "onnxruntime", "tensorrt")  # what runs a model (meco_core.inference.runtime)
PRECISIONS = ("fp32", "fp16", "bf16")  # inference precisions: fp16/bf16 run under autocast
BENCH_SIZE = (384, 512)  # `meco bench`'s input size for registry models (a checkpoint: its own recorded size)
MAX_DEPTH_M = 80.0  # metric depth range of the models and of the depth metrics (0 < gt < max)
# Depth metrics are also broken down by true distance (KITTI-style range bands: where the error sits):
# [0, 10), [10, 20), [20, 40), [40, max_depth) metres. Real frames' pseudo-depth ends at 40 m of ground.
DEPTH_BAND_EDGES_M = (10.0, 20.0, 40.0)
IGNORE_INDEX = 255  # label id that no loss or metric counts
MIN_LIDAR_RANGE_M = 0.3  # lidars report "no return" as (0, 0, 0); nothing real is this close
NODE_START_TIMEOUT_S = 180.0  # tools wait this long for a started node's "ready"
BAG_STORAGES = ("sqlite3", "mcap", "ros1")  # what BagWriter writes: rosbag2 folders, a ROS 1 .bag file
# The node's publish thread runs at this niceness (Linux, per thread): when it and ONNX
# Runtime's workers want the same core, inference goes first and publishing fills the gaps
# between operators. node-bench, 2 cores: 16.1 / 17.8 -> 18.7 / 19.2 FPS (README).
PUBLISH_THREAD_NICE = 10

# How the node's ONNX Runtime workers spin (runtime.RuntimeSpec.spin): inside a Run() only.
# Raw, golf model at 240x320, 2 threads: always 33.6 / run 33.1 / off 28.2 FPS; 'run'
# keeps the fast operator hand-offs and leaves the cores to post-processing between frames.
NODE_ORT_SPIN = "run"

# The node's outputs are made at most this many pixels (the camera's size divided by a whole
# number): past ~640x480 an upsampled 240x320 network output gains no detail, and at 1080p
# making and publishing four full-size images cost more than inference (node-bench, README).
DEFAULT_OUTPUT_MAX_PIXELS = 640 * 480

# Bounded input (README "Bounded input"): sizes a bag or a message may declare before it is
# refused unread, so a 4 GB length field or a PNG header claiming 100000x100000 costs nothing.
MAX_IMAGE_PIXELS = 8192 * 8192  # width * height a CompressedImage's PNG/JPEG header may declare
MAX_BAG_RECORD_BYTES = 1 << 30  # one record of a bag file: a message, a chunk, what a chunk decompresses to

# Islands of a ground-surface class smaller than this fraction of the output frame are folded into
# the ground around them (meco_core.inference.islands), by the Estimator (node, Python API) and by
# `meco eval` alike. 0.2 % of a frame is about a 1.4 m square of ground 10 m ahead at the canonical
# camera: a paved patch that small inside a dirt trail is speckle, not a path. Surfaces only:
# obstacles and background are never folded (a small obstacle is still an obstacle).
MIN_ISLAND_FRACTION = 0.002
ISLAND_CLASSES = {"golf": ("fairway", "hazard", "road")}  # class set name -> its ground surfaces
