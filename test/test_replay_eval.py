"""Replay evaluation: bags written with rosbags' own writers (sqlite3, mcap, ROS 1) from a tiny
synthetic drive, replayed through a real `perception_node` subprocess over DDS.

The node runs a small random-weight checkpoint saved here, at the camera's own size
(inference_size [0, 0]), and `meco eval` runs the same checkpoint on the same frames at
full resolution: closed-loop replay must reproduce its numbers (0.1 mIoU, 0.001 AbsRel).
One node serves the in-process replays (`--use-running-node`); one test runs the CLI that
starts its own node. Nothing is mocked.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import StoragePlugin, Writer as Ros2Writer
from rosbags.typesys import Stores, get_typestore

from meco_core.bags.messages import matrix_to_quat
from meco_core.classes import GOLF
from meco_core.data.format import DatasetReader
from meco_core.bags.from_dataset import T_BASE_CAMERA, T_BASE_LIDAR, depth_to_lidar_points
from meco_core.geometry import intrinsics_matrix, invert_transform
from meco_ros.proc import REPO, ros_env, start_node
from meco_ros.replay.evaluator import ReplayConfig, replay

pytestmark = pytest.mark.timeout(240)

H, W, N = 64, 96, 5
NS = f"/meco_replay_test_{os.getpid()}"
T0 = 1_650_000_000 * 10**9
JSON_KEYS = {"miou", "iou_per_class", "rmse", "rmse_log", "abs_rel", "sq_rel", "d1", "d2", "d3", "fps", "frames",
             "frames_sent", "frames_scored", "frames_dropped", "latency_ms"}


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from meco_core.data.synth import generate

    root = tmp_path_factory.mktemp("drive")
    generate(root, n=N, seed=7, split="test", height=H, width=W, workers=1, progress=False)
    return root


def tiny_golf_checkpoint(path: Path) -> Path:
    """A small random-weight golf-class checkpoint (fast to run; its numbers only need to agree)."""
    import torch

    from meco_core.models import build_model
    from meco_core.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model("meco", backbone="vit_tiny_patch16_224", channels=32, num_experts=4, top_k=2,
                        codebook_size=16, task_codebook_size=16)
    save_checkpoint(path, model, class_set=GOLF.to_dict())
    return path


def eval_json(checkpoint: Path, data: Path, split: str, out: Path) -> dict:
    """`meco eval` of `checkpoint` on a dataset split: its JSON."""
    from meco_core.cli import main

    assert main(["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--split", split, "--json",
                 str(out), "--no-progress"]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return tiny_golf_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def eval_metrics(dataset, checkpoint, tmp_path_factory) -> dict:
    """`meco eval` on the same frames and checkpoint (full resolution, as the node runs here)."""
    return eval_json(checkpoint, dataset, "test", tmp_path_factory.mktemp("eval") / "eval.json")


def node_args(checkpoint: Path, namespace: str, *params: str) -> list[str]:
    """perception_node's arguments in the replay tests: the golf cart's parameters in `namespace`,
    `checkpoint` on the torch backend, a short warm-up, stats twice a second, then `params`
    ('name:=value')."""
    args = ["--params-file", str(REPO / "config" / "golf_cart.yaml"), "-r", f"__ns:={namespace}"]
    for param in (f"checkpoint:={checkpoint}", "backend:=torch", "warmup_iterations:=1", "stats_period:=0.5",
                  *params):
        args += ["-p", param]
    return args


def serve(proc):
    """Body of a node fixture: the started node once it says ready; stopped (exit code 0) afterwards."""
    assert proc.wait_for("ready", 120), f"node not ready:\n{proc.output}"
    yield proc
    assert proc.stop(signal.SIGINT, 30) == 0


@pytest.fixture(scope="module")
def node(checkpoint):
    # inference_size [0,0]: the camera's size, a size no fixed-size export has (hence backend torch)
    yield from serve(start_node(node_args(checkpoint, NS, "inference_size:=[0,0]", "threads:=1"),
                                ros_env(OMP_NUM_THREADS="1")))


# ------------------------------------------------------------------ bags written by rosbags itself
class ForeignBag:
    """Messages built field by field with rosbags' typestore classes (no meco builders)."""

    def __init__(self, path: Path, storage: str) -> None:
        self.ros1 = storage == "ros1"
        self.ts = get_typestore(Stores.ROS1_NOETIC if self.ros1 else Stores.ROS2_HUMBLE)
        if self.ros1:
            self.writer = Ros1Writer(path)
        else:
            plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
            self.writer = Ros2Writer(path, version=9, storage_plugin=plugin)
        self.conns: dict[str, tuple] = {}

    def __enter__(self) -> "ForeignBag":
        self.writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()

    def write(self, topic: str, msgtype: str, t: int, msg) -> None:
        if topic not in self.conns:
            self.conns[topic] = self.writer.add_connection(topic, msgtype, typestore=self.ts)
        ser = self.ts.serialize_ros1 if self.ros1 else self.ts.serialize_cdr
        self.writer.write(self.conns[topic], t + 3_000_000, ser(msg, msgtype))  # logged 3 ms after the stamp

    def header(self, t: int, frame: str):
        T = self.ts.types
        stamp = T["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9)
        return T["std_msgs/msg/Header"](**({"seq": 0} if self.ros1 else {}), stamp=stamp, frame_id=frame)

    def image(self, t: int, arr: np.ndarray, encoding: str, frame: str = "camera_optical_frame"):
        arr = np.ascontiguousarray(arr)
        h, w = arr.shape[:2]
        step = arr.strides[0]
        return self.ts.types["sensor_msgs/msg/Image"](
            header=self.header(t, frame), height=h, width=w, encoding=encoding, is_bigendian=0, step=step,
            data=arr.view(np.uint8).reshape(-1))

    def camera_info(self, t: int, K: np.ndarray, height: int = H, width: int = W):
        arrays = {"d": np.zeros(5), "k": K.reshape(9), "r": np.eye(3).reshape(9),
                  "p": np.hstack([K, np.zeros((3, 1))]).reshape(12)}
        if self.ros1:
            arrays = {k.upper(): v for k, v in arrays.items()}
        roi = self.ts.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                               do_rectify=False)
        return self.ts.types["sensor_msgs/msg/CameraInfo"](
            header=self.header(t, "camera_optical_frame"), height=height, width=width, distortion_model="plumb_bob",
            **arrays, binning_x=0, binning_y=0, roi=roi)

    def cloud(self, t: int, xyz: np.ndarray, frame: str):
        """x, y, z float32 at offsets 0, 4, 8 of a 16-byte point (4 bytes padding)."""
        rec = np.zeros(len(xyz), np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3,
                                           "offsets": [0, 4, 8], "itemsize": 16}))
        rec["x"], rec["y"], rec["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        PF = self.ts.types["sensor_msgs/msg/PointField"]
        fields = [PF(name=n, offset=4 * i, datatype=7, count=1) for i, n in enumerate("xyz")]
        return self.ts.types["sensor_msgs/msg/PointCloud2"](
            header=self.header(t, frame), height=1, width=len(xyz), fields=fields, is_bigendian=False,
            point_step=16, row_step=16 * len(xyz), data=rec.view(np.uint8).reshape(-1), is_dense=True)

    def tf_static(self, t: int, edges: list[tuple[str, str, np.ndarray]]):
        T = self.ts.types
        out = []
        for parent, child, M in edges:
            w, x, y, z = matrix_to_quat(M[:3, :3])
            tr = T["geometry_msgs/msg/Transform"](
                translation=T["geometry_msgs/msg/Vector3"](x=M[0, 3], y=M[1, 3], z=M[2, 3]),
                rotation=T["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))
            out.append(T["geometry_msgs/msg/TransformStamped"](header=self.header(t, parent), child_frame_id=child,
                                                               transform=tr))
        return T["tf2_msgs/msg/TFMessage"](transforms=out)


def write_drive(dataset: Path, path: Path, storage: str, encoding: str = "rgb8", depth: str | None = "32FC1",
                lidar: bool = False, depth_offset_ns: int = 0) -> Path:
    """The synthetic drive as a camera would record it: image, camera_info, depth / lidar, labels at 10 Hz."""
    reader = DatasetReader(dataset)
    intr = reader.intrinsics
    K = intrinsics_matrix(intr["fx"], intr["fy"], intr["cx"], intr["cy"])
    T_lidar_camera = invert_transform(T_BASE_LIDAR) @ T_BASE_CAMERA
    with ForeignBag(path, storage) as bag:
        if lidar:
            bag.write("/tf_static", "tf2_msgs/msg/TFMessage", T0,
                      bag.tf_static(T0, [("base_link", "lidar", T_BASE_LIDAR),
                                         ("base_link", "camera_optical_frame", T_BASE_CAMERA)]))
        for i, name in enumerate(reader.names("test")):
            s = reader.load("test", name)
            t = T0 + i * 100_000_000
            rgb = s.rgb if encoding == "rgb8" else s.rgb[:, :, ::-1]
            bag.write("/cam/image", "sensor_msgs/msg/Image", t, bag.image(t, rgb, encoding))
            # the camera_info of the images as recorded: a node uses it only when its size matches
            bag.write("/cam/info", "sensor_msgs/msg/CameraInfo", t, bag.camera_info(t, K, intr["height"], intr["width"]))
            if depth == "32FC1":
                d = np.where(s.depth_m > 0, s.depth_m, np.nan).astype(np.float32)
                td = t + depth_offset_ns
                bag.write("/cam/depth", "sensor_msgs/msg/Image", td, bag.image(td, d, "32FC1"))
            elif depth == "16UC1":
                bag.write("/cam/depth", "sensor_msgs/msg/Image", t,
                          bag.image(t, np.rint(s.depth_m * 1000).astype(np.uint16), "16UC1"))
            if lidar:
                pts, _ = depth_to_lidar_points(s.depth_m, K, T_lidar_camera)
                tl = t + 20_000_000  # the lidar's stamp is 20 ms after the camera's
                bag.write("/lidar/points", "sensor_msgs/msg/PointCloud2", tl, bag.cloud(tl, pts, "lidar"))
            bag.write("/cam/labels", "sensor_msgs/msg/Image", t, bag.image(t, s.labels, "mono8"))
    return path


def run_replay(bag: Path, out: Path, **kw) -> tuple[int, dict]:
    cfg = dict(bag=str(bag), image_topic="/cam/image", seg_gt_topic="/cam/labels", depth_gt_topic="/cam/depth",
               use_running_node=True, node_namespace=NS, out=str(out), timeout=20.0, start_timeout=60.0,
               command="test")
    cfg.update(kw)
    return replay(ReplayConfig(**cfg))


class CliRun:
    """`meco replay-eval` as a subprocess in a session of its own, every line of its stdout and
    stderr (with --verbose: the node's log too) kept with the second it arrived, so a failure
    shows what the evaluator and the node did and when. A run past `timeout` is killed with
    its whole process group: the perception_node it started never outlives the test."""

    def __init__(self, cmd: list[str], env: dict[str, str], timeout: float, log: Path) -> None:
        self.t0 = time.monotonic()
        self.lines: list[tuple[float, str, str]] = []
        self.stdout: list[str] = []
        popen = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        readers = [threading.Thread(target=self._read, args=(stream, name), daemon=True)
                   for stream, name in ((popen.stdout, "out"), (popen.stderr, "err"))]
        for r in readers:
            r.start()
        try:
            self.returncode: int | None = popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(10)
            self.returncode = None
        for r in readers:
            r.join(10)
        log.write_text(self.text())

    def _read(self, stream, name: str) -> None:
        for line in stream:
            self.lines.append((time.monotonic() - self.t0, name, line.rstrip("\n")))
            if name == "out":
                self.stdout.append(line)

    def text(self, last: int | None = None) -> str:
        rows = self.lines if last is None else self.lines[-last:]
        return "\n".join(f"{t:7.2f} {name} | {line}" for t, name, line in rows)

    def why(self) -> str:
        """The evaluator's own lines (all of them), then the last lines of everything."""
        mine = "\n".join(f"{t:7.2f} | {line}" for t, name, line in self.lines if line.startswith("replay-eval"))
        return (f"exit code {self.returncode} (None: killed after the timeout)\n--- replay-eval said:\n{mine}\n"
                f"--- last 60 lines (node and evaluator):\n{self.text(60)}")


def assert_matches_eval(result: dict, ref: dict) -> None:
    assert abs(result["miou"] - ref["miou"]) <= 0.1, (result["miou"], ref["miou"])
    assert abs(result["abs_rel"] - ref["abs_rel"]) <= 0.001, (result["abs_rel"], ref["abs_rel"])
    assert abs(result["rmse"] - ref["rmse"]) <= 0.01 and abs(result["d1"] - ref["d1"]) <= 0.001


def assert_report(out: Path, pngs: bool = True) -> dict:
    doc = json.loads((out / "report.json").read_text())
    assert JSON_KEYS <= set(doc), JSON_KEYS - set(doc)
    assert set(doc["latency_ms"]) >= {"p50", "p95", "p99"}
    md = (out / "report.md").read_text()
    assert "## Depth" in md and "## How it was run" in md
    if pngs:
        for name in ("metrics_over_time.png", "worst_frames.png", "sample_grid.png", "confusion.png"):
            assert (out / name).stat().st_size > 1000, name
    return doc


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("storage,encoding,depth", [("sqlite3", "rgb8", "32FC1"), ("mcap", "bgr8", "16UC1")])
def test_closed_loop_scores_every_frame_like_meco_eval(dataset, eval_metrics, node, tmp_path, storage, encoding,
                                                       depth):
    bag = write_drive(dataset, tmp_path / "drive", storage, encoding, depth)
    code, result = run_replay(bag, tmp_path / "out")
    assert code == 0, result["problems"]
    assert (result["frames_sent"], result["frames_scored"], result["frames_dropped"], result["frames"]) == (N, N, 0, N)
    assert_matches_eval(result, eval_metrics)
    assert result["latency_ms"]["p50"] > 0 and result["fps"] > 0
    assert result["node_stats"]["frames_processed"] >= N
    assert_report(tmp_path / "out")


def test_ros1_bag_through_the_cli_starting_its_own_node(dataset, checkpoint, eval_metrics, tmp_path):
    """The full path: `meco replay-eval` starts perception_node with the vehicle's params file."""
    bag = write_drive(dataset, tmp_path / "drive.bag", "ros1")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "meco_core.cli", "replay-eval", "--bag", str(bag), "--image-topic", "/cam/image",
           "--seg-gt-topic", "/cam/labels", "--depth-gt-topic", "/cam/depth", "--checkpoint", str(checkpoint),
           "--closed-loop", "--inference-size", "input", "--threads", "1", "--backend", "torch", "--out", str(out),
           "--json",
           str(tmp_path / "copy.json"), "--timeout", "20", "--start-timeout", "120"]
    run = CliRun(cmd, ros_env(OMP_NUM_THREADS="1"), 200, tmp_path / "replay-eval.log")
    assert run.returncode == 0, run.why()
    stdout = "".join(run.stdout)
    assert "AbsRel" in stdout and "mIoU" in stdout and "latency send->receive" in stdout
    doc = assert_report(out)
    assert json.loads((tmp_path / "copy.json").read_text()) == doc
    assert (doc["frames_sent"], doc["frames_scored"], doc["frames_dropped"]) == (N, N, 0)
    assert_matches_eval(doc, eval_metrics)
    run = doc["run"]
    assert "golf_cart.yaml" in run["node_command"] and str(checkpoint) in run["node_command"]
    assert run["node_exit_code"] == 0


def test_lidar_ground_truth_from_tf_static(dataset, eval_metrics, node, tmp_path):
    """A cloud in the lidar frame, 20 ms after the image, projected with CameraInfo and /tf_static:
    it holds every depth pixel, so the metrics match the dense ground truth's."""
    bag = write_drive(dataset, tmp_path / "drive", "sqlite3", depth=None, lidar=True)
    code, result = run_replay(bag, tmp_path / "out", depth_gt_topic=None, lidar_topic="/lidar/points")
    assert code == 0, result["problems"]
    assert result["frames_scored"] == N
    assert result["depth_pixels"] >= 0.98 * eval_metrics["depth_pixels"]
    assert abs(result["abs_rel"] - eval_metrics["abs_rel"]) <= 0.01 * eval_metrics["abs_rel"]
    assert abs(result["miou"] - eval_metrics["miou"]) <= 0.1


def test_real_time_counts_dropped_frames(dataset, node, tmp_path):
    """Frames sent faster than the node runs: the node keeps the newest, the rest are dropped and counted."""
    bag = write_drive(dataset, tmp_path / "drive", "mcap")
    code, result = run_replay(bag, tmp_path / "out", rate=500.0)
    assert code == 0, result["problems"]
    assert result["frames_sent"] == N
    assert result["frames_scored"] >= 1  # the last frame is never superseded
    assert result["frames_scored"] + result["frames_dropped"] == N
    assert result["node_stats"]["frames_received"] >= result["frames_scored"]


def test_corrupt_bag_gives_a_partial_report(dataset, node, tmp_path):
    bag = write_drive(dataset, tmp_path / "drive", "mcap")
    f = next(bag.glob("*.mcap"))
    with open(f, "r+b") as fh:
        fh.truncate(int(f.stat().st_size * 0.6))
    code, result = run_replay(bag, tmp_path / "out")
    assert code == 1
    assert 0 < result["frames_scored"] < N
    assert any("damaged" in p or "truncated" in p for p in result["problems"]), result["problems"]
    doc = assert_report(tmp_path / "out", pngs=False)
    assert "damaged" in (tmp_path / "out" / "report.md").read_text() and doc["frames_scored"] < N


def test_missing_topics_and_unmatched_stamps_are_named(dataset, node, tmp_path):
    # a ground-truth topic that is not there, and depth stamped 10 s off: replayed, not scored, both named
    bag = write_drive(dataset, tmp_path / "drive", "sqlite3", depth_offset_ns=10 * 10**9)
    code, result = run_replay(bag, tmp_path / "out", seg_gt_topic="/cam/nope")
    assert code == 1
    problems = "\n".join(result["problems"])
    assert "/cam/nope is not in the bag" in problems and "/cam/labels (sensor_msgs/msg/Image)" in problems
    assert f"{N} of {N} messages on /cam/depth have no camera frame within 50 ms" in problems
    assert result["frames_sent"] == N and result["frames_scored"] == 0
    assert (tmp_path / "out" / "report.json").is_file()


def test_bad_camera_topic_fails_fast_with_a_report(dataset, tmp_path):
    bag = write_drive(dataset, tmp_path / "drive", "sqlite3")
    code, result = run_replay(bag, tmp_path / "a", image_topic="/cam/missing", node_namespace="/nobody")
    assert code == 2
    assert "/cam/missing" in result["problems"][-1] and "/cam/image (sensor_msgs/msg/Image" in result["problems"][-1]
    assert result["frames_sent"] == 0 and (tmp_path / "a" / "report.json").is_file()
    code, result = run_replay(bag, tmp_path / "b", image_topic="/cam/info", node_namespace="/nobody")
    assert code == 2 and "has type sensor_msgs/msg/CameraInfo, expected" in result["problems"][-1]
    code, result = run_replay(tmp_path / "no_such_bag", tmp_path / "c", node_namespace="/nobody")
    assert code == 2 and "no such bag" in result["problems"][-1]
    code, result = run_replay(bag, tmp_path / "d", use_running_node=False, checkpoint=str(tmp_path / "nope.pt"))
    assert code == 2 and "checkpoint not found" in result["problems"][-1]


def test_ground_truth_of_the_wrong_type_is_named_not_fatal(dataset, tmp_path):
    from meco_core.bags.replay_source import BagSource

    bag = write_drive(dataset, tmp_path / "drive", "mcap")
    with BagSource(bag, "/cam/image", seg_topic="/cam/info", depth_topic="/cam/depth") as src:
        frames = list(src.frames())
    assert len(frames) == N and all(f.gt.depth is not None and f.gt.labels is None for f in frames)
    assert all(f.info is not None and f.stamp == T0 + f.index * 100_000_000 for f in frames)
    assert any("/cam/info has type sensor_msgs/msg/CameraInfo" in p for p in src.all_problems())


@pytest.mark.timeout(480)
@pytest.mark.parametrize("shipped", ["meco_golf.pt", "meco_camvid.pt"])
def test_shipped_checkpoints_replay_equals_eval_without_size_flags(tmp_path, shipped):
    """Each shipped model runs at the size its checkpoint records (240x320 golf, 360x480
    CamVid) in `meco eval` and in closed-loop replay alike, with no size flag anywhere; the
    camera frames (180x320) match neither, so a node that used another size would differ.
    The golf node runs the vehicle's backend (ONNX Runtime: the export at the recorded size, shared
    with test_replay_gt_classes through the session's cache), the CamVid one torch (the recorded
    size as inference_size; a second export would cost ~15 s and test nothing new).

    The replay runs with --verbose and its whole log (the evaluator's lines and the node's,
    timed) is kept in replay-eval.log: this test once saw the node say ready and then no
    frame answered. Its time limits nest so that replay-eval always ends on its own first and
    says why: node start <= 120 s, discovery <= 30 s, probe <= 30 s, 3 frames x 30 s, i.e.
    <= 270 s, inside the 400 s given to the process, inside the test's 480 s."""
    from meco_core.cli import main
    from meco_core.data.synth import generate

    checkpoint = REPO / "checkpoints" / shipped
    if not checkpoint.is_file():
        pytest.skip(f"{checkpoint} not shipped in this checkout")
    golf = shipped == "meco_golf.pt"  # the CamVid model has other classes: its depth is compared
    data = tmp_path / "drive"
    generate(data, n=3, seed=11, split="test", height=180, width=320, workers=1, progress=False)
    ref = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--split", "test", "--json", str(ref),
                 "--no-progress", *([] if golf else ["--depth-only"])]) == 0
    bag = write_drive(data, tmp_path / "bag", "mcap")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "meco_core.cli", "replay-eval", "--bag", str(bag), "--image-topic", "/cam/image",
           "--depth-gt-topic", "/cam/depth", *(["--seg-gt-topic", "/cam/labels"] if golf else []),
           "--checkpoint", str(checkpoint), "--closed-loop", "--out", str(out), "--timeout", "30",
           "--start-timeout", "120", "--verbose", *([] if golf else ["--backend", "torch"])]
    run = CliRun(cmd, ros_env(), 400, tmp_path / "replay-eval.log")
    assert run.returncode == 0, run.why()
    doc, expected = json.loads((out / "report.json").read_text()), json.loads(ref.read_text())
    assert doc["frames_scored"] == 3
    assert abs(doc["abs_rel"] - expected["abs_rel"]) <= 0.001 and abs(doc["rmse"] - expected["rmse"]) <= 0.01
    if golf:
        assert abs(doc["miou"] - expected["miou"]) <= 0.1
