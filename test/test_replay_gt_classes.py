"""Replay evaluation scores label images in the right class set (issue 20, item 4).

A label image carries no class set. Real CamVid frames (converted with `meco data camvid
--limit`) go through the golf model: in a bag written by another tool (rosbags' own
writer, no metadata) `--gt-classes camvid` remaps them camvid->golf exactly as `meco eval`
does; without it the CamVid ids (8 = Car, ...) are an error before anything is replayed;
in a bag written by `meco data make-bag` the class set is read from /meco/dataset_info.
Real perception_node over DDS, nothing mocked.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from meco_core.data.format import DatasetReader
from meco_core.geometry import intrinsics_matrix
from meco_ros.proc import REPO, ros_env, start_node
from meco_ros.replay.evaluator import ReplayConfig, replay
from test_replay_eval import ForeignBag, eval_json, node_args, serve, tiny_golf_checkpoint

pytestmark = pytest.mark.timeout(240)

N = 3
NS = "/meco_gt_classes_test"
T0 = 1_650_000_000 * 10**9
FX, FY, CX, CY = 400.0, 400.0, 240.0, 180.0  # CamVid has no intrinsics; any K will do (no depth here)


@pytest.fixture(scope="module")
def camvid(shared_data, tmp_path_factory) -> Path:
    """N CamVid val frames in meco format (labels in camvid ids 0..10, 255)."""
    from meco_core.cli import main

    root = tmp_path_factory.mktemp("camvid") / "camvid"
    assert main(["data", "camvid", "--root", str(shared_data / "camvid"), "--out", str(root), "--limit", str(N),
                 "--splits", "val"]) == 0
    return root


@pytest.fixture(scope="module")
def golf_checkpoint(tmp_path_factory) -> Path:
    """The shipped golf model, else a tiny random-weight one in golf classes."""
    shipped = REPO / "checkpoints" / "meco_golf.pt"
    if shipped.is_file():
        return shipped
    return tiny_golf_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_golf.pt")


@pytest.fixture(scope="module")
def eval_ref(camvid, golf_checkpoint, tmp_path_factory) -> dict:
    """`meco eval` of the golf model on the same CamVid frames (remapped camvid->golf)."""
    return eval_json(golf_checkpoint, camvid, "val", tmp_path_factory.mktemp("eval") / "eval.json")


@pytest.fixture(scope="module")
def node(golf_checkpoint):
    yield from serve(start_node(node_args(golf_checkpoint, NS, "threads:=2"), ros_env(OMP_NUM_THREADS="2")))


def foreign_bag(camvid: Path, path: Path, storage: str = "sqlite3") -> Path:
    """The CamVid frames as another tool records them: image, camera_info, labels; no class set anywhere."""
    reader = DatasetReader(camvid)
    K = intrinsics_matrix(FX, FY, CX, CY)
    with ForeignBag(path, storage) as bag:
        for i, name in enumerate(reader.names("val")):
            s = reader.load("val", name)
            t = T0 + i * 100_000_000
            bag.write("/cam/image", "sensor_msgs/msg/Image", t, bag.image(t, s.rgb, "rgb8"))
            bag.write("/cam/labels", "sensor_msgs/msg/Image", t, bag.image(t, s.labels, "mono8"))
            bag.write("/cam/info", "sensor_msgs/msg/CameraInfo", t, bag.camera_info(t, K, *s.rgb.shape[:2]))
    return path


def run_replay(bag: Path, out: Path, **kw) -> tuple[int, dict]:
    cfg = dict(bag=str(bag), image_topic="/cam/image", seg_gt_topic="/cam/labels", use_running_node=True,
               node_namespace=NS, out=str(out), timeout=60.0, start_timeout=60.0, command="test")
    cfg.update(kw)
    return replay(ReplayConfig(**cfg))


# ------------------------------------------------------------------ tests
def test_foreign_bag_with_gt_classes_scores_like_meco_eval(camvid, eval_ref, node, tmp_path):
    """--gt-classes camvid: remapped camvid->golf, the mIoU of `meco eval` on the same frames.
    No --checkpoint: the classes come from the node's Prediction (checked after the probe)."""
    bag = foreign_bag(camvid, tmp_path / "drive")
    code, result = run_replay(bag, tmp_path / "out", gt_classes="camvid")
    assert code == 0, result["problems"]
    assert result["frames_scored"] == N
    assert abs(result["miou"] - eval_ref["miou"]) <= 0.1, (result["miou"], eval_ref["miou"])
    run = json.loads((tmp_path / "out" / "report.json").read_text())["run"]
    assert run["gt_classes"] == "camvid (--gt-classes), remapped camvid->golf"


