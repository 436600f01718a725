"""`meco bench` end to end on tiny models: table, JSON rows, ablation rows, checkpoint mode."""
from __future__ import annotations

import json

import pytest

from meco_core import build_model
from meco_core.models.checkpoint import save_checkpoint
from meco_core.cli import main

TINY_ARGS = ["--backbone", "vit_tiny_patch16_224", "--size", "64x80", "--channels", "32",
             "--repeats", "2", "--warmup", "1"]
KEYS = {"model", "params_m", "gflops", "latency_ms", "latency_p90_ms", "fps"}


def test_side_by_side_rows_and_ratios(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--models", "meco,mlore,mlore_reparam,taskexpert", *TINY_ARGS, "--json", str(out)]) == 0
    rows = {r["model"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"meco", "mlore", "mlore_reparam", "taskexpert"}
    for row in rows.values():
        assert KEYS <= set(row) and row["gflops"] > 0 and row["fps"] > 0
        assert row["latency_p90_ms"] >= row["latency_ms"]
    assert rows["mlore"]["gflops_ratio"] == pytest.approx(1.0)
    assert rows["meco"]["gflops"] < rows["mlore"]["gflops"]                 # training form is dearer
    assert rows["mlore_reparam"]["gflops"] < rows["mlore"]["gflops"]
    assert "FPS x mlore" in capsys.readouterr().out


def test_ablation_rows_carry_n_and_k(tmp_path, capsys) -> None:
    out = tmp_path / "abl.json"
    assert main(["bench", *TINY_ARGS, "--experts", "5,20", "--topk", "3,12", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["experts"], r["topk"]) for r in rows] == [(5, 3), (20, 12)]
    assert rows[1]["params_m"] > rows[0]["params_m"]
    assert main(["bench", *TINY_ARGS, "--experts", "5,20", "--topk", "3"]) == 2
    assert "paired lists" in capsys.readouterr().err


def test_checkpoint_mode_uses_the_checkpoints_own_config(tmp_path) -> None:
    model = build_model("meco", backbone="vit_tiny_patch16_224", channels=24, num_experts=4, top_k=2)
    save_checkpoint(tmp_path / "m.pt", model)
    out = tmp_path / "ck.json"
    assert main(["bench", "--checkpoint", str(tmp_path / "m.pt"), "--size", "48x64", "--repeats", "2",
                 "--warmup", "1", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["params_m"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)


def test_several_checkpoints_side_by_side_with_ratios_to_the_first(tmp_path) -> None:
    small = build_model("plain", backbone="vit_tiny_patch16_224", channels=16)
    cnn = build_model("plain", backbone="tf_efficientnet_lite0", channels=16)
    save_checkpoint(tmp_path / "a.pt", small)
    save_checkpoint(tmp_path / "b.pt", cnn)
    out = tmp_path / "two.json"
    assert main(["bench", "--checkpoint", str(tmp_path / "a.pt"), "--checkpoint", str(tmp_path / "b.pt"),
                 "--size", "48x64", "--repeats", "2", "--warmup", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["model"] for r in rows] == [f"plain ({tmp_path / 'a.pt'})", f"plain ({tmp_path / 'b.pt'})"]
    assert rows[1]["params_m"] == pytest.approx(sum(p.numel() for p in cnn.parameters()) / 1e6)


def test_backends_side_by_side(tmp_path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    model = build_model("plain", backbone="tf_efficientnet_lite0", channels=16)
    save_checkpoint(tmp_path / "m.pt", model)
    out = tmp_path / "backends.json"
    assert main(["bench", "--checkpoint", str(tmp_path / "m.pt"), "--backend", "torch,onnxruntime", "--size", "64x96",
                 "--repeats", "2", "--warmup", "1", "--threads", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out   # the backend is part of each row's name, not swallowed as a rich style tag
    assert "[torch]" in printed and "[onnxruntime]" in printed
    assert json.loads(out.read_text())["backbone"] is None   # a checkpoint's backbone is its own, not the flag's default
    torch_row, ort_row = json.loads(out.read_text())["rows"]
    assert torch_row["backend"] == "torch" and ort_row["backend"] == "onnxruntime"
    assert ort_row["model"].endswith("[onnxruntime]") and ort_row["params_m"] == torch_row["params_m"]
    assert ort_row["gflops"] == torch_row["gflops"] > 0 and ort_row["fps"] > 0 and "fps_ratio" in ort_row
    assert main(["bench", "--checkpoint", str(tmp_path / "m.pt"), "--backend", "tpu"]) == 2
    assert "choose from torch, onnxruntime, tensorrt" in capsys.readouterr().err
    assert main(["bench", "--checkpoint", str(tmp_path / "m.pt"), "--backend", "torch,tensorrt"]) == 2
    assert "NVIDIA GPU" in capsys.readouterr().err   # refused before any export, with what to change


def test_precisions_side_by_side(tmp_path) -> None:
    out = tmp_path / "prec.json"
    assert main(["bench", *TINY_ARGS, "--models", "plain", "--precision", "fp32,bf16", "--channels-last",
                 "--json", str(out)]) == 0
    fp32, bf16 = json.loads(out.read_text())["rows"]
    assert (fp32["model"], bf16["model"]) == ("plain [fp32]", "plain [bf16]")
    assert bf16["precision"] == "bf16" and bf16["channels_last"] and bf16["gflops"] == fp32["gflops"]
    assert "fps_ratio" in bf16


class _Recorder:
    """A 'model' that records how many calls overlap (sleep releases the GIL, as ORT does)."""

    def __init__(self) -> None:
        import threading

        self.lock, self.active, self.peak, self.calls = threading.Lock(), 0, 0, 0

    def __call__(self, image):
        import time

        with self.lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.005)
        with self.lock:
            self.active -= 1
        return image


def test_throughput_streams_really_run_at_once() -> None:
    import torch

    from meco_core.evaluation.bench import measure_throughput

    model = _Recorder()
    fps = measure_throughput(model, torch.zeros(1), streams=3, frames=4)
    assert model.peak == 3 and model.calls == 3 * (4 + 1) and fps > 0   # 1 warm-up call per stream


def test_every_timed_call_follows_an_untimed_one_of_the_same_model() -> None:
    """A runtime that spins after a call must not slow the next model's timed call."""
    import torch

    from meco_core.evaluation.bench import measure_latency

    models = {"a": _Recorder(), "b": _Recorder()}
    times = measure_latency(models, torch.zeros(1), warmup=1, repeats=3, progress=False)
    assert all(len(t) == 3 for t in times.values())
    assert all(m.calls == 1 + 2 * 3 for m in models.values())


def test_checkpoint_is_timed_at_its_recorded_input_size_unless_told(tmp_path) -> None:
    from meco_core.cli.commands.bench import resolve_size
    from meco_core.defaults import BENCH_SIZE
    from meco_core.errors import MecoError

    model = build_model("plain", backbone="vit_tiny_patch16_224", channels=16)
    save_checkpoint(tmp_path / "m.pt", model, input_size=[32, 48])
    out = tmp_path / "own.json"
    assert main(["bench", "--checkpoint", str(tmp_path / "m.pt"), "--repeats", "2", "--warmup", "1",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["size"] == [32, 48]
    assert main(["bench", "--checkpoint", str(tmp_path / "m.pt"), "--size", "48x64", "--repeats", "2", "--warmup", "1",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["size"] == [48, 64]
    assert resolve_size(None, [None]) == BENCH_SIZE and resolve_size(None, []) == BENCH_SIZE
    assert resolve_size(None, [(32, 48), None]) == (32, 48)
    with pytest.raises(MecoError, match="different input sizes"):
        resolve_size(None, [(32, 48), (64, 96)])
