"""Grey-world white balance in the network's forward (`model.config.white_balance`): a
camera's per-channel gains are divided out, in torch, in a saved checkpoint and in its ONNX
export alike; strength 0 (every older checkpoint) leaves frames untouched."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import TINY_CNN, TINY_SIZE
from meco_core import build_model
from meco_core.classes import GOLF
from meco_core.models.checkpoint import build_from_checkpoint, save_checkpoint
from meco_core.models.white_balance import MAX_GAIN, grey_world

#: a cool camera: 0.8x red, 1.2x blue (tools/camera_shift.py's "cool")
COOL = torch.tensor([0.8, 1.0, 1.2]).view(1, 3, 1, 1)


def cool(x: torch.Tensor) -> torch.Tensor:
    """`x` as the cool camera records it at the same exposure (the mean of the channel means
    kept: grey-world keeps a frame's brightness, and exposure is not white balance)."""
    shifted = x * COOL
    return shifted * (x.mean(dim=(1, 2, 3), keepdim=True) / shifted.mean(dim=(1, 2, 3), keepdim=True))


def frames(seed: int = 0) -> torch.Tensor:
    """Two frames in [0, 0.8] (a 1.2x gain cannot clip them) with different colour casts."""
    torch.manual_seed(seed)
    return torch.rand(2, 3, *TINY_SIZE) * 0.8 * torch.tensor([[0.9, 1.0, 0.7], [0.6, 1.0, 1.0]]).view(2, 3, 1, 1)


def test_grey_world_divides_out_a_cameras_channel_gains() -> None:
    x = frames()
    balanced = grey_world(x, 1.0)
    means = balanced.mean(dim=(2, 3))
    assert torch.allclose(means, means.mean(dim=1, keepdim=True).expand_as(means), rtol=1e-4)  # grey on average
    assert torch.allclose(balanced.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), rtol=2e-2)   # brightness kept
    assert torch.allclose(grey_world(cool(x), 1.0), balanced, atol=1e-5)  # the camera's gains are gone


def test_strength_zero_is_the_identity_and_a_half_halves_the_gains_in_log() -> None:
    x = frames(1)
    assert grey_world(x, 0.0) is x
    full = grey_world(x, 1.0) / x
    half = grey_world(x, 0.5) / x
    assert torch.allclose(half.log(), 0.5 * full.log(), atol=1e-4)


def test_a_frame_of_one_colour_is_not_turned_grey() -> None:
    sky = torch.zeros(1, 3, 8, 8)
    sky[:, 0], sky[:, 1], sky[:, 2] = 0.1, 0.4, 0.9   # gains of 4.7x red would be needed
    gains = grey_world(sky, 1.0)[0, :, 0, 0] / sky[0, :, 0, 0]
    assert gains.max() == pytest.approx(MAX_GAIN) and gains.min() >= 1 / MAX_GAIN - 1e-6
    assert float(grey_world(torch.ones(1, 3, 4, 4), 1.0).max()) == 1.0  # white stays white, nothing above 1


def test_a_balanced_model_reads_a_cool_camera_as_the_same_frame() -> None:
    torch.manual_seed(0)
    balanced = build_model("meco", **TINY_CNN, num_experts=3, top_k=2, white_balance=1.0).eval()
    plain = build_model("meco", **TINY_CNN, num_experts=3, top_k=2).eval()
    plain.load_state_dict(balanced.state_dict())
    x = frames(2)
    with torch.no_grad():
        same = [balanced(x)["depth"], balanced(cool(x))["depth"]]
        other = [plain(x)["depth"], plain(cool(x))["depth"]]
    assert torch.allclose(same[0], same[1], atol=1e-4)
    assert not torch.allclose(other[0], other[1], atol=1e-3)  # without it the camera's gains change the output


def test_strength_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="white_balance"):
        build_model("meco", **TINY_CNN, num_experts=3, top_k=2, white_balance=1.5)


def test_the_checkpoint_and_its_onnx_export_balance_too(tmp_path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from meco_core.cli import main as meco
    from meco_core.inference.onnx_export import ort_session

    torch.manual_seed(0)
    model = build_model("meco", **TINY_CNN, num_experts=3, top_k=2, white_balance=1.0).train()
    model(torch.rand(2, 3, *TINY_SIZE))  # BN statistics and codebooks off their initial values
    ckpt = tmp_path / "balanced.pt"
    save_checkpoint(ckpt, model, class_set=GOLF.to_dict(), input_size=list(TINY_SIZE))
    rebuilt, _ = build_from_checkpoint(ckpt)
    assert rebuilt.config["white_balance"] == 1.0 and rebuilt.backbone.white_balance == 1.0
    out = tmp_path / "balanced.onnx"
    assert meco(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    parity = json.loads(capsys.readouterr().out)["parity"]
    assert parity["depth_max_abs_diff_m"] < 1e-3 and parity["label_agreement"] > 0.999
    session = ort_session(out, threads=1)
    x = frames(3)[:1]
    depth, _ = session.run(None, {"image": x.numpy()})
    depth_cool, _ = session.run(None, {"image": cool(x).numpy()})
    assert abs(depth - depth_cool).max() < 1e-3
