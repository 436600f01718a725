"""Checkpoints and local backbone weights: round trip, atomic write, clear mismatch errors."""
from __future__ import annotations

import pytest
import timm
import torch

from meco_core import build_model
from meco_core.models.checkpoint import CheckpointError, build_from_checkpoint, load_checkpoint, save_checkpoint

TINY = dict(backbone="vit_tiny_patch16_224", channels=32, num_classes=5)


def test_round_trip_rebuilds_identical_model(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("meco", **TINY).eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, class_set={"name": "golf"}, step=7)
    assert not list(tmp_path.glob(".*.tmp"))          # no temporary left behind
    rebuilt, ckpt = build_from_checkpoint(path)
    rebuilt.eval()
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        a, b = model(x), rebuilt(x)
    assert torch.equal(a["depth"], b["depth"]) and ckpt["step"] == 7 and ckpt["class_set"]["name"] == "golf"


def test_half_storage_halves_the_file(tmp_path) -> None:
    model = build_model("meco", **TINY)
    save_checkpoint(tmp_path / "f32.pt", model)
    save_checkpoint(tmp_path / "f16.pt", model, half=True)
    assert (tmp_path / "f16.pt").stat().st_size < 0.6 * (tmp_path / "f32.pt").stat().st_size
    rebuilt, _ = build_from_checkpoint(tmp_path / "f16.pt")
    assert next(rebuilt.parameters()).dtype == torch.float32


def test_mismatched_and_corrupt_checkpoints_are_rejected(tmp_path) -> None:
    from meco_core.models.checkpoint import load_state_strict

    save_checkpoint(tmp_path / "m.pt", build_model("meco", **TINY))
    other = build_model("meco", **dict(TINY, num_classes=11))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_state_strict(other, load_checkpoint(tmp_path / "m.pt")["state_dict"])
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"hello": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="is not a"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_backbone_weights_from_local_file(tmp_path) -> None:
    torch.manual_seed(3)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0)
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    model = build_model("single_depth", backbone_weights=str(tmp_path / "vit.pth"), **TINY)
    assert torch.equal(model.backbone.vit.patch_embed.proj.weight, vit.patch_embed.proj.weight)
    small = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0)
    torch.save(small.state_dict(), tmp_path / "small.pth")
    with pytest.raises(Exception, match="size mismatch|does not fit"):
        build_model("single_depth", backbone_weights=str(tmp_path / "small.pth"), **TINY)
    with pytest.raises(FileNotFoundError):
        build_model("single_depth", backbone_weights=str(tmp_path / "nope.pth"), **TINY)


def test_atomic_writes_are_readable_by_other_users(tmp_path) -> None:
    """Checkpoints, dataset files and ONNX models are renamed from a temporary; mkstemp made those
    0600, so a node running as another user could not read the shipped model. Now 0644."""
    import stat

    import numpy as np

    from meco_core.classes import GOLF
    from meco_core.data.format import DatasetWriter
    from meco_core.inference.onnx_export import save_verified

    save_checkpoint(tmp_path / "m.pt", build_model("plain", backbone="tf_efficientnet_lite0", channels=16))
    with DatasetWriter(tmp_path / "ds", GOLF) as writer:
        writer.write("train", "f0", np.zeros((8, 8, 3), np.uint8), labels=np.zeros((8, 8), np.uint8))
    written = [tmp_path / "m.pt", tmp_path / "ds" / "dataset.yaml", *(tmp_path / "ds").rglob("f0.*")]

    import onnx
    save_verified(onnx.helper.make_model(onnx.helper.make_graph([], "g", [], [])), tmp_path / "m.onnx",
                  verify=lambda p: None)
    written.append(tmp_path / "m.onnx")
    assert len(written) >= 5
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
