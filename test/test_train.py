"""Training, resume, torchrun and `meco eval` on a tiny learnable dataset (CPU, ~1 minute).

The dataset is written here: flat-coloured class regions (so labels are learnable from
colour) on a ground plane whose depth follows the row (learnable from position).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from meco_core.cli import main as meco
from meco_core.train.config import ConfigError, load_config
from meco_core.train.trainer import ResumeError, train

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "config" / "train" / "smoke.yaml"
PYTHON = sys.executable


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, tiny_dataset) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("tiny") / "data")


def overrides(data: Path, out: Path, **extra) -> dict:
    return {"data.train": [{"root": str(data), "split": "train"}], "data.val": [{"root": str(data), "split": "val"}],
            "run.out_dir": str(out), "run.threads": 1, **extra}


def same_weights(a: Path, b: Path) -> list[str]:
    sa = torch.load(a, weights_only=True)["state_dict"]
    sb = torch.load(b, weights_only=True)["state_dict"]
    assert sa.keys() == sb.keys()
    return [k for k in sa if not torch.equal(sa[k], sb[k])]


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory) -> Path:
    """An uninterrupted 12-step run (also the reference for the resume test)."""
    out = tmp_path_factory.mktemp("run") / "full"
    train(load_config(SMOKE, overrides(tiny_data, out, **{"optim.steps": 12})), progress=False)
    return out


# --------------------------------------------------------------------------- config
def test_config_errors_name_the_key(tiny_data, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"optim\.lrr"):
        load_config(SMOKE, {"optim.lrr": 1.0})
    with pytest.raises(ConfigError, match=r"model\.config\.chanels"):
        load_config(SMOKE, {"model.config.chanels": 8})
    with pytest.raises(ConfigError, match=r"data\.batch_size"):
        load_config(SMOKE, {"data.batch_size": "eight"})
    with pytest.raises(ConfigError, match=r"run\.precision"):
        load_config(SMOKE, {"run.precision": "fp8"})
    with pytest.raises(ConfigError, match=r"data\.train\[0\]\.wieght"):
        load_config(SMOKE, {"data.train": [{"root": "x", "wieght": 1}]})


# --------------------------------------------------------------------------- data order
def test_sampler_is_a_function_of_seed_and_step() -> None:
    from meco_core.train.sampler import ResumableBatchSampler

    full = list(ResumableBatchSampler([10, 30], [1.0, 0.5], 4, seed=3, total_steps=20))
    resumed = list(ResumableBatchSampler([10, 30], [1.0, 0.5], 4, seed=3, start_step=13, total_steps=20))
    assert resumed == full[13:]
    epoch0 = [i for b in full[:6] for i, _ in b]               # 25 samples/epoch -> 6 full batches
    assert sum(i < 10 for i in epoch0) >= 9 and len(set(i for i in epoch0 if i < 10)) >= 9  # weight 1: (nearly) all
    ranks = [ResumableBatchSampler([10, 30], [1.0, 0.5], 4, seed=3, rank=r, world_size=2, total_steps=3) for r in (0, 1)]
    for step in range(3):
        a, b = (set(r.batch(step)) for r in ranks)
        assert not a & b                                       # ranks never share a sample of a global batch
    other = ResumableBatchSampler([10, 30], [1.0, 0.5], 4, seed=4, total_steps=20)
    assert list(other) != full


def test_depth_only_source_drops_labels(tiny_data) -> None:
    from meco_core.classes import CAMVID
    from meco_core.train.config import DataSource
    from meco_core.train.data import source_dataset

    cfg = load_config(SMOKE, {"data.class_set": "camvid", "model.config.num_classes": 11})
    ds = source_dataset(DataSource(str(tiny_data), "train", labels=False), cfg, CAMVID, 80.0, train=True)
    item = ds[0]  # golf labels have no camvid mapping: used for depth only
    assert not bool(item["has_seg"]) and bool((item["seg"] == 255).all()) and bool(item["has_depth"])
    assert item["image"].shape[-2:] == (64, 96)


def test_recolour_shares_reach_the_dataset_by_class_name(tiny_data) -> None:
    from meco_core.classes import GOLF
    from meco_core.train.config import DataSource
    from meco_core.train.data import source_dataset

    cfg = load_config(SMOKE)
    ds = source_dataset(DataSource(str(tiny_data), "train", road_relight=0.25, dormant_grass=0.5), cfg, GOLF, 80.0,
                        train=True)
    assert sorted(ds.recolors) == [("dormant", GOLF.names.index("fairway"), 0.5), ("sunlit", GOLF.names.index("road"), 0.25)]
    assert source_dataset(DataSource(str(tiny_data), "train"), cfg, GOLF, 80.0, train=True).recolors == []


# --------------------------------------------------------------------------- training
def test_few_steps_learn_and_write_everything(trained) -> None:
    import csv

    rows = list(csv.DictReader(open(trained / "train.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    seg = [float(r["segmentation"]) for r in rows]
    assert np.mean(seg[-3:]) < np.mean(seg[:3])  # colour -> class is learnable in a few steps
    ckpt = torch.load(trained / "last.pt", weights_only=True)
    assert ckpt["step"] == 12 and ckpt["class_set"]["name"] == "golf" and "optimizer" in ckpt
    assert set(ckpt["rng_states"][0]) >= {"python", "numpy", "torch"}
    assert (trained / "best.pt").exists() and (trained / "val.csv").exists()
    assert list((trained / "tb").glob("events.*")) and float(rows[0]["cb_perplexity"]) > 1


def test_existing_run_needs_resume(trained, tiny_data) -> None:
    with pytest.raises(ResumeError, match="--resume"):
        train(load_config(SMOKE, overrides(tiny_data, trained, **{"optim.steps": 12})), progress=False)


def test_resume_after_kill_matches_uninterrupted_run(trained, tiny_data, tmp_path, data_args) -> None:
    """SIGKILL a `meco train` after its first checkpoint, --resume: same weights bit for bit."""
    out = tmp_path / "killed"
    cmd = [PYTHON, "-m", "meco_core.cli", "train", "--config", str(SMOKE), "--out", str(out), "--steps", "12",
           "--set", "run.ckpt_every=2", "--no-progress", *data_args(tiny_data)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while not (out / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    killed_at = torch.load(out / "last.pt", weights_only=True)["step"]
    assert 2 <= killed_at < 12
    summary = train(load_config(SMOKE, overrides(tiny_data, out, **{"optim.steps": 12, "run.ckpt_every": 2})),
                    resume=True, progress=False)
    assert summary["step"] == 12
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 12
    assert same_weights(trained / "last.pt", out / "last.pt") == []
    steps = [int(line.split(",")[0]) for line in (out / "train.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 13))  # rows of the killed run after its checkpoint were dropped


def test_stop_and_resume_in_process(trained, tiny_data, tmp_path) -> None:
    out = tmp_path / "stopped"
    cfg = load_config(SMOKE, overrides(tiny_data, out, **{"optim.steps": 12, "run.ckpt_every": 5}))
    assert train(cfg, progress=False, stop_after=7)["step"] == 7
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 5
    train(cfg, resume=True, progress=False)
    assert same_weights(trained / "last.pt", out / "last.pt") == []


def test_resume_rejects_a_different_config(trained, tiny_data) -> None:
    cfg = load_config(SMOKE, overrides(tiny_data, trained, **{"optim.steps": 12, "optim.lr": 0.01,
                                                               "model.config.channels": 48}))
    with pytest.raises(ResumeError, match=r"model\.config\.channels.*optim\.lr"):
        train(cfg, resume=True, progress=False)


def test_a_run_saved_before_a_config_key_existed_resumes(trained, tiny_data, tmp_path) -> None:
    """A key added since (here data.camera_look_parts) counts at its default; a real change still refuses."""
    from meco_core.train.checkpointing import load_for_resume

    old = torch.load(trained / "last.pt", weights_only=True)
    del old["train_config"]["data"]["camera_look_parts"]
    torch.save(old, tmp_path / "old.pt")
    cfg = load_config(SMOKE, overrides(tiny_data, trained, **{"optim.steps": 12}))
    assert load_for_resume(tmp_path / "old.pt", cfg.to_dict())["step"] == old["step"]
    changed = load_config(SMOKE, overrides(tiny_data, trained, **{"optim.steps": 12,
                                                                  "data.camera_look_parts": ["blur"]}))
    with pytest.raises(ResumeError, match=r"data\.camera_look_parts"):
        load_for_resume(tmp_path / "old.pt", changed.to_dict())


def test_init_from_starts_from_another_runs_weights(trained, tiny_data, tmp_path) -> None:
    from meco_core.models.checkpoint import CheckpointError
    from meco_core.train.trainer import Trainer

    cfg = load_config(SMOKE, overrides(tiny_data, tmp_path / "ft", **{"model.init_from": str(trained / "last.pt")}))
    start = Trainer(cfg, progress=False).raw_model.state_dict()
    source = torch.load(trained / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(start[k], source[k].to(start[k].dtype)) for k in source)
    bad = load_config(SMOKE, overrides(tiny_data, tmp_path / "ft2", **{"model.init_from": str(trained / "last.pt"),
                                                                       "model.config.channels": 48}))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        Trainer(bad, progress=False)


def test_non_finite_loss_skips_the_step(tiny_data, tmp_path, monkeypatch) -> None:
    from meco_core.models.losses import MultiTaskLoss

    real, calls = MultiTaskLoss.forward, {"n": 0}

    def flaky(self, outputs, aux, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise FloatingPointError("non-finite loss: {'depth': nan}")
        return real(self, outputs, aux, batch)

    monkeypatch.setattr(MultiTaskLoss, "forward", flaky)
    summary = train(load_config(SMOKE, overrides(tiny_data, tmp_path / "nan", **{"optim.steps": 3})), progress=False)
    assert summary["step"] == 3 and summary["skipped_steps"] == 1


# --------------------------------------------------------------------------- torchrun
# `meco` under torchrun, then each rank writes the names of its threads still alive
_RANK_THREADS = """import os, sys
from meco_core.cli.app import main
rc = main(sys.argv[1:])
names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
open(os.environ["THREADS_OUT"] + os.environ["RANK"], "w").write(" ".join(names))
sys.exit(rc)
"""


def test_torchrun_two_processes_agree(tiny_data, tmp_path, data_args) -> None:
    out, summary = tmp_path / "ddp", tmp_path / "ddp.json"
    wrapper = tmp_path / "meco_rank.py"
    wrapper.write_text(_RANK_THREADS)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "THREADS_OUT": str(tmp_path / "threads_rank")}
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(wrapper),
           "train", "--config", str(SMOKE), "--out", str(out), "--steps", "2", "--no-progress", "--json", str(summary),
           *data_args(tiny_data), "--set", "run.threads=1"]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads(summary.read_text())
    assert s["world_size"] == 2 and s["step"] == 2
    assert len(s["rank_digests"]) == 2 and s["rank_digests"][0] == s["rank_digests"][1]  # replicas identical
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["step"] == 2 and ckpt["world_size"] == 2 and len(ckpt["rng_states"]) == 2
    for rank in (0, 1):  # the process group really ended before exit (gloo threads left to exit aborted a rank in CI)
        threads = (tmp_path / f"threads_rank{rank}").read_text().split()
        assert not [t for t in threads if "gloo" in t], threads


# --------------------------------------------------------------------------- meco eval
def test_eval_cli_writes_json_and_grid(trained, tiny_data, tmp_path, capsys) -> None:
    js, out = tmp_path / "m.json", tmp_path / "vis"
    rc = meco(["eval", "--checkpoint", str(trained / "best.pt"), "--data", str(tiny_data), "--json", str(js),
               "--out", str(out), "--no-progress"])
    assert rc == 0
    m = json.loads(js.read_text())
    for key in ("miou", "iou_per_class", "rmse", "rmse_log", "abs_rel", "sq_rel", "d1", "d2", "d3", "fps", "frames"):
        assert key in m, key
    assert m["frames"] == 2 and len(m["iou_per_class"]) == 5 and 0 <= m["miou"] <= 100 and m["fps"] > 0
    assert (out / "eval_grid.png").stat().st_size > 1000
    assert (out / "confusion.png").stat().st_size > 1000
    assert np.array(m["confusion"]).shape == (5, 5) and np.array(m["confusion"]).sum() > 0
    # one row per frame, named after it, in the JSON and the CSV; the set's AbsRel lies between the frames'
    rows = m["per_frame"]
    assert len(rows) == 2 and all(r["abs_rel"] is not None and r["miou_gt"] is not None for r in rows)
    assert min(r["abs_rel"] for r in rows) <= m["abs_rel"] <= max(r["abs_rel"] for r in rows)
    csv_lines = (out / "per_frame.csv").read_text().splitlines()
    assert csv_lines[0].startswith("name,rmse,rmse_log,abs_rel") and len(csv_lines) == 3
    assert {line.split(",")[0] for line in csv_lines[1:]} == {r["name"] for r in rows}
    printed = capsys.readouterr().out
    assert "AbsRel" in printed and "mIoU" in printed and "FPS" in printed


def test_eval_scores_the_raw_arg_max_on_request(trained, tiny_data, tmp_path, capsys) -> None:
    """--min-island-fraction 0 scores labels without the island step (a baseline scored before
    it existed is compared like for like); the JSON records which; a fraction outside [0, 1) is
    refused with its reason."""
    runs = {}
    for name, extra in (("default", []), ("raw", ["--min-island-fraction", "0"])):
        js = tmp_path / f"{name}.json"
        assert meco(["eval", "--checkpoint", str(trained / "best.pt"), "--data", str(tiny_data), "--json", str(js),
                     "--no-progress", *extra]) == 0
        runs[name] = json.loads(js.read_text())
    assert runs["default"]["min_island_fraction"] == 0.002 and runs["raw"]["min_island_fraction"] == 0.0
    capsys.readouterr()
    assert meco(["eval", "--checkpoint", str(trained / "best.pt"), "--data", str(tiny_data),
                 "--min-island-fraction", "1.5", "--no-progress"]) == 2
    assert "--min-island-fraction must be in [0, 1)" in capsys.readouterr().err


def test_eval_accepts_a_split_folder_and_uses_the_recorded_input_size(trained, tiny_data, tmp_path, capsys) -> None:
    from meco_core.inference.export import slim_checkpoint

    slim_checkpoint(trained / "best.pt", tmp_path / "sized.pt", input_size=(32, 48))
    js = tmp_path / "m.json"
    assert meco(["eval", "--checkpoint", str(tmp_path / "sized.pt"), "--data", str(tiny_data / "val"),
                 "--json", str(js), "--no-progress"]) == 0
    m = json.loads(js.read_text())
    assert m["split"] == "val" and m["frames"] == 2 and m["size"] == [32, 48]
    assert meco(["eval", "--checkpoint", str(tmp_path / "sized.pt"), "--data", str(tiny_data / "val"),
                 "--split", "train", "--no-progress"]) == 2
    assert f"use --data {tiny_data} --split train" in capsys.readouterr().err


def test_eval_rejects_classes_without_remap(tiny_data, tmp_path, capsys) -> None:
    from meco_core import build_model
    from meco_core.models.checkpoint import save_checkpoint
    from meco_core.classes import CAMVID

    model = build_model("plain", backbone="vit_tiny_patch16_224", channels=16, num_classes=11)
    save_checkpoint(tmp_path / "camvid.pt", model, class_set=CAMVID.to_dict())
    assert meco(["eval", "--checkpoint", str(tmp_path / "camvid.pt"), "--data", str(tiny_data), "--no-progress"]) == 2
    assert "no remap golf->camvid" in capsys.readouterr().err


def test_ctrl_c_saves_the_step_it_finished_and_resume_matches(trained, tiny_data, tmp_path, data_args) -> None:
    """SIGINT to `meco train` (no periodic checkpoint yet): it finishes the step in progress,
    saves last.pt at that step, exits 130; --resume then ends bit-identical to an
    uninterrupted run."""
    out = tmp_path / "ctrl_c"
    cmd = [PYTHON, "-m", "meco_core.cli", "train", "--config", str(SMOKE), "--out", str(out), "--steps", "12",
           "--set", "run.ckpt_every=100", "--set", "run.log_every=1", "--no-progress", *data_args(tiny_data)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    csv, deadline = out / "train.csv", time.time() + 90
    while not (csv.exists() and len(csv.read_text().splitlines()) >= 3) and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted at step" in err, err[-2000:]
    stopped_at = torch.load(out / "last.pt", weights_only=True)["step"]
    assert 2 <= stopped_at < 12
    train(load_config(SMOKE, overrides(tiny_data, out, **{"optim.steps": 12, "run.ckpt_every": 100})),
          resume=True, progress=False)
    assert same_weights(trained / "last.pt", out / "last.pt") == []


def test_real_grass_reaches_the_dataset_as_a_texture_bank(tiny_data, tmp_path) -> None:
    """A source with real_grass gets a bank cut from real_grass_from's fairway, applied to its fairway."""
    from meco_core.classes import GOLF
    from meco_core.data.format import DatasetWriter
    from meco_core.train.config import DataSource
    from meco_core.train.data import source_dataset

    real = tmp_path / "real"
    with DatasetWriter(real, GOLF) as w:
        w.write("train", "r0", np.full((128, 128, 3), (50, 120, 40), np.uint8), labels=np.ones((128, 128), np.uint8))
    cfg = load_config(SMOKE)
    ds = source_dataset(DataSource(str(tiny_data), "train", real_grass=0.5, real_grass_from=str(real)), cfg, GOLF,
                        80.0, train=True)
    (bank, class_id, share), = ds.textures
    assert class_id == GOLF.names.index("fairway") and share == 0.5 and len(bank) >= 1
    assert source_dataset(DataSource(str(tiny_data), "train"), cfg, GOLF, 80.0, train=True).textures == []


