"""Other cameras' looks (meco_core.data.camera_look): the image changes, depth and labels do not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from meco_core.classes import GOLF
from meco_core.data.camera_look import GAIN_RANGE, LOOK_PARTS, camera_look, check_look_parts
from meco_core.data.dataset import MecoDataset
from meco_core.data.format import DatasetWriter

SMOKE = Path(__file__).resolve().parents[1] / "config" / "train" / "smoke.yaml"


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(30, 220, (60, 80, 3), dtype=np.uint8)


def test_one_draw_is_one_camera_reproducible_from_its_generator() -> None:
    img = _image()
    a = camera_look(img, np.random.default_rng(5))
    b = camera_look(img, np.random.default_rng(5))
    c = camera_look(img, np.random.default_rng(6))
    assert a.dtype == np.uint8 and a.shape == img.shape and a.flags.c_contiguous
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, img)


def test_white_balance_moves_red_against_blue_within_the_gain_range() -> None:
    grey = np.full((40, 40, 3), 128, np.uint8)  # a grey card: only gains and gamma change it
    ratios = []
    for seed in range(40):
        out = camera_look(grey, np.random.default_rng(seed)).astype(np.float64)
        ratios.append(out[..., 0].mean() / out[..., 2].mean())
    ratios = np.array(ratios)
    lo, hi = GAIN_RANGE
    # red / blue = (gain_r / gain_b) ** gamma: both above and below 1, never beyond (hi/lo) ** 1.5
    assert ratios.min() < 0.9 and ratios.max() > 1.1
    assert ratios.max() < (hi / lo) ** 1.5 + 0.05 and ratios.min() > (lo / hi) ** 1.5 - 0.05


def test_dataset_shows_another_camera_without_moving_depth_or_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    depth = rng.uniform(1.0, 30.0, (60, 80)).astype(np.float32)
    labels = rng.integers(0, GOLF.num_classes, (60, 80), dtype=np.uint8)
    with DatasetWriter(tmp_path / "d", GOLF) as writer:
        writer.write("train", "f0", _image(), depth, labels)
    common = dict(crop_size=(48, 64), augment=True, scale_range=(1.0, 1.3))
    plain = MecoDataset(tmp_path / "d", "train", camera_look=0.0, **common)
    looked = MecoDataset(tmp_path / "d", "train", camera_look=1.0, **common)
    torch.manual_seed(3)
    a = plain[0]
    torch.manual_seed(3)
    b = looked[0]
    torch.testing.assert_close(a["seg"], b["seg"])
    torch.testing.assert_close(a["depth"], b["depth"])
    assert a["focal"] == b["focal"]
    assert not torch.equal(a["image"], b["image"])


def test_camera_shift_tool_changes_the_image_only(tmp_path: Path) -> None:
    """tools/camera_shift.py: the dev frames as another camera; ground truth and intrinsics copied as they are."""
    import subprocess
    import sys

    from meco_core.data.format import DatasetReader

    root = Path(__file__).resolve().parents[1]
    rng = np.random.default_rng(2)
    depth = rng.uniform(1.0, 30.0, (60, 80)).astype(np.float32).round(3)
    labels = rng.integers(0, GOLF.num_classes, (60, 80), dtype=np.uint8)
    with DatasetWriter(tmp_path / "d", GOLF) as writer:
        writer.write("val", "f0", _image(), depth, labels, intrinsics=(70.0, 70.0, 40.0, 30.0))
    subprocess.run([sys.executable, str(root / "tools" / "camera_shift.py"), str(tmp_path / "d"), "--shifts", "cool",
                    "jpeg", "noise", "--out", str(tmp_path / "s")], check=True, capture_output=True)
    src = DatasetReader(tmp_path / "d").load("val", "f0")
    for shift in ("cool", "jpeg", "noise"):
        out = DatasetReader(tmp_path / "s" / shift).load("val", "f0")
        np.testing.assert_array_equal(out.labels, src.labels)
        np.testing.assert_array_equal(out.depth_m, src.depth_m)
        assert out.intrinsics == src.intrinsics and out.rgb.shape == src.rgb.shape
        assert np.abs(out.rgb.astype(int) - src.rgb).mean() > 1.0, shift
    cool = DatasetReader(tmp_path / "s" / "cool").load("val", "f0").rgb.astype(float)
    assert cool[..., 0].mean() < src.rgb[..., 0].mean() and cool[..., 2].mean() > src.rgb[..., 2].mean()


def test_parts_keep_only_the_named_differences() -> None:
    """A model that balances white itself trains on blur, noise and JPEG only: a grey card
    (which those parts barely move) keeps its grey, while all parts tint it."""
    grey = np.full((40, 40, 3), 128, np.uint8)
    sensor = ("blur", "noise", "jpeg")
    for seed in range(20):
        out = camera_look(grey, np.random.default_rng(seed), sensor).astype(np.float64)
        means = out.reshape(-1, 3).mean(0)
        assert np.abs(means - 128).max() < 2.0, (seed, means)
    tinted = [camera_look(grey, np.random.default_rng(s)).astype(np.float64).reshape(-1, 3).mean(0) for s in range(20)]
    assert max(abs(m[0] - m[2]) for m in tinted) > 10
    img = _image()
    np.testing.assert_array_equal(camera_look(img, np.random.default_rng(4), LOOK_PARTS),
                                  camera_look(img, np.random.default_rng(4)))  # all parts: the old draws


def test_unknown_part_is_an_error_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="blur"):
        check_look_parts(["blurr"])
    from meco_core.train.config import ConfigError, load_config
    with pytest.raises(ConfigError, match="data.camera_look_parts.*blurr"):
        load_config(SMOKE, {"data.camera_look": 0.5, "data.camera_look_parts": ["blurr"]})
    cfg = load_config(SMOKE, {"data.camera_look_parts": ["blur", "jpeg"]})
    assert cfg.data.camera_look_parts == ["blur", "jpeg"]
