"""Shared pytest setup: ROS 2 environment defaults and the shared data directory.

The ROS variables are set here (before any test imports rclpy) so that every test
process, and the subprocesses tests start, talk only over loopback with the large-image
Fast DDS profile, on a domain of their own.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_profile.xml"))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
os.environ.setdefault("OMP_NUM_THREADS", "2")
# ONNX exports the node makes (backend onnxruntime) go to a cache of this test run, not ~/.cache.
os.environ.setdefault("MECO_CACHE", tempfile.mkdtemp(prefix="meco_test_cache_"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repo (camvid, rellis3d samples); skip if absent."""
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data directory not found: {path}")
    return path


@pytest.fixture
def load_launch():
    """Load a launch file's description where launch_ros exists (ROS 2 machines only):
    returns (entities, {argument name: DeclareLaunchArgument})."""
    pytest.importorskip("launch_ros", reason="launch_ros is only on ROS 2 machines (not on PyPI)")
    import importlib.util

    from launch.actions import DeclareLaunchArgument

    def load(path: Path):
        spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        entities = module.generate_launch_description().entities
        return entities, {e.name: e for e in entities if isinstance(e, DeclareLaunchArgument)}

    return load


TINY_SIZE = (64, 96)
TINY_CNN = dict(backbone="tf_efficientnet_lite0", channels=16, stem_skip=True, head_upsample=1)


@pytest.fixture
def make_checkpoint(tmp_path):
    """make_checkpoint(name) -> path of a small golf-class checkpoint (EfficientNet-Lite0, 16
    channels) recording input size 64x96; BN statistics and codebooks moved off their
    initial values by one training-mode forward, so exports are checked on real numbers."""
    import torch

    from meco_core import build_model
    from meco_core.models.checkpoint import save_checkpoint
    from meco_core.classes import GOLF

    def make(name: str = "meco", seed: int = 0) -> str:
        torch.manual_seed(seed)
        train_name = "mlore" if name == "mlore_reparam" else name
        extra = dict(num_experts=3, top_k=2) if train_name in ("meco", "mlore") else {}
        model = build_model(train_name, **TINY_CNN, **extra).train()
        model(torch.rand(2, 3, *TINY_SIZE))
        path = tmp_path / f"{name}-{seed}.pt"
        save_checkpoint(path, model, class_set=GOLF.to_dict(), input_size=list(TINY_SIZE))
        return str(path)

    return make


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    """One ONNX export cache for the session: make_checkpoint's files are byte-identical per
    (name, seed), so tests that only need *an* export share it instead of re-exporting."""
    return tmp_path_factory.mktemp("onnx_cache")


# ---------------------------------------------------------------- tiny training data
def _write_tiny_dataset(root: Path, n_train: int = 8, n_val: int = 2, h: int = 64, w: int = 96) -> Path:
    from meco_core.classes import GOLF
    from meco_core.data.format import DatasetWriter

    rng = np.random.default_rng(0)
    colors = np.array([(90, 90, 90), (40, 170, 40), (220, 190, 80), (120, 60, 120), (220, 20, 60)], np.uint8)
    rows = np.arange(h, dtype=np.float32)[:, None].repeat(w, 1)
    with DatasetWriter(root, GOLF) as writer:
        for split, n in (("train", n_train), ("val", n_val)):
            for i in range(n):
                horizon = int(rng.integers(h // 4, h // 2))
                labels = np.zeros((h, w), np.uint8)
                labels[horizon:] = 1
                x0 = int(rng.integers(0, w // 2))
                labels[horizon:, x0:x0 + w // 4] = 3
                labels[int(h * 0.7):, int(w * 0.75):] = 4
                depth = np.where(rows > horizon, np.minimum(1.5 * h / np.maximum(rows - horizon, 1), 60), 0)
                rgb = colors[labels].astype(np.int16) + rng.integers(-10, 10, (h, w, 3))
                writer.write(split, f"{i:04d}", np.clip(rgb, 0, 255).astype(np.uint8), depth.astype(np.float32), labels)
    return root



def _train_data_args(data: Path) -> list[str]:
    return ["--set", f"data.train=[{{root: {data}, split: train}}]", "--set", f"data.val=[{{root: {data}, split: val}}]",
            "--set", "run.threads=1"]



@pytest.fixture(scope="session")
def tiny_dataset():
    """tiny_dataset(root, n_train=8, n_val=2, h=64, w=96) -> root: a golf-class meco dataset of
    blocky scenes (horizon, fairway, a path, an obstacle corner) with plausible depth."""
    return _write_tiny_dataset


@pytest.fixture(scope="session")
def data_args():
    """data_args(root) -> `--set` arguments training on root's train split, validating on val."""
    return _train_data_args