# --------------------------------------------------------------------------- fine-tuning recipes
def test_set_indexes_list_entries(tiny_data) -> None:
    cfg = load_config(SMOKE, {"data.train.0.root": "data/other_cart", "data.val.0.split": "test"})
    assert cfg.data.train[0].root == "data/other_cart" and cfg.data.val[0].split == "test"
    cfg = load_config(SMOKE, {"data.train.1": {"root": "data/replay", "weight": 0.3}})
    assert [s.root for s in cfg.data.train] == ["data/smoke", "data/replay"] and cfg.data.train[1].weight == 0.3
    with pytest.raises(ConfigError, match=r"data\.train is a list of 1; use an index 0-0 \(or 1 to append a whole "
                                          r"entry\) instead of '3'"):
        load_config(SMOKE, {"data.train.3.root": "x"})
    with pytest.raises(ConfigError, match=r"instead of '1'"):
        load_config(SMOKE, {"data.train.1.root": "x"})  # appending takes a whole entry
    with pytest.raises(ConfigError, match=r"instead of 'root'"):
        load_config(SMOKE, {"data.train.root": "x"})
    with pytest.raises(ConfigError, match=r"optim\.lr is not a section"):
        load_config(SMOKE, {"optim.lr.x": 1})


def test_init_from_alone_takes_the_network_from_the_checkpoint(trained, tiny_data, tmp_path) -> None:
    ckpt = torch.load(trained / "last.pt", weights_only=True)
    recipe = tmp_path / "finetune.yaml"
    smoke = yaml.safe_load(SMOKE.read_text())
    recipe.write_text(yaml.safe_dump({**smoke, "model": {"init_from": str(trained / "last.pt")}}))
    cfg = load_config(recipe, overrides(tiny_data, tmp_path / "ft", **{"optim.steps": 2, "optim.lr": 1e-6, "run.seed": 5}))
    assert cfg.model.name == ckpt["model_name"] and cfg.model.config == ckpt["model_config"]
    train(cfg, resume=True, progress=False)  # a script that always passes --resume: the first start still fine-tunes
    tuned = torch.load(tmp_path / "ft" / "last.pt", weights_only=True)
    assert tuned["model_config"] == ckpt["model_config"] and tuned["step"] == 2
    weights = [k for k, v in ckpt["state_dict"].items() if k.endswith(".weight") and v.is_floating_point()]
    assert max((tuned["state_dict"][k] - ckpt["state_dict"][k]).abs().max().item() for k in weights) < 1e-3, \
        "the run did not start from model.init_from"
    # resuming re-reads the same checkpoint and finds the same config: no "config differs" refusal
    train(load_config(recipe, overrides(tiny_data, tmp_path / "ft", **{"optim.steps": 2, "optim.lr": 1e-6, "run.seed": 5})),
          resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"predicts \['background', 'fairway'.*data\.class_set 'camvid'"):
        load_config(recipe, {"data.class_set": "camvid"})
    with pytest.raises(ConfigError, match=r"model\.name is 'mlore' but model\.init_from .* holds 'meco'"):
        load_config(recipe, {"model.name": "mlore"})
    with pytest.raises(ConfigError, match=r"model\.init_from: no checkpoint at nowhere\.pt"):
        load_config(recipe, {"model.init_from": "nowhere.pt"})


def test_every_committed_training_config_loads() -> None:
    """Each config under config/train is a recipe someone runs as written (the fine-tune template
    reads the shipped checkpoint for its network)."""
    configs = sorted((REPO / "config" / "train").glob("*.yaml"))
    assert len(configs) > 20
    for path in configs:
        load_config(path)
    finetune = load_config(REPO / "config" / "train" / "meco_golf_finetune.yaml")
    shipped = torch.load(REPO / "checkpoints" / "meco_golf.pt", weights_only=True)
    assert finetune.model.config == shipped["model_config"]