def test_camvid_ids_without_a_class_set_are_an_error_before_replaying(camvid, golf_checkpoint, tmp_path):
    """No flag, no metadata: CamVid ids 5..10 are not golf ids -> exit 2, nothing sent, no score."""
    bag = foreign_bag(camvid, tmp_path / "drive", "mcap")
    code, result = run_replay(bag, tmp_path / "out", use_running_node=False, checkpoint=str(golf_checkpoint),
                              node_namespace="/nobody")
    assert code == 2 and result["frames_sent"] == 0 and result["frames_scored"] == 0
    problem = result["problems"][-1]
    assert f"label ids 5 (in {N} messages)" in problem and f"8 (in {N} messages)" in problem, problem
    assert "model's class set 'golf'" in problem and "--gt-classes NAME (known: camvid, golf, ycor)" in problem
    assert np.isnan(result["miou"])


def test_unknown_class_set_and_missing_remap_are_errors(camvid, tmp_path):
    bag = foreign_bag(camvid, tmp_path / "drive")
    code, result = run_replay(bag, tmp_path / "a", gt_classes="cityscapes", node_namespace="/nobody")
    assert code == 2 and result["frames_sent"] == 0
    assert "--gt-classes 'cityscapes' is not a known class set; known: camvid, golf, ycor" in result["problems"][-1]
    shipped_camvid = REPO / "checkpoints" / "meco_camvid.pt"
    if shipped_camvid.is_file():  # golf labels cannot be expressed in CamVid's 11 classes
        code, result = run_replay(bag, tmp_path / "b", gt_classes="golf", use_running_node=False,
                                  checkpoint=str(shipped_camvid), node_namespace="/nobody")
        assert code == 2 and result["frames_sent"] == 0
        assert "no remap golf->camvid is registered" in result["problems"][-1], result["problems"]
        assert "known class sets: camvid, golf, ycor" in result["problems"][-1]
    # the CLI names it too, on stderr, with exit code 2
    proc = subprocess.run([sys.executable, "-m", "meco_core.cli", "replay-eval", "--bag", str(bag), "--image-topic",
                           "/cam/image", "--seg-gt-topic", "/cam/labels", "--gt-classes", "nope",
                           "--use-running-node", "--node-namespace", "/nobody", "--out", str(tmp_path / "c")],
                          env=ros_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "'nope' is not a known class set; known: camvid, golf, ycor" in proc.stderr


def test_make_bag_records_the_class_set_and_replay_uses_it(camvid, eval_ref, golf_checkpoint, node, tmp_path):
    from meco_core.bags.from_dataset import make_bag
    from meco_core.bags.replay_source import BagSource

    intr = f"{FX},{FY},{CX},{CY}"
    for storage, name in (("sqlite3", "s"), ("ros1", "r.bag")):  # read back from every storage
        make_bag(camvid, tmp_path / name, split="val", storage=storage, depth_topic=None, intrinsics=intr, limit=1,
                 verbose=False)
        with BagSource(tmp_path / name, "/camera/image_raw", seg_topic="/camera/segmentation") as src:
            spec, where = src.label_class_set()
        assert spec["name"] == "camvid" and spec["names"][8] == "Car" and where == "bag metadata /meco/dataset_info"
    bag = tmp_path / "drive"
    make_bag(camvid, bag, split="val", storage="mcap", depth_topic=None, intrinsics=intr, verbose=False)
    code, result = run_replay(bag, tmp_path / "out", image_topic="/camera/image_raw",
                              seg_gt_topic="/camera/segmentation", checkpoint=str(golf_checkpoint))
    assert code == 0, result["problems"]
    assert result["frames_scored"] == N
    assert abs(result["miou"] - eval_ref["miou"]) <= 0.1, (result["miou"], eval_ref["miou"])
    run = json.loads((tmp_path / "out" / "report.json").read_text())["run"]
    assert run["gt_classes"] == "camvid (bag metadata /meco/dataset_info), remapped camvid->golf"
