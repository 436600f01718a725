"""The path a user with their own cart takes, end to end, with the shipped golf model:
drives recorded as bags (camera + lidar + camera_info + /tf_static) -> `meco data from-bag`
-> `meco train --config config/train/meco_golf_finetune.yaml` (the committed recipe, pointed at
the new data by `--set`) -> `meco export` -> the Estimator and `meco eval` on the held-out drive.

The drives are rendered (small, a few frames) so the test runs anywhere; what it checks is that
every step accepts the previous step's output and that the fine-tune starts from the shipped
weights and moves them. Whether fine-tuning helps is measured by a command, not here (README,
"Fine-tune on your own cart").
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from meco_core.cli import main
from meco_core.models import model_config_keys

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints" / "meco_golf.pt"


def meco(*args: object) -> None:
    assert main([str(a) for a in args]) == 0, args


def test_bag_to_finetuned_model(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # the recipe names the shipped checkpoint relative to the repository, as documented
    render = tmp_path / "render"
    meco("data", "synth", "--out", render, "--n", 4, "--seed", 31, "--split", "train", "--size", "96x128", "--near")
    meco("data", "synth", "--out", render, "--n", 2, "--seed", 32, "--split", "val", "--size", "96x128", "--near")
    cart = tmp_path / "my_cart"
    for split in ("train", "val"):  # two drives, each a bag as a cart records it
        bag = tmp_path / f"drive_{split}"
        meco("data", "make-bag", "--data", render, "--split", split, "--out", bag, "--storage", "mcap", "--lidar",
             "--lidar-rings", 32)
        meco("data", "from-bag", "--bag", bag, "--out", cart, "--split", split)
    assert not list(cart.glob("*/seg/*")) and len(list(cart.glob("*/depth/*.png"))) == 6  # lidar depth, no labels

    run = tmp_path / "run"
    meco("train", "--config", REPO / "config" / "train" / "meco_golf_finetune.yaml", "--no-progress",
         "--set", f"data.train.0.root={cart}", "--set", f"data.train.1.root={render}",
         "--set", f"data.val.0.root={cart}", "--set", f"data.val.1.root={render}",
         "--set", "data.crop=[64, 96]", "--set", "data.val_size=[64, 96]", "--set", "data.batch_size=2",
         "--set", "data.workers=0", "--set", "run.threads=1", "--set", "run.val_every=0",
         "--set", "optim.warmup_steps=1", "--steps", 2, "--out", run)
    shipped = torch.load(SHIPPED, weights_only=True)
    tuned = torch.load(run / "last.pt", weights_only=True)
    # the same network: the shipped config, with keys added since it was saved at their defaults
    assert tuned["model_config"] == {**model_config_keys(shipped["model_name"]), **shipped["model_config"]}
    assert tuned["step"] == 2
    change = {k: (tuned["state_dict"][k].float() - v.float()).abs().max().item()
              for k, v in shipped["state_dict"].items() if v.is_floating_point()}
    assert max(change.values()) > 0, "the fine-tune did not train"
    weights = [k for k in change if k.endswith(".weight")]
    assert np.median([change[k] for k in weights]) < 0.01, "it did not start from the shipped weights"

    exported = tmp_path / "my_golf.pt"
    meco("export", "--checkpoint", run / "last.pt", "--input-size", "240x320", "--out", exported)
    from meco_core.inference import Estimator

    rgb = np.asarray(Image.open(next((cart / "val" / "image").iterdir())).convert("RGB"))
    pred = Estimator(exported).predict(rgb, intrinsics=(100.0, 100.0, 64.0, 48.0))
    assert pred.depth_m.shape == rgb.shape[:2] and pred.labels.shape == rgb.shape[:2] and pred.camera != "default"
    meco("eval", "--checkpoint", exported, "--data", cart, "--split", "val", "--json", tmp_path / "eval.json")
    scores = json.loads((tmp_path / "eval.json").read_text())
    assert scores["frames"] == 2 and scores["depth_pixels"] > 0 and np.isfinite(scores["abs_rel"])
