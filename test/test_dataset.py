"""MecoDataset: augmentation keeps image/depth/labels aligned; partial labels; collation.

The synthetic samples encode the label in the depth (depth = label + 1 m) and in the red
channel (label * 40), so any misalignment between the three shows up as a mismatch.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

from meco_core.classes import CAMVID, GOLF, REMAPS
from meco_core.data.dataset import MecoDataset, resize_sparse_depth
from meco_core.data.format import DatasetWriter

torch.set_num_threads(1)
cv2.setNumThreads(1)
H, W = 48, 64


def _encoded(seed: int, sparse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels in 8x8 blocks, growing left to right (so a flip is visible); depth/red encode them."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, GOLF.num_classes, (H // 8, W // 8)).astype(np.uint8)
    blocks[:, 0], blocks[:, -1] = 0, 4  # left edge class 0, right edge class 4
    labels = np.kron(blocks, np.ones((8, 8), np.uint8))
    labels[:4, :4] = 255
    depth = labels.astype(np.float32) + 1.0
    depth[labels == 255] = 0
    if sparse:
        depth[rng.random((H, W)) > 0.1] = 0
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = np.where(labels == 255, 0, labels * 40)
    rgb[..., 1] = 100
    return rgb, depth, labels


@pytest.fixture
def roots(tmp_path):
    """dense: depth+labels; sparse: lidar-like depth+labels; seg: labels only (camvid ids); depth: depth only."""
    out = {}
    for kind in ("dense", "sparse", "depth"):
        with DatasetWriter(tmp_path / kind, GOLF) as w:
            for i in range(3):
                rgb, depth, labels = _encoded(i, sparse=kind == "sparse")
                w.write("train", f"{kind}{i}", rgb, depth, None if kind == "depth" else labels)
        out[kind] = tmp_path / kind
    with DatasetWriter(tmp_path / "seg", CAMVID) as w:
        for i in range(2):
            w.write("train", f"cv{i}", np.zeros((H, W, 3), np.uint8), labels=np.full((H, W), 8, np.uint8))  # Car
    out["seg"] = tmp_path / "seg"
    return out


def _check_aligned(item, exact: bool) -> None:
    seg, depth, img = item["seg"].numpy(), item["depth"][0].numpy(), item["image"].numpy()
    both = (seg != 255) & (depth > 0)
    agree = (depth[both] == seg[both] + 1).mean()
    assert agree == 1.0 if exact else agree > 0.9, agree
    # the image is bilinear, labels nearest: compare away from block edges (3x3 constant label)
    p = np.pad(seg, 1, constant_values=254)  # the crop border has unseen neighbours
    interior = np.ones_like(seg, bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            interior &= p[dy : dy + seg.shape[0], dx : dx + seg.shape[1]] == seg
    interior &= seg != 255
    red = img[0] * 255
    assert interior.sum() > 50 and (np.abs(red[interior] - seg[interior] * 40) <= 3).mean() > 0.98


def test_augmentation_keeps_dense_depth_labels_image_aligned(roots):
    torch.manual_seed(0)
    ds = MecoDataset(roots["dense"], "train", crop_size=(40, 56), augment=True, scale_range=(0.6, 1.7), jitter=0.0)
    flipped = unflipped = 0
    for k in range(24):
        item = ds[k % len(ds)]
        assert item["image"].shape == (3, 40, 56) and item["depth"].shape == (1, 40, 56) and item["seg"].shape == (40, 56)
        _check_aligned(item, exact=True)
        # padding (crop larger than a shrunken image) is ignore / no depth / black
        pad = item["seg"].numpy() == 255
        assert np.all(item["depth"][0].numpy()[pad] == 0)
        cols = item["seg"].numpy()
        left, right = cols[:, :3], cols[:, -3:]
        if (left == 4).any() and not (right == 4).any():
            flipped += 1
        if (right == 4).any() and not (left == 4).any():
            unflipped += 1
    assert flipped > 0 and unflipped > 0  # both orientations occurred and stayed consistent


def test_augmentation_sparse_depth(roots):
    torch.manual_seed(1)
    ds = MecoDataset(roots["sparse"], "train", crop_size=(48, 64), augment=True, scale_range=(0.5, 1.5), jitter=0.0)
    for k in range(12):
        item = ds[k % len(ds)]
        depth = item["depth"][0].numpy()
        assert set(np.unique(depth[depth > 0])) <= {1.0, 2.0, 3.0, 4.0, 5.0}  # never interpolated
        _check_aligned(item, exact=False)


def test_resize_sparse_depth_keeps_points_and_values():
    d = np.zeros((40, 40), np.float32)
    d[::4, ::4] = np.arange(100, dtype=np.float32).reshape(10, 10) + 1
    small = resize_sparse_depth(d, 20, 20)
    assert (small > 0).sum() == 100 and set(small[small > 0]) == set(d[d > 0])
    big = resize_sparse_depth(d, 80, 80)
    assert set(big[big > 0]) == set(d[d > 0])
    dense = np.full((40, 40), 7.5, np.float32)
    assert np.all(resize_sparse_depth(dense, 30, 50) == 7.5)


def test_photometric_jitter_only_touches_image(roots):
    torch.manual_seed(2)
    ds = MecoDataset(roots["dense"], "train", crop_size=None, augment=True, scale_range=(1.0, 1.0), jitter=0.4)
    ref = MecoDataset(roots["dense"], "train")
    item, plain = ds[0], ref[0]
    seg, pseg = item["seg"], plain["seg"]
    if not torch.equal(seg, pseg):  # flipped
        seg, item_depth = seg.flip(-1), item["depth"].flip(-1)
    else:
        item_depth = item["depth"]
    assert torch.equal(seg, pseg) and torch.equal(item_depth, plain["depth"])
    assert item["image"].min() >= 0 and item["image"].max() <= 1


def test_eval_mode_full_size_and_resize(roots):
    ds = MecoDataset(roots["dense"], "train")
    item = ds[0]
    rgb, depth, labels = _encoded(0, sparse=False)
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    assert torch.equal(item["seg"], torch.from_numpy(labels.astype(np.int64)))
    assert np.array_equal(item["depth"][0].numpy(), depth) and item["has_depth"] and item["has_seg"]
    assert item["name"] == "dense0" and item["seg"].dtype == torch.int64
    small = MecoDataset(roots["dense"], "train", resize=(24, 32))[0]
    assert small["image"].shape == (3, 24, 32)
    _check_aligned(small, exact=True)
    capped = MecoDataset(roots["dense"], "train", max_depth=3.0)[0]
    assert capped["depth"].max() <= 3.0 and ((capped["depth"] == 0) & (capped["seg"] >= 3)[None]).any()


def test_partial_labels_concat_and_collate(roots):
    torch.manual_seed(3)
    kw = dict(crop_size=(32, 40), augment=True, class_set="golf")
    ds = ConcatDataset([MecoDataset(roots[k], "train", **kw) for k in ("dense", "seg", "depth")])
    assert len(ds) == 3 + 2 + 3
    by_name = {ds[i]["name"]: ds[i] for i in range(len(ds))}
    cv, dep = by_name["cv0"], by_name["depth0"]
    assert not cv["has_depth"] and cv["has_seg"] and torch.all(cv["depth"] == 0)
    assert set(cv["seg"].unique().tolist()) <= {GOLF.names.index("obstacle"), 255}  # camvid Car -> obstacle
    assert dep["has_depth"] and not dep["has_seg"] and torch.all(dep["seg"] == 255)
    batch = next(iter(DataLoader(ds, batch_size=5, shuffle=True)))
    assert batch["image"].shape == (5, 3, 32, 40) and batch["depth"].shape == (5, 1, 32, 40)
    assert batch["seg"].shape == (5, 32, 40) and batch["seg"].dtype == torch.int64
    assert batch["has_depth"].dtype == torch.bool and batch["has_seg"].shape == (5,)
    assert len(batch["name"]) == 5
    # several roots in one MecoDataset, remapped to the first root's classes
    multi = MecoDataset([roots["dense"], roots["seg"]], "train")
    assert len(multi) == 5 and multi.class_set.name == "golf"


def test_class_remaps(roots):
    lut = REMAPS["camvid->golf"]
    golf_view = MecoDataset(roots["seg"], "train", class_set="golf")
    assert golf_view[0]["seg"].unique().tolist() == [int(lut[8])]
    raw = MecoDataset(roots["seg"], "train")
    assert raw[0]["seg"].unique().tolist() == [8]
    custom = MecoDataset(roots["seg"], "train", label_remap=np.full(256, 255, np.uint8))
    assert custom[0]["seg"].unique().tolist() == [255]
    with pytest.raises(ValueError, match="no remap"):
        MecoDataset(roots["dense"], "train", class_set="camvid")


def test_reproducible_with_torch_seed(roots):
    ds = MecoDataset(roots["dense"], "train", crop_size=(32, 32), augment=True)
    torch.manual_seed(5)
    a = ds[1]
    torch.manual_seed(5)
    b = ds[1]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["seg"], b["seg"])


def test_scale_base_zooms_from_the_network_input_view(roots):
    """scale_from: input. The frame is first squeezed to the input size (as the Estimator
    resizes a camera frame, aspect ratio included), then zoomed: with scale 1 the sample is
    the whole frame at the input size, labels and depth aligned, the focal scaled by rows."""
    torch.manual_seed(3)
    ref = MecoDataset(roots["dense"], "train")
    h, w = ref[0]["seg"].shape
    ds = MecoDataset(roots["dense"], "train", crop_size=None, augment=True, scale_range=(1.0, 1.0), jitter=0.0,
                     scale_base=(30, 50))
    item = ds[0]
    assert item["image"].shape == (3, 30, 50) and item["seg"].shape == (30, 50)
    _check_aligned(item, exact=True)
    assert float(item["focal"]) == pytest.approx(float(ref[0]["focal"]) * 30 / h)
    zoomed = MecoDataset(roots["dense"], "train", crop_size=(30, 50), augment=True, scale_range=(2.0, 2.0),
                         jitter=0.0, scale_base=(30, 50))[0]
    assert float(zoomed["focal"]) == pytest.approx(float(ref[0]["focal"]) * 60 / h)  # a 2x longer lens
    assert (h, w) != (30, 50)


def test_train_config_checks_scale_from():
    from meco_core.train.config import DataSource, TrainConfig, validate

    cfg = TrainConfig()
    cfg.data.train = [DataSource(root="x", scale_from="sideways")]
    with pytest.raises(ValueError, match="scale_from"):
        validate(cfg)


def test_squeeze_narrows_the_frame_keeps_alignment_and_the_vertical_focal(roots):
    """squeeze_range: a wide camera's frame squeezed into the input, as the Estimator does; the
    columns shrink, rows (and so fy, the focal depth follows) are kept, labels stay aligned."""
    ref = MecoDataset(roots["dense"], "train")
    h, w = ref[0]["seg"].shape
    common = dict(crop_size=None, augment=True, scale_range=(1.0, 1.0), jitter=0.0, flip=False)
    torch.manual_seed(0)
    item = MecoDataset(roots["dense"], "train", squeeze_range=(0.5, 0.5), squeeze_prob=1.0, **common)[0]
    assert item["seg"].shape == (h, round(w * 0.5))
    assert float(item["focal"]) == pytest.approx(float(ref[0]["focal"]))
    _check_aligned(item, exact=False)
    # with a crop wider than the squeezed frame, it is zoomed until it fills the crop (no padding)
    torch.manual_seed(0)
    cropped = MecoDataset(roots["dense"], "train", squeeze_range=(0.5, 0.5), squeeze_prob=1.0,
                          **(common | dict(crop_size=(h, w))))[0]
    assert (cropped["seg"] != 255).float().mean() > 0.9 and float(cropped["focal"]) == pytest.approx(2 * float(ref[0]["focal"]))
    torch.manual_seed(0)
    never = MecoDataset(roots["dense"], "train", squeeze_range=(0.5, 0.5), squeeze_prob=0.0, **common)[0]
    assert never["seg"].shape == (h, w)


def test_relight_brightens_and_greys_only_the_chosen_class():
    from meco_core.data.dataset import relight_region

    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[...] = (60, 50, 40)  # dark, warm
    mask = np.zeros((40, 40), bool)
    mask[20:] = True
    out = relight_region(rgb, mask, np.random.default_rng(0)).astype(int)
    inside, outside = out[30, 20], out[5, 20]
    assert inside.mean() > 1.25 * rgb[30, 20].mean()            # brighter
    assert np.ptp(inside) < np.ptp(rgb[30, 20].astype(int))     # greyer
    assert np.array_equal(outside, rgb[5, 20])                  # untouched away from the edge


def test_dormant_turns_green_grass_straw_and_keeps_its_texture():
    import cv2

    from meco_core.data.dataset import dormant_region

    rng = np.random.default_rng(0)
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[...] = (50, 140, 40)  # green grass
    rgb[20:, ::2] = (30, 90, 25)  # its texture: darker stripes
    mask = np.zeros((40, 40), bool)
    mask[20:] = True
    out = dormant_region(rgb, mask, rng)
    hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV_FULL).astype(int)  # hue in 0-255 for 0-360 degrees
    hue_deg = hsv[30:, :, 0] * 360 / 256
    assert ((hue_deg > 20) & (hue_deg < 58)).all()                                   # straw, no green left
    assert hsv[30, 0, 2] < hsv[30, 1, 2]                                             # stripes kept (value)
    assert np.array_equal(out[:12], rgb[:12])                                        # untouched away from the edge


def test_dataset_recolours_only_the_named_class(roots):
    from meco_core.data.dataset import MecoDataset

    root = roots["dense"]
    torch.manual_seed(0)
    plain = MecoDataset(root, "train", augment=True, flip=False, jitter=0.0, scale_range=(1, 1))[0]
    torch.manual_seed(0)
    recol = MecoDataset(root, "train", augment=True, flip=False, jitter=0.0, scale_range=(1, 1),
                        recolors=[("dormant", 1, 1.0)])[0]
    seg = plain["seg"]
    changed = (recol["image"] - plain["image"]).abs().sum(0) > 1e-3
    far_from_class = torch.from_numpy(cv2_dilate((seg == 1).numpy(), 3)) == 0
    assert changed[seg == 1].float().mean() > 0.9 and not changed[far_from_class].any()
    with pytest.raises(ValueError, match="unknown recolour"):
        MecoDataset(root, "train", recolors=[("autumn", 1, 0.5)])


def cv2_dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))


def test_train_config_checks_squeeze_and_relight():
    from meco_core.train.config import DataSource, TrainConfig, validate

    for bad, key in ((dict(squeeze_range=(0.4, 1.2)), "squeeze_range"), (dict(squeeze_prob=1.5), "squeeze_prob"),
                     (dict(road_relight=-0.1), "road_relight"), (dict(dormant_grass=1.5), "dormant_grass")):
        cfg = TrainConfig()
        cfg.data.train = [DataSource(root="x", **bad)]
        with pytest.raises(ValueError, match=key):
            validate(cfg)
    cfg = TrainConfig()
    cfg.data.class_set = "camvid"
    cfg.data.train = [DataSource(root="x", road_relight=0.5)]
    with pytest.raises(ValueError, match="no road class"):
        validate(cfg)
    cfg.data.train = [DataSource(root="x", dormant_grass=0.5)]
    with pytest.raises(ValueError, match="no fairway class"):
        validate(cfg)


def _grass_dataset(tmp_path):
    """A real-looking labelled root: left half class fairway (green noise), right half hazard (brown)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "grass"
    with DatasetWriter(root, GOLF) as w:
        for i in range(2):
            rgb = np.empty((96, 128, 3), np.uint8)
            rgb[:, :64] = np.clip(rng.normal((60, 140, 50), 20, (96, 64, 3)), 0, 255)
            rgb[:, 64:] = (150, 110, 70)
            labels = np.full((96, 128), 2, np.uint8)
            labels[:, :64] = 1
            w.write("train", f"g{i}", rgb, labels=labels)
    return root


