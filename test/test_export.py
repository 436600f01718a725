"""Export: slim checkpoints reproduce the model; TorchScript matches eager outputs."""
from __future__ import annotations

import pytest
import torch

from meco_core import build_model
from meco_core.models.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint
from meco_core.cli import main

TINY = dict(backbone="vit_tiny_patch16_224", channels=32, num_classes=5)


def test_slim_checkpoint_drops_training_state_and_keeps_the_model(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("meco", **TINY).eval()
    opt = torch.optim.AdamW(model.parameters())
    save_checkpoint(tmp_path / "run.pt", model, class_set={"name": "golf"}, step=3, optimizer=opt.state_dict())
    assert main(["export", "--checkpoint", str(tmp_path / "run.pt"), "--out", str(tmp_path / "ship.pt")]) == 0
    slim = load_checkpoint(tmp_path / "ship.pt")
    assert "optimizer" not in slim and slim["step"] == 3 and slim["class_set"] == {"name": "golf"}
    rebuilt, _ = build_from_checkpoint(tmp_path / "ship.pt")
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        a, b = model(x), rebuilt.eval()(x)
    # fp16 storage: outputs close, not bit-identical
    assert torch.allclose(a["depth"], b["depth"], rtol=2e-2, atol=5e-2)
    assert (a["segmentation"].argmax(1) == b["segmentation"].argmax(1)).float().mean() > 0.95


def test_torchscript_matches_eager(tmp_path) -> None:
    torch.manual_seed(0)
    for name in ("meco", "mlore"):
        save_checkpoint(tmp_path / f"{name}.pt", build_model(name, **TINY))
        out = tmp_path / f"{name}.ts"
        assert main(["export", "--checkpoint", str(tmp_path / f"{name}.pt"), "--out", str(out),
                     "--format", "torchscript", "--size", "48x64"]) == 0
        traced = torch.jit.load(str(out))
        eager, _ = build_from_checkpoint(tmp_path / f"{name}.pt")
        eager.prepare_for_inference()
        x = torch.rand(1, 3, 48, 64)
        with torch.no_grad():
            depth, seg = traced(x)
            ref = eager(x)
        assert torch.allclose(depth, ref["depth"], atol=1e-3) and torch.allclose(seg, ref["segmentation"], atol=1e-3)


def test_export_of_several_checkpoints_ships_their_weight_average(tmp_path, capsys) -> None:
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        save_checkpoint(tmp_path / f"s{seed}.pt", build_model("plain", **TINY), class_set={"name": "golf"}, step=seed)
        paths += ["--checkpoint", str(tmp_path / f"s{seed}.pt")]
    assert main(["export", *paths, "--out", str(tmp_path / "avg.pt"), "--fp32"]) == 0
    a, b, avg = (load_checkpoint(tmp_path / f)["state_dict"] for f in ("s0.pt", "s1.pt", "avg.pt"))
    key = next(k for k in a if a[k].is_floating_point() and not torch.equal(a[k], b[k]))
    assert torch.allclose(avg[key], (a[key] + b[key]) / 2)
    assert load_checkpoint(tmp_path / "avg.pt")["source"] == [str(tmp_path / "s0.pt"), str(tmp_path / "s1.pt")]
    # a checkpoint of another model configuration cannot be averaged in
    save_checkpoint(tmp_path / "wide.pt", build_model("plain", **{**TINY, "channels": 48}), class_set={"name": "golf"})
    assert main(["export", *paths, "--checkpoint", str(tmp_path / "wide.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "model_config differ" in capsys.readouterr().err


def test_a_shipped_checkpoint_averages_with_a_run_fine_tuned_from_it(tmp_path) -> None:
    """The shipped copy records no backbone initialisation, the fine-tune the weights it
    named: one architecture all the same (WiSE-FT: the start and its fine-tune averaged)."""
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "run.pt", build_model("plain", **TINY), class_set={"name": "golf"})
    assert main(["export", "--checkpoint", str(tmp_path / "run.pt"), "--out", str(tmp_path / "ship.pt")]) == 0
    torch.manual_seed(1)
    tuned = build_model("plain", **TINY)
    tuned.config["backbone_weights"] = "imagenet"  # as a training config that names its first weights
    save_checkpoint(tmp_path / "tuned.pt", tuned, class_set={"name": "golf"})
    assert load_checkpoint(tmp_path / "ship.pt")["model_config"] != load_checkpoint(tmp_path / "tuned.pt")["model_config"]
    assert main(["export", "--checkpoint", str(tmp_path / "ship.pt"), "--checkpoint", str(tmp_path / "tuned.pt"),
                 "--out", str(tmp_path / "wise.pt"), "--fp32"]) == 0
    ship, tuned_sd, wise = (load_checkpoint(tmp_path / f)["state_dict"] for f in ("ship.pt", "tuned.pt", "wise.pt"))
    key = next(k for k in ship if ship[k].is_floating_point() and not torch.equal(ship[k].float(), tuned_sd[k]))
    assert torch.allclose(wise[key], (ship[key].float() + tuned_sd[key]) / 2)


def test_a_checkpoint_saved_before_a_config_key_existed_averages_with_a_new_one(tmp_path, capsys) -> None:
    """A checkpoint written before `white_balance` existed rebuilds at its default (0), so it is
    the same network as a fine-tune of it that records the key; one that records another value
    is not."""
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "new.pt", build_model("plain", **TINY), class_set={"name": "golf"})
    old = load_checkpoint(tmp_path / "new.pt")
    del old["model_config"]["white_balance"]
    torch.save(old, tmp_path / "old.pt")
    assert main(["export", "--checkpoint", str(tmp_path / "old.pt"), "--checkpoint", str(tmp_path / "new.pt"),
                 "--out", str(tmp_path / "avg.pt"), "--fp32"]) == 0
    save_checkpoint(tmp_path / "balanced.pt", build_model("plain", **TINY, white_balance=1.0), class_set={"name": "golf"})
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(tmp_path / "old.pt"), "--checkpoint", str(tmp_path / "balanced.pt"),
                 "--out", str(tmp_path / "x.pt")]) == 2
    assert "model_config differ" in capsys.readouterr().err


def test_paths_the_user_got_wrong_are_one_line_errors_not_tracebacks(tmp_path, capsys) -> None:
    """A missing input folder, a file where an output folder should be, an ONNX export into a
    folder that does not exist: exit 2 with one line naming the path (meco_core.cli.app)."""
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "run.pt", build_model("meco", **TINY).eval())
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("not a folder")
    cases = [
        (["data", "ycor", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "o")], str(tmp_path / "missing")),
        (["export", "--checkpoint", str(tmp_path / "run.pt"), "--out", str(in_the_way / "ship.pt")],
         f"{in_the_way} is a file, where a folder is needed"),
    ]
    for argv, named in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert named in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_onnx_export_into_a_missing_folder_names_the_file(tmp_path) -> None:
    from meco_core.errors import DiskWriteError
    from meco_core.inference.onnx_export import save_verified

    target = tmp_path / "gone" / "m.onnx"   # its folder does not exist: mkstemp fails before any write
    with pytest.raises(DiskWriteError, match=f"cannot write {target}: No such file or directory"):
        save_verified(object(), target, verify=lambda p: None)
    assert not target.parent.exists()
