"""Project-wide defaults and constants, defined once; every module imports them from here.

Kept free of imports so any module (models, data, ROS) can depend on it without cycles.
"""
from __future__ import annotations

DEFAULT_CHECKPOINT = "checkpoints/meco_golf.pt"  # the node's / demo's model (repo-relative)
DEV_MODEL = "meco"  # test/dev mode: a registry model with RANDOM weights, loudly flagged
DEV_MODEL_CONFIG = "backbone=vit_tiny_patch16_224"
MAX_DEPTH_M = 80.0  # metric depth range of the models and of the depth metrics (0 < gt < max)
IGNORE_INDEX = 255  # label id that no loss or metric counts
MIN_LIDAR_RANGE_M = 0.3  # lidars report "no return" as (0, 0, 0); nothing real is this close
NODE_START_TIMEOUT_S = 180.0  # tools wait this long for a started node's "ready"
# The node's publish thread runs at this niceness (Linux, per thread): when it and ONNX
# Runtime's workers want the same core, inference goes first and publishing fills the gaps
# between operators. node-bench, 2 cores: 16.1 / 17.8 -> 18.7 / 19.2 FPS (README).
PUBLISH_THREAD_NICE = 10

# How the node's ONNX Runtime workers spin (runtime.RuntimeSpec.spin): inside a Run() only.
# Raw, golf model at 240x320, 2 threads: always 33.6 / run 33.1 / off 28.2 FPS; 'run'
# keeps the fast operator hand-offs and leaves the cores to post-processing between frames.
NODE_ORT_SPIN = "run"
