"""meco_core.inference.Estimator: sizes, resizing modes, non-finite handling, device guards."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from meco_core.classes import GOLF
from meco_core.inference import DeviceUnavailableError, Estimator, NonFiniteInputError, check_inference_size, \
    resolve_device

TINY = dict(backbone="vit_tiny_patch16_224", channels=32, num_classes=5)


@pytest.fixture(scope="module")
def estimator():
    torch.manual_seed(0)
    return Estimator(None, device="cpu", inference_size=(48, 64), threads=1, model_name="meco", model_config=TINY)


def frame(h=60, w=80):
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_outputs_at_input_size_with_timings(estimator):
    assert estimator.untrained and "UNTRAINED" in estimator.model_name
    assert estimator.class_set.names == GOLF.names and str(estimator.device) == "cpu"
    for mode in ("bilinear", "nearest"):
        estimator.configure(upsample=mode)
        p = estimator.predict(frame())
        assert p.depth_m.shape == (60, 80) and p.depth_m.dtype == np.float32
        assert p.labels.shape == (60, 80) and p.labels.dtype == np.uint8
        assert np.all(p.depth_m > 0) and p.labels.max() < 5 and p.nonfinite == 0
        assert set(p.timings) == {"convert", "inference", "postprocess"}
    estimator.configure(upsample="bilinear")
    p = estimator.predict(frame(), output_size=(48, 64))
    assert p.depth_m.shape == (48, 64)
    p = estimator.predict(frame(), need_depth=False)
    assert p.depth_m is None and p.labels is not None


def test_labels_from_upsampled_logits_match_direct_inference(estimator):
    """At inference size == input size both paths are the plain argmax."""
    estimator.configure(inference_size=None)
    try:
        img = frame(48, 64)
        a = estimator.predict(img)
        with torch.inference_mode():
            out = estimator.model(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
        assert np.array_equal(a.labels, out["segmentation"][0].argmax(0).numpy().astype(np.uint8))
        assert np.allclose(a.depth_m, out["depth"][0, 0].numpy())
    finally:
        estimator.configure(inference_size=(48, 64))


class NaNModel(nn.Module):
    """Stand-in model whose outputs are partly NaN (a diverged checkpoint)."""

    name, num_classes, max_depth, tasks = "nan", 5, 80.0, ["depth", "segmentation"]

    def forward(self, x):
        b, _, h, w = x.shape
        depth = torch.full((b, 1, h, w), 5.0)
        depth[..., : h // 2, :] = float("nan")
        seg = torch.zeros(b, 5, h, w)
        seg[:, 2] = 1.0
        seg[..., :, : w // 2] = float("nan")
        return {"depth": depth, "segmentation": seg}


def test_nonfinite_outputs_become_invalid():
    est = Estimator(model=NaNModel(), device="cpu")
    p = est.predict(frame(32, 32))
    assert p.nonfinite > 0
    assert np.isnan(p.depth_m[:16]).all() and (p.depth_m[16:] == 5.0).all()
    assert (p.labels[:, :16] == 255).all() and (p.labels[:, 16:] == 2).all()


def test_input_and_setting_checks(estimator):
    with pytest.raises(NonFiniteInputError):
        estimator.predict(np.full((32, 32, 3), np.nan, np.float32))
    with pytest.raises(ValueError):
        estimator.predict(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="precision"):
        estimator.configure(precision="int4")
    with pytest.raises(ValueError, match="inference_size"):
        check_inference_size([-1, 128])
    assert check_inference_size([0, 0]) is None
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
            resolve_device("cuda:0")
        assert resolve_device("auto").type == "cpu"


def test_missing_checkpoint_says_how_to_run_without_one():
    with pytest.raises(FileNotFoundError, match="model_name='meco'"):
        Estimator("checkpoints/does_not_exist.pt", device="cpu")


def test_no_checkpoint_is_an_error_never_a_silent_default(tmp_path, monkeypatch):
    """The Estimator runs what it is given: no checkpoint and no dev model_name is an error even
    where the default checkpoint exists, and paths resolve against no repository guess."""
    from meco_core.defaults import DEFAULT_CHECKPOINT
    from meco_core.inference import find_checkpoint

    repo = find_checkpoint(DEFAULT_CHECKPOINT)
    with pytest.raises(ValueError, match="no checkpoint given"):
        Estimator(None, device="cpu")
    with pytest.raises(ValueError, match="no checkpoint given"):
        Estimator("", device="cpu")
    if repo is not None:  # the shipped checkpoint is here: it is still not picked silently
        root = repo.parents[len(Path(DEFAULT_CHECKPOINT).parts) - 1]
        monkeypatch.chdir(tmp_path)
        assert find_checkpoint(DEFAULT_CHECKPOINT) is None  # not under the working directory: not found
        assert find_checkpoint(DEFAULT_CHECKPOINT, (root,)) == repo  # the caller's root: found


def test_options_object_and_keywords_are_one_set_of_options(estimator):
    from dataclasses import fields

    from meco_core.inference import EstimatorOptions

    opts = EstimatorOptions(device="cpu", inference_size=(48, 64), upsample="nearest")
    model = estimator.model
    a = Estimator(model=model, options=opts)
    b = Estimator(model=model, device="cpu", inference_size=(48, 64), upsample="nearest")
    c = Estimator(None, opts, model=model, upsample="bilinear")  # keywords override the object's fields
    assert a.options == b.options and a.describe() == b.describe() and a.inference_size == (48, 64)
    assert c.upsample == "bilinear" and c.options.device == "cpu"
    assert np.array_equal(a.predict(frame()).labels, b.predict(frame()).labels)
    with pytest.raises(TypeError, match="unknown options .'devcie'."):
        Estimator(model=model, devcie="cpu")
    assert all(f.name in (EstimatorOptions.__doc__ or "") for f in fields(EstimatorOptions))  # each documented


def test_checkpoint_round_trip(tmp_path, estimator):
    from meco_core.models.checkpoint import save_checkpoint

    path = tmp_path / "tiny.pt"
    save_checkpoint(path, estimator.model, class_set=GOLF.to_dict())
    est = Estimator(str(path), device="cpu", inference_size=(48, 64))
    assert not est.untrained and "tiny.pt" in est.model_name
    a, b = estimator.predict(frame()), est.predict(frame())
    assert np.allclose(a.depth_m, b.depth_m, atol=1e-5) and np.array_equal(a.labels, b.labels)


def test_checkpoint_native_size_is_the_default_and_explicit_sizes_win(tmp_path, estimator):
    from meco_core.models.checkpoint import save_checkpoint

    path = tmp_path / "sized.pt"
    save_checkpoint(path, estimator.model, class_set=GOLF.to_dict(), input_size=[32, 48])
    est = Estimator(str(path), device="cpu")
    assert est.inference_size == (32, 48) and est.describe()["inference_size"] == [32, 48]
    assert est.predict(frame()).depth_m.shape == frame().shape[:2]   # outputs at the input size
    assert Estimator(str(path), device="cpu", inference_size=(48, 64)).inference_size == (48, 64)
    est.configure(inference_size=(64, 96))
    assert est.inference_size == (64, 96)
    est.configure(inference_size=[0, 0])          # [0, 0]: back to the checkpoint's size
    assert est.inference_size == (32, 48)
    save_checkpoint(tmp_path / "plain.pt", estimator.model, class_set=GOLF.to_dict())
    assert Estimator(str(tmp_path / "plain.pt"), device="cpu").inference_size is None   # no record: input size


@pytest.mark.parametrize("out_size", [(480, 640), (240, 320), (361, 479), (720, 1280), (120, 160)])
def test_upsampled_argmax_equals_full_bilinear_upsampling(out_size) -> None:
    """The node's label upsampling gives the labels of numpy's arg-max of the upsampled logits."""
    import cv2

    from meco_core.inference.postprocess import upsampled_argmax

    rng = np.random.default_rng(0)
    smooth = cv2.resize(rng.normal(size=(30, 40, 5)).astype(np.float32), (320, 240), interpolation=cv2.INTER_CUBIC)
    logits = np.ascontiguousarray(smooth.transpose(2, 0, 1))        # regions with boundaries, like a real model's
    up = cv2.resize(smooth, out_size[::-1], interpolation=cv2.INTER_LINEAR)
    full = up.argmax(axis=2).astype(np.uint8)
    fast = upsampled_argmax(logits, *out_size)
    assert fast.shape == out_size and fast.dtype == np.uint8
    assert (fast == full).mean() > 0.9999, (fast != full).sum()


def test_channel_argmax_matches_numpy_ties_and_nan() -> None:
    """First maximum wins on ties and NaN never wins, as np.argmax over finite values does."""
    from meco_core.inference.postprocess import channel_argmax

    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 37, 53)).astype(np.float32)
    x[3, :5] = x[1, :5] = 9.0                      # a tie: the first (1) wins
    assert np.array_equal(channel_argmax(x), x.argmax(axis=0).astype(np.uint8))
    assert (channel_argmax(x)[:5] == 1).all()
    x[2, 10:12] = np.nan                           # NaN in a later channel: ignored
    expected = np.nan_to_num(x, nan=-np.inf).argmax(axis=0).astype(np.uint8)
    assert np.array_equal(channel_argmax(x), expected)
    assert channel_argmax(x[:1]).max() == 0
