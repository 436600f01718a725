"""meco_core.data.camera_turn in training (data.camera_turn): the ground's depth as a pitched camera sees it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from meco_core.classes import GOLF
from meco_core.data.camera_turn import camera_rotation, turned_view
from meco_core.data.dataset import MecoDataset
from meco_core.data.format import DatasetWriter
from meco_core.train.config import ConfigError, load_config

H, W = 120, 160
INTR = (100.0, 100.0, 79.5, 59.5)
CAM_HEIGHT = 1.5


def _flat_ground_depth() -> np.ndarray:
    """z-depth of a level camera CAM_HEIGHT above flat ground (0 above the horizon)."""
    rows = np.arange(H, dtype=np.float64)[:, None] - INTR[3]
    z = np.where(rows > 0, INTR[1] * CAM_HEIGHT / np.maximum(rows, 1e-9), 0.0)
    return np.broadcast_to(z, (H, W)).astype(np.float32).copy()


@pytest.mark.parametrize("pitch, roll", [(4.0, 0.0), (-3.0, 0.0), (2.0, 3.0)])
def test_turned_ground_depth_is_the_turned_cameras_ground(pitch, roll) -> None:
    R = camera_rotation(pitch, 0.0, roll)
    _, depth, _ = turned_view(np.zeros((H, W, 3), np.uint8), _flat_ground_depth(), None, INTR, R, (H, W))
    # the ground as the turned camera sees it: the ray of pixel (u, v), in the level frame, meets y = height
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(u - INTR[2]) / INTR[0], (v - INTR[3]) / INTR[1], np.ones_like(u)], -1) @ R.T
    with np.errstate(divide="ignore"):
        expected = np.where(rays[..., 1] > 1e-6, CAM_HEIGHT / rays[..., 1], 0.0)
    near = (depth > 0) & (expected > 0) & (expected < 15.0)
    assert near.sum() > 0.3 * H * W
    rel = np.abs(depth[near] - expected[near]) / expected[near]
    assert np.median(rel) < 0.01 and rel.max() < 0.08
    # pitching down raises the horizon: ground appears in rows a level camera sees as sky
    first_ground_row = np.nonzero((depth > 0).any(axis=1))[0].min()
    if roll == 0.0:
        assert (first_ground_row < INTR[3]) == (pitch > 0)


def _dataset_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "ds", GOLF) as writer:
        for i in range(3):
            labels = rng.integers(0, GOLF.num_classes, (H, W), dtype=np.uint8)
            writer.write("train", f"f{i}", rng.integers(0, 256, (H, W, 3), dtype=np.uint8), _flat_ground_depth(),
                         labels, intrinsics=INTR)
    return tmp_path / "ds"


def _items(root: Path, **kw) -> list[dict]:
    ds = MecoDataset(root, "train", crop_size=(H, W), augment=True, scale_range=(1.0, 1.0), jitter=0.0, flip=False,
                     **kw)
    torch.manual_seed(3)
    return [ds[i] for i in range(len(ds))]


def test_no_turn_share_draws_exactly_as_before(tmp_path: Path) -> None:
    root = _dataset_root(tmp_path)
    for a, b in zip(_items(root), _items(root, camera_turn=0.0, camera_turn_deg=(9.0, 9.0))):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["depth"], b["depth"])
        assert torch.equal(a["seg"], b["seg"])


def test_turned_samples_keep_the_focal_and_mark_missed_rays_unlabelled(tmp_path: Path) -> None:
    root = _dataset_root(tmp_path)
    plain, turned = _items(root), _items(root, camera_turn=1.0, camera_turn_deg=(6.0, 6.0))
    for a, b in zip(plain, turned):
        assert b["image"].shape == a["image"].shape and b["focal"] == a["focal"]
        assert not torch.equal(a["seg"], b["seg"])
        assert (b["seg"] == 255).any()  # a roll or pitch leaves rays that miss the stored frame
        # black and without depth there, but for a one-pixel rim (bilinear sampling blends the last real
        # pixel in; a depth point from the edge may round onto it)
        missed = b["seg"] == 255
        inner = (missed[1:-1, 1:-1] & missed[:-2, 1:-1] & missed[2:, 1:-1] & missed[1:-1, :-2] & missed[1:-1, 2:])
        assert inner.any() and b["image"][:, 1:-1, 1:-1][:, inner].eq(0).all()
        assert b["depth"][0, 1:-1, 1:-1][inner].eq(0).all()


def test_config_names_a_bad_turn(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    base = "data:\n  train: [{root: data/x, split: train}]\n"
    cfg.write_text(base + "  camera_turn: 1.5\n")
    with pytest.raises(ConfigError, match="data.camera_turn"):
        load_config(cfg)
    cfg.write_text(base + "  camera_turn: 0.5\n  camera_turn_deg: [5, -1]\n")
    with pytest.raises(ConfigError, match="data.camera_turn_deg"):
        load_config(cfg)
