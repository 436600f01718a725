"""`meco compare`: same-budget training of several models, scored and benchmarked in one table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from meco_core.cli import main as meco
from meco_core.experiments.compare import EvalSpec, config_for

SMOKE = Path(__file__).resolve().parents[1] / "config" / "train" / "smoke.yaml"


def compare_args(data: Path, out: Path, data_args) -> list[str]:
    return ["compare", "--config", str(SMOKE), "--models", "meco,single_depth,single_segmentation",
            "--eval", f"{data}:val", "--eval", f"{data}:val:depth", "--out", str(out), "--steps", "2",
            "--size", "64x96", "--repeats", "2", "--no-progress", *data_args(data)]


@pytest.fixture(scope="module")
def compared(tmp_path_factory, tiny_dataset, data_args) -> tuple[Path, Path]:
    data = tiny_dataset(tmp_path_factory.mktemp("cmp") / "data", n_train=4, n_val=2)
    out = tmp_path_factory.mktemp("cmp") / "out"
    assert meco(compare_args(data, out, data_args)) == 0
    return data, out


def test_every_model_trained_scored_and_costed(compared) -> None:
    _, out = compared
    result = json.loads((out / "compare.json").read_text())
    rows = result["rows"]
    assert list(rows) == ["meco", "single_depth", "single_segmentation", "single-task pair"]
    for name in ("meco", "single_depth", "single_segmentation"):
        assert (out / name / "last.pt").is_file()
        assert rows[name]["params_m"] > 0 and rows[name]["gflops"] > 0 and rows[name]["fps"] > 0
    seg, depth = "data/val", "data/val depth"  # one split, scored with labels and depth-only
    assert rows["meco"]["metrics"][seg]["miou"] is not None
    assert rows["single_depth"]["metrics"][seg]["miou"] is None          # no segmentation head
    assert rows["single_segmentation"]["metrics"][depth]["abs_rel"] is None
    pair = rows["single-task pair"]
    assert pair["params_m"] == pytest.approx(rows["single_depth"]["params_m"] + rows["single_segmentation"]["params_m"])
    assert pair["gflops"] == pytest.approx(rows["single_depth"]["gflops"] + rows["single_segmentation"]["gflops"])
    assert pair["metrics"][seg]["miou"] == rows["single_segmentation"]["metrics"][seg]["miou"]
    assert pair["metrics"][depth]["abs_rel"] == rows["single_depth"]["metrics"][depth]["abs_rel"]
    table = (out / "compare.md").read_text()
    assert table.count("\n") == 2 + 4 and "| single-task pair |" in table
    assert (out / "compare.png").stat().st_size > 5000


def test_rerun_reuses_finished_runs(compared, capsys, data_args) -> None:
    data, out = compared
    stamp = (out / "meco" / "last.pt").stat().st_mtime_ns
    before = json.loads((out / "compare.json").read_text())["rows"]["meco"]["metrics"]
    assert meco(compare_args(data, out, data_args)) == 0
    assert "meco: scores cached in" in capsys.readouterr().out
    assert (out / "meco" / "last.pt").stat().st_mtime_ns == stamp
    assert json.loads((out / "compare.json").read_text())["rows"]["meco"]["metrics"] == before


def test_cached_scores_resume_without_weights(compared, tmp_path, capsys, data_args) -> None:
    """Another machine holds only the committed scores.json files: nothing is retrained."""
    import shutil

    data, out = compared
    moved = tmp_path / "out"
    shutil.copytree(out, moved)
    for checkpoint in moved.rglob("*.pt"):
        checkpoint.unlink()
    assert meco(compare_args(data, moved, data_args)) == 0
    assert not list(moved.rglob("*.pt"))
    rows = json.loads((moved / "compare.json").read_text())["rows"]
    assert rows["meco"]["metrics"] == json.loads((out / "compare.json").read_text())["rows"]["meco"]["metrics"]
    assert rows["meco"]["gflops"] > 0


def test_scores_for_another_step_count_are_not_reused(compared, tmp_path) -> None:
    from meco_core.experiments.compare import cached_scores

    data, out = compared
    specs = [EvalSpec.parse(f"{data}:val")]
    assert cached_scores(out, "meco", None, 2, specs) is not None
    assert cached_scores(out, "meco", None, 3, specs) is None
    assert cached_scores(out, "meco", None, 2, [EvalSpec.parse(f"{data}:test")]) is None


def test_model_keys_a_model_does_not_take_are_dropped() -> None:
    base = {"backbone": "vit_tiny_patch16_224", "channels": 32, "num_experts": 3, "codebook_size": 16}
    kept, dropped = config_for(base, "single_depth")
    assert kept == {"backbone": "vit_tiny_patch16_224", "channels": 32}
    assert dropped == ["codebook_size", "num_experts"]
    assert config_for(base, "taskexpert")[1] == ["codebook_size"]


@pytest.mark.parametrize("text", ["data", "data:", "a:b:c"])
def test_bad_eval_sets_are_named(text) -> None:
    with pytest.raises(ValueError, match="eval set"):
        EvalSpec.parse(text)


def test_unknown_model_is_an_error(tmp_path, capsys) -> None:
    assert meco(["compare", "--config", str(SMOKE), "--models", "meco,nope", "--eval", "x:val",
                 "--out", str(tmp_path)]) == 2
    assert "unknown models ['nope']" in capsys.readouterr().err


def test_several_seeds_give_mean_and_spread(tmp_path, tiny_dataset, data_args) -> None:
    data = tiny_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "out"
    args = ["compare", "--config", str(SMOKE), "--models", "single_segmentation", "--seeds", "1,2",
            "--eval", f"{data}:val", "--out", str(out), "--steps", "2", "--size", "64x96", "--repeats", "1",
            "--no-progress", *data_args(data)]
    assert meco(args) == 0
    assert (out / "single_segmentation" / "seed1" / "last.pt").is_file()
    assert (out / "single_segmentation" / "seed2" / "last.pt").is_file()
    row = json.loads((out / "compare.json").read_text())["rows"]["single_segmentation"]
    per_seed = [row["seeds"][s]["data/val"]["miou"] for s in ("1", "2")]
    assert row["metrics"]["data/val"]["miou"] == pytest.approx(sum(per_seed) / 2)
    assert row["spread"]["data/val"]["miou"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2)
    assert " ± " in (out / "compare.md").read_text()
