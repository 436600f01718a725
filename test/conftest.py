"""Shared pytest setup: ROS 2 environment defaults and the shared data directory.

The ROS variables are set here (before any test imports rclpy) so that every test
process, and the subprocesses tests start, talk only over loopback with the large-image
Fast DDS profile, on a domain of their own.
"""
from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

PRODUCT_PROFILE = str(REPO / "config" / "fastdds_profile.xml")  # what every node the tests start gets
TEST_PROCESS_PROFILE = str(REPO / "test" / "fastdds_test_process.xml")  # this process's own participants

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", PRODUCT_PROFILE)
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
os.environ.setdefault("OMP_NUM_THREADS", "2")


def _xdist_worker() -> tuple[int, int]:
    """(this worker's number, number of workers) under pytest-xdist (`make test` runs two);
    (0, 1) in a plain pytest run."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return (int(name[2:]), max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))) if name else (0, 1)


WORKER, WORKERS = _xdist_worker()
if WORKER:  # workers share the DDS graph only where a test says so: each gets a run domain of its own
    os.environ["ROS_DOMAIN_ID"] = str((int(os.environ["ROS_DOMAIN_ID"]) - 1 + WORKER * (100 // WORKERS)) % 100 + 1)
if WORKERS > 1:  # xdist: the workers split the cores (the controller's default above is inherited)
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // WORKERS))


def own_domain_id() -> int:
    """A DDS domain for a test that wants one nobody else uses (a node of its own, a launch):
    101-232 (the highest Fast DDS allows) split between the xdist workers, so that two tests
    running at once never draw the same one."""
    span = 132 // WORKERS
    first = 101 + WORKER * span
    return random.randint(first, first + span - 1)


def _load_test_process_profile() -> None:
    """Make this process's own DDS participants (the tests' sides) use TEST_PROCESS_PROFILE:
    shared memory + UDP, no TCP, so no participant here can hit Fast DDS 3.2.2's TCP teardown hang
    (that file says why). Fast DDS reads its profile file once per process, when the first
    participant is made: one is made and destroyed here (no peers yet) with that file named, then
    the variable goes back to the product's profile, which the nodes the tests start inherit."""
    if os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] != PRODUCT_PROFILE:
        return  # a profile of the caller's: theirs, untouched
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = TEST_PROCESS_PROFILE
    try:
        import rclpy
        from rclpy.context import Context

        context = Context()
        rclpy.init(context=context, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
        rclpy.create_node("meco_test_profile", context=context).destroy_node()
        rclpy.shutdown(context=context)
    except ImportError:  # no ROS in this environment: the ROS tests skip themselves
        pass
    finally:
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = PRODUCT_PROFILE


_load_test_process_profile()
# ONNX exports the node makes (backend onnxruntime) go to a cache of this test run, not ~/.cache
# (removed when the run ends: each holds ~15 MB of exports).
_OWN_CACHE = None if "MECO_CACHE" in os.environ else tempfile.mkdtemp(prefix="meco_test_cache_")
if _OWN_CACHE:
    os.environ["MECO_CACHE"] = _OWN_CACHE


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repo (camvid, rellis3d samples); skip if absent."""
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data directory not found: {path}")
    return path


class RosSide:
    """The test's side of a ROS graph: the project's side-node helper (meco_ros.side_node:
    an rclpy node in a Context of its own, never the global one, so tests cannot leak into each
    other), spun by the test's own thread inside the waits below instead of a thread of its own:
    every wait is for an event (a message, a match, a future) and has a timeout."""

    def __init__(self, name: str, namespace: str | None = None, domain_id: int | None = None) -> None:
        from meco_ros.side_node import SideNode

        self.side = SideNode(name, namespace or "", domain_id).open()  # not spinning: the waits spin it
        self.context, self.node, self.executor = self.side.ctx, self.side.node, self.side.executor

    def spin_until(self, cond, timeout: float) -> bool:
        """Spin until cond() is true (checked between callbacks); its value at the deadline."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            self.executor.spin_once(timeout_sec=0.02)
        return bool(cond())

    def matched(self, *endpoints, count: int = 1) -> bool:
        """Every publisher has `count` subscriptions and every subscription `count` publishers."""
        return all((e.get_subscription_count() if hasattr(e, "get_subscription_count") else e.get_publisher_count())
                   >= count for e in endpoints)

    def wait_matched(self, *endpoints, timeout: float = 30.0, count: int = 1) -> bool:
        """Spin until matched(*endpoints): discovery done both ways before anything is sent."""
        return self.spin_until(lambda: self.matched(*endpoints, count=count), timeout)

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        """One service call: wait for the service, send, spin until the answer (asserts both)."""
        client = self.node.create_client(srv_type, name)
        try:
            assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
            future = client.call_async(request)
            assert self.spin_until(future.done, timeout), f"{name}: no response within {timeout} s"
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.side.stop()


@pytest.fixture
def ros_side():
    """ros_side(name, namespace=None, domain_id=None) -> RosSide: the one way tests talk ROS from
    their own process. Each call makes a fresh rclpy Context; all are shut down after the test
    (domain_id None: this test run's ROS_DOMAIN_ID, set above; give a node's own domain to
    talk to a node started on it)."""
    sides: list[RosSide] = []

    def make(name: str = "meco_test", namespace: str | None = None, domain_id: int | None = None) -> RosSide:
        side = RosSide(name, namespace, domain_id)
        sides.append(side)
        return side

    yield make
    for side in reversed(sides):
        side.close()


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


@pytest.fixture
def standin_launch(monkeypatch, tmp_path):
    """standin_launch(launch file name, **arguments) -> (Plan, env): what `ros2 launch meco_ros
    NAME args` starts, from the launch file's own code run with test/launch_standin.py (launch
    and launch_ros are not installable here). The package is looked up in an ament prefix laid
    out as CMakeLists.txt installs it, from this source tree: share/meco_ros/{launch, config,
    checkpoints}, lib/meco_ros/perception_node (tools/perception_node). `env` is the
    environment to start the planned processes in: the prefix in AMENT_PREFIX_PATH, the launch
    file's SetEnvironmentVariable values, a DDS domain of the test's own."""
    import stat
    import sys

    import launch_standin

    prefix = tmp_path / "install"
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "meco_ros").write_text("")
    for name in ("launch", "config", "checkpoints"):
        (prefix / "share" / "meco_ros" / name).parent.mkdir(parents=True, exist_ok=True)
        (prefix / "share" / "meco_ros" / name).symlink_to(REPO / name, target_is_directory=True)
    exe = prefix / "lib" / "meco_ros" / "perception_node"
    exe.parent.mkdir(parents=True)
    source = (REPO / "tools" / "perception_node").read_text().split("\n", 1)[1]
    exe.write_text(f"#!{sys.executable}\n{source}")  # the interpreter line an install writes
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    ament = os.pathsep.join([str(prefix), sys.prefix])  # this package first; the ROS wheels' index after it
    monkeypatch.setenv("AMENT_PREFIX_PATH", ament)
    launch_standin.install(monkeypatch)

    def run(name: str, **arguments: str):
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory("meco_ros")) / "launch" / name  # as `ros2 launch meco_ros NAME` finds it
        plan = launch_standin.plan(path, arguments, tmp_path)
        env = dict(os.environ, AMENT_PREFIX_PATH=ament, ROS_DOMAIN_ID=str(own_domain_id()),
                   OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **plan.env)
        return plan, env

    return run


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
def onnx_cache() -> Path:
    """One ONNX export cache for the session, the one nodes started by tests use too
    ($MECO_CACHE, set above): make_checkpoint's files are byte-identical per (name, seed), so
    tests that only need *an* export share it instead of re-exporting (~10 s each)."""
    return Path(os.environ["MECO_CACHE"])


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


def pytest_sessionfinish(session, exitstatus) -> None:
    """Remove the Fast DDS segments of processes the tests killed (SIGKILL cases, hung exits):
    each is up to 128 MB of /dev/shm (RAM) that nothing else would free; and this run's cache."""
    from meco_ros.dds_shm import remove_stale_segments

    removed = remove_stale_segments()
    if removed.segments:
        print(f"\n{removed}")
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