def test_texture_bank_cuts_windows_wholly_on_the_class(tmp_path):
    from meco_core.data.real_texture import TextureBank

    bank = TextureBank.from_dataset(_grass_dataset(tmp_path), "train", GOLF, 1, patch=32, stride=16)
    assert len(bank) == 2 * 3 * 5                                     # x in {16, 32} is inside, 48 crosses; 5 rows
    assert bank.patches.shape[1:] == (32, 32, 3) and bank.patches.dtype == np.uint8
    mean = bank.patches.reshape(-1, 3).mean(0)
    assert mean[1] > mean[0] + 50 and mean[1] > mean[2] + 50          # green noise only, no brown trail
    assert len(bank.levels) >= 3 and bank.levels[-1].std() < bank.levels[0].std()  # blurrier levels for far ground
    with pytest.raises(ValueError, match="no 32x32 window"):
        TextureBank.from_dataset(_grass_dataset(tmp_path / "b"), "train", GOLF, 4, patch=32)  # no obstacle pixels
    with pytest.raises(ValueError, match=r"\(N, P, P, 3\)"):
        TextureBank.from_patches(np.zeros((2, 8, 6, 3), np.uint8))


def test_texture_apply_resurfaces_the_class_with_depth_only():
    from meco_core.data.real_texture import TextureBank

    rng = np.random.default_rng(1)
    patches = np.clip(rng.normal((60, 140, 50), 30, (4, 32, 32, 3)), 0, 255).astype(np.uint8)
    bank = TextureBank.from_patches(patches)
    rgb = np.full((60, 80, 3), (40, 200, 40), np.uint8)               # a flat rendered green
    mask = np.zeros((60, 80), bool)
    mask[30:, :] = True                                               # fairway below the horizon
    depth = np.where(mask, 5.0, 0.0).astype(np.float32)
    depth[30:, 40:] = 0.0                                             # right half without depth: kept
    out = bank.apply(rgb, mask, depth, 60.0, np.random.default_rng(2))
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert out[34:, 2:36].reshape(-1, 3).std(0).max() > 5             # real texture where it had depth
    assert np.array_equal(out[:26], rgb[:26]) and np.array_equal(out[34:, 44:], rgb[34:, 44:])
    again = bank.apply(rgb, mask, depth, 60.0, np.random.default_rng(2))
    assert np.array_equal(out, again)                                 # reproducible from its generator
    assert np.array_equal(bank.apply(rgb, np.zeros_like(mask), depth, 60.0, np.random.default_rng(2)), rgb)


def test_train_config_checks_real_grass():
    from meco_core.train.config import DataSource, TrainConfig, validate

    for bad, match in ((dict(real_grass=1.5, real_grass_from="y"), "real_grass"),
                       (dict(real_grass=0.5), "real_grass_from")):
        cfg = TrainConfig()
        cfg.data.train = [DataSource(root="x", **bad)]
        with pytest.raises(ValueError, match=match):
            validate(cfg)
