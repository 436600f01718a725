"""`meco export --format onnx`: every inference form exports, carries its metadata, and
ONNX Runtime reproduces torch (depth max abs diff, label agreement)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from meco_core.classes import GOLF  # noqa: E402
from meco_core.cli import main as meco  # noqa: E402
from meco_core.inference.onnx_export import ort_session, read_onnx_metadata  # noqa: E402

SIZE = (64, 96)  # conftest.TINY_SIZE: what make_checkpoint records


@pytest.mark.parametrize("name", ["meco", "mlore_reparam", "taskexpert", "plain"])
def test_onnx_runtime_reproduces_torch(tmp_path, capsys, make_checkpoint, name: str) -> None:
    ckpt, out = make_checkpoint(name), tmp_path / f"{name}.onnx"
    assert meco(["export", "--checkpoint", ckpt, "--format", "onnx", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["size"] == list(SIZE)          # the checkpoint's recorded size
    assert result["parity"]["depth_max_abs_diff_m"] < 1e-3 and result["parity"]["label_agreement"] > 0.999
    meta = read_onnx_metadata(out)
    assert meta["input_size"] == list(SIZE) and meta["tasks"] == ["depth", "segmentation"]
    assert meta["class_set"]["names"] == list(GOLF.names) and meta["max_depth"] == 80.0
    session = ort_session(out, threads=1)
    assert [i.shape for i in session.get_inputs()] == [[1, 3, *SIZE]]
    depth, seg = session.run(None, {"image": torch.rand(1, 3, *SIZE).numpy()})
    assert depth.shape == (1, 1, *SIZE) and seg.shape == (1, 5, *SIZE) and (depth > 0).all()


def test_eval_through_onnxruntime_equals_torch(tmp_path, make_checkpoint, tiny_dataset, onnx_cache) -> None:
    from meco_core.inference.runtime import onnx_for

    data = tiny_dataset(tmp_path / "data", n_train=1, n_val=3)   # 64x96 frames, golf classes
    ckpt = make_checkpoint("meco")
    onnx_file = onnx_for(ckpt, None, cache_dir=onnx_cache)  # `meco export` itself is tested above
    results = {}
    for backend, model in (("torch", ckpt), ("onnxruntime", str(onnx_file))):
        out = tmp_path / f"{backend}.json"
        assert meco(["eval", "--checkpoint", model, "--backend", backend, "--data", str(data), "--json", str(out),
                     "--no-progress"]) == 0
        results[backend] = json.loads(out.read_text())
    t, o = results["torch"], results["onnxruntime"]
    assert o["backend"] == "onnxruntime" and o["frames"] == t["frames"] == 3
    assert abs(o["miou"] - t["miou"]) < 0.1 and abs(o["abs_rel"] - t["abs_rel"]) < 1e-3
    assert meco(["eval", "--checkpoint", str(onnx_file), "--data", str(data), "--no-progress"]) == 2   # no --backend


def test_two_saves_to_one_file_interleaved_both_succeed(tmp_path) -> None:
    """Nodes started together export the same checkpoint to the same cache file at once. Here a
    second save runs entirely between the first one's write and rename (from the first's
    verification): each writes a temporary of its own, so neither renames the other's away
    (tools/replay_stress.py found a shared temporary name: a node failed with "No such file or
    directory"). A refused file is never renamed in, and no temporary is left."""
    import onnx
    from onnx import TensorProto, helper

    from meco_core.inference.onnx_export import save_verified

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    proto, dst = helper.make_model(graph), tmp_path / "cache" / "same.onnx"
    dst.parent.mkdir()
    rivals: list[Path] = []

    def verify_while_a_rival_saves(path: Path) -> None:
        if not rivals:
            rivals.append(path)
            save_verified(proto, dst, lambda p: None)  # the other process, start to finish
            assert path.exists(), "the rival moved this save's temporary away"

    save_verified(proto, dst, verify_while_a_rival_saves)
    assert rivals and onnx.load(str(dst)).graph.node[0].op_type == "Identity"
    assert dst.stat().st_mode & 0o044, "the cache file must stay readable to other users"

    def refuse(path: Path) -> None:
        raise RuntimeError("parity failed")

    before = dst.read_bytes()
    with pytest.raises(RuntimeError, match="parity failed"):
        save_verified(helper.make_model(graph, doc_string="other"), dst, refuse)
    assert dst.read_bytes() == before
    assert not list(dst.parent.glob(".*.tmp")), "a temporary was left behind"
