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
    from meco_core.checkpoint import save_checkpoint
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
