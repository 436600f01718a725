"""Geometric pseudo-depth from label maps (meco_core.data.pseudo_depth), the YCOR importer
(`meco data ycor`), the ycor->golf remap, and CamVid with pseudo-depth (Tree ignored in golf)."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import yaml

from meco_core.camera import default_intrinsics
from meco_core.classes import CAMVID, GOLF, REMAPS, YCOR, get_remap
from meco_core.data.format import DatasetReader
from meco_core.data.pseudo_depth import (GROUND, SKY, UNKNOWN, UPRIGHT, ground_row_depth, pseudo_depth,
                                         role_lut)

# a toy label set: 0 sky, 1 ground, 2 tree (upright), 3 car (upright); 255 void
SKY_ID, GROUND_ID, TREE_ID, CAR_ID, VOID = 0, 1, 2, 3, 255
ROLES = role_lut({SKY_ID: SKY, GROUND_ID: GROUND, TREE_ID: UPRIGHT, CAR_ID: UPRIGHT})
FY, HORIZON, CAM_H = 100.0, 10.0, 1.5
HGT, WID = 50, 12


def _z(row: int) -> float:
    """Flat-ground depth of a row, by hand: fy * camera height / rows below the horizon."""
    return FY * CAM_H / (row - HORIZON)


def _scene() -> np.ndarray:
    """Sky down to row 10, ground below."""
    labels = np.full((HGT, WID), GROUND_ID, np.uint8)
    labels[: int(HORIZON) + 1] = SKY_ID
    return labels


# ---------------------------------------------------------------- pseudo_depth
def test_role_lut():
    assert ROLES[SKY_ID] == SKY and ROLES[GROUND_ID] == GROUND and ROLES[TREE_ID] == UPRIGHT
    assert ROLES[VOID] == UNKNOWN and ROLES[7] == UNKNOWN and ROLES.shape == (256,)


def test_ground_row_depth_by_hand():
    z = ground_row_depth(HGT, FY, HORIZON, CAM_H)
    assert z.shape == (HGT,) and z.dtype == np.float32
    assert z[20] == pytest.approx(15.0) and z[40] == pytest.approx(5.0)  # 100 * 1.5 / 10, / 30
    assert z[49] == pytest.approx(150.0 / 39)
    assert np.all(z[: int(HORIZON) + 1] == 0)  # at and above the horizon
    # beyond max_ground_depth (40 m): rows 11..13 (150, 75, 50 m) have none, row 14 (37.5 m) has
    assert np.all(z[11:14] == 0) and z[14] == pytest.approx(37.5)
    z10 = ground_row_depth(HGT, FY, HORIZON, CAM_H, max_ground_depth=10.0)
    assert np.all(z10[:25] == 0) and z10[25] == pytest.approx(10.0) and z10[30] == pytest.approx(7.5)


def test_ground_depth_in_a_label_map():
    d = pseudo_depth(_scene(), ROLES, FY, HORIZON, CAM_H)
    assert d.shape == (HGT, WID) and d.dtype == np.float32
    assert np.allclose(d[20], 15.0) and np.allclose(d[40], 5.0)
    for v in range(14, HGT):
        assert np.allclose(d[v], _z(v)), v
    assert np.all(d[: int(HORIZON) + 1] == 0)  # sky
    assert np.all(d[11:14] == 0)  # ground beyond 40 m


def test_upright_takes_ground_depth_below_it_per_column():
    labels = _scene()
    # a tree with a ragged foot: its lowest pixel in columns 2, 3, 4 at rows 29, 34, 24
    for col, foot in ((2, 29), (3, 34), (4, 24)):
        labels[5: foot + 1, col] = TREE_ID  # reaching up into the sky region
    d = pseudo_depth(labels, ROLES, FY, HORIZON, CAM_H)
    for col, foot in ((2, 29), (3, 34), (4, 24)):
        expected = _z(foot + 1)  # the ground pixel right below
        assert np.allclose(d[5: foot + 1, col], expected), col
        assert np.allclose(d[foot + 1:, col], [_z(v) for v in range(foot + 1, HGT)])  # ground unchanged
    assert d[20, 2] == pytest.approx(7.5) and d[20, 3] == pytest.approx(6.0) and d[20, 4] == pytest.approx(10.0)
    # columns without the tree: sky above the horizon
    assert np.all(d[:11, [0, 1, 5]] == 0)


def test_sky_and_void_have_no_depth():
    labels = _scene()
    labels[30:35, 6:9] = VOID  # an unlabelled patch on the ground
    labels[15:20, 0] = SKY_ID  # sky seen through something, below the horizon
    labels[40, 10] = 77  # an id without a role
    d = pseudo_depth(labels, ROLES, FY, HORIZON, CAM_H)
    assert np.all(d[30:35, 6:9] == 0) and np.all(d[15:20, 0] == 0) and d[40, 10] == 0
    assert np.all(d[labels == SKY_ID] == 0)
    assert d[35, 7] == pytest.approx(_z(35)) and d[29, 7] == pytest.approx(_z(29))  # ground around it


def test_upright_on_void_or_image_bottom_has_no_depth():
    labels = _scene()
    labels[20:HGT, 1] = TREE_ID  # runs off the image bottom: contact unseen
    labels[20:30, 5] = TREE_ID
    labels[30:33, 5] = VOID  # stands on void
    labels[20:30, 8] = TREE_ID  # control: on ground at row 30
    d = pseudo_depth(labels, ROLES, FY, HORIZON, CAM_H)
    assert np.all(d[20:HGT, 1] == 0)
    assert np.all(d[20:30, 5] == 0) and np.all(d[30:33, 5] == 0)
    assert d[33, 5] == pytest.approx(_z(33))
    assert np.allclose(d[20:30, 8], _z(30))


def test_stacked_upright_classes():
    labels = _scene()
    # column 2: a tree (house) standing on a car with no ground between: the tree's contact is unseen
    labels[35:45, 2] = CAR_ID
    labels[20:35, 2] = TREE_ID
    # column 4: the same, but a ground row between them: the tree stands on that ground
    labels[35:45, 4] = CAR_ID
    labels[34, 4] = GROUND_ID
    labels[20:34, 4] = TREE_ID
    # column 6: one class in two touching runs is one object
    labels[20:45, 6] = TREE_ID
    d = pseudo_depth(labels, ROLES, FY, HORIZON, CAM_H)
    assert np.allclose(d[35:45, 2], _z(45)) and _z(45) == pytest.approx(150 / 35)
    assert np.all(d[20:35, 2] == 0)
    assert np.allclose(d[35:45, 4], _z(45)) and np.allclose(d[20:35, 4], _z(34))
    assert np.allclose(d[20:45, 6], _z(45))


def test_ground_beyond_max_depth_and_uprights_on_it():
    labels = _scene()
    labels[12:20, 3] = TREE_ID  # stands at row 20: 15 m
    d = pseudo_depth(labels, ROLES, FY, HORIZON, CAM_H, max_ground_depth=10.0)
    assert np.all(d[11:25][labels[11:25] == GROUND_ID] == 0)  # ground nearer the horizon than 25 rows
    assert np.all(d[12:20, 3] == 0)  # its contact is beyond 10 m: no depth either
    assert np.allclose(d[25:, 0], [_z(v) for v in range(25, HGT)])
    assert d.max() <= 10.0 + 1e-6


def test_pseudo_depth_bad_arguments():
    with pytest.raises(ValueError):
        pseudo_depth(np.zeros((4, 4, 3), np.uint8), ROLES, FY, HORIZON, CAM_H)
    for fy, horizon, cam in ((0.0, 10.0, 1.5), (100.0, float("nan"), 1.5), (100.0, 10.0, 0.0)):
        with pytest.raises(ValueError):
            pseudo_depth(_scene(), ROLES, fy, horizon, cam)


# ---------------------------------------------------------------- YCOR colours and remap
def test_colors_to_ids():
    from meco_core.data.ycor import colors_to_ids

    n = YCOR.num_classes
    img = np.zeros((2, n + 4, 3), np.uint8)
    for i, c in enumerate(YCOR.colors):
        img[:, i] = c
    img[:, n] = (255, 255, 255)  # void / ego vehicle
    img[0, n + 1] = (10, 20, 30)  # unknown colours
    img[1, n + 1] = (1, 88, 254)  # one off sky's blue
    img[:, n + 2] = (0, 0, 0)
    img[:, n + 3] = (1, 88, 255)  # sky again
    ids, unknown = colors_to_ids(img)
    assert ids.dtype == np.uint8 and ids.shape == (2, n + 4)
    assert np.array_equal(ids[:, :n], np.tile(np.arange(n, dtype=np.uint8), (2, 1)))
    assert np.all(ids[:, n:n + 3] == 255) and np.all(ids[:, n + 3] == YCOR.names.index("sky"))
    assert unknown == 4  # the two unknown pixels and the two black ones; white is void, not unknown
    assert YCOR.colors[YCOR.names.index("traversable_grass")] == (128, 255, 0)


def test_ycor_to_golf_remap():
    lut = REMAPS["ycor->golf"]
    assert get_remap("ycor", "golf") is lut
    g = {n: i for i, n in enumerate(GOLF.names)}
    expected = {"sky": "background", "rough_trail": "hazard", "smooth_trail": "hazard",
                "traversable_grass": "fairway", "high_vegetation": "background", "low_vegetation": "background",
                "puddle": "hazard", "obstacle": "obstacle"}
    for name, golf in expected.items():
        assert lut[YCOR.names.index(name)] == g[golf], name
    assert lut[255] == 255 and lut[YCOR.num_classes] == 255


def test_camvid_tree_ignored_in_golf():
    lut = REMAPS["camvid->golf"]
    assert CAMVID.names[5] == "Tree" and lut[5] == 255
    g = {n: i for i, n in enumerate(GOLF.names)}
    assert lut[CAMVID.names.index("Road")] == g["road"] and lut[CAMVID.names.index("Pavement")] == g["road"]
    assert lut[CAMVID.names.index("Sky")] == g["background"] and lut[CAMVID.names.index("Building")] == g["background"]
    assert lut[CAMVID.names.index("Car")] == g["obstacle"] and lut[11] == 255 and lut[255] == 255


# ---------------------------------------------------------------- YCOR importer on real frames
YCOR_LIMIT = 12
HOLDOUT = (4, 10)


def _ycor_frames(shared_data) -> list[str]:
    base = shared_data / "ycor" / "train"
    if not base.is_dir():
        pytest.skip(f"no YCOR frames in {base}")
    return sorted((p.name for p in base.iterdir() if (p / "rgb.jpg").exists()), key=int)


@pytest.fixture(scope="module")
def ycor_out(shared_data, tmp_path_factory):
    from meco_core.data.ycor import convert_ycor

    frames = _ycor_frames(shared_data)[:YCOR_LIMIT]
    out = tmp_path_factory.mktemp("ycor")
    stats = convert_ycor(shared_data / "ycor", out, holdout=HOLDOUT, limit=YCOR_LIMIT, progress=False)
    return out, stats, frames


def test_ycor_holdout_split(ycor_out):
    out, stats, frames = ycor_out
    held = [f for f in frames if HOLDOUT[0] <= int(f) <= HOLDOUT[1]]
    assert held and len(held) < len(frames)  # the range covers some, not all
    r = DatasetReader(out)
    assert r.names("val") == sorted(held)
    assert r.names("train") == sorted(set(frames) - set(held))
    assert stats["splits"] == {"train": len(frames) - len(held), "val": len(held)}
    assert r.meta["splits"] == stats["splits"]
    # pseudo-depth only for training frames: held-out frames are scored against labels only
    assert stats["frames_with_depth"] == len(frames) - len(held)
    assert all(r.load("val", n).depth_m is None for n in held)
    assert all(r.has_depth("train", n) for n in r.names("train"))


def test_ycor_holdout_every_other_frame_and_none(shared_data, tmp_path):
    """--holdout-every 2 keeps the block's 1st, 3rd, ... frames out and trains on the rest (with
    pseudo-depth); --holdout none trains on every frame."""
    from meco_core.cli import main
    from meco_core.data.ycor import convert_ycor

    frames = _ycor_frames(shared_data)[:YCOR_LIMIT]
    block = [f for f in frames if HOLDOUT[0] <= int(f) <= HOLDOUT[1]]
    assert len(block) >= 3
    out = tmp_path / "every2"
    assert main(["data", "ycor", "--root", str(shared_data / "ycor"), "--out", str(out), "--limit", str(YCOR_LIMIT),
                 "--size", "68x128", "--holdout", f"{HOLDOUT[0]}-{HOLDOUT[1]}", "--holdout-every", "2"]) == 0
    r = DatasetReader(out)
    assert r.names("val") == block[::2]
    assert r.names("train") == sorted(set(frames) - set(block[::2]))
    assert all(r.has_depth("train", n) for n in block[1::2])  # block frames that train get pseudo-depth
    out = tmp_path / "all"
    assert main(["data", "ycor", "--root", str(shared_data / "ycor"), "--out", str(out), "--limit", str(YCOR_LIMIT),
                 "--size", "68x128", "--holdout", "none"]) == 0
    assert DatasetReader(out).meta["splits"] == {"train": len(frames)}
    with pytest.raises(ValueError, match="holdout_every"):
        convert_ycor(shared_data / "ycor", tmp_path / "bad", holdout_every=0, limit=2, progress=False)


def test_ycor_dataset_yaml_records_assumed_camera(ycor_out):
    from meco_core.data.ycor import ASSUMED_HFOV_DEG, DEFAULT_SIZE

    out, stats, _ = ycor_out
    meta = yaml.safe_load((out / "dataset.yaml").read_text())
    assert "ASSUMED" in meta["camera_note"] and meta["camera_note"] == stats["camera_note"]
    assert meta["classes"]["names"] == YCOR.names
    h, w = DEFAULT_SIZE
    fx, fy, cx, cy = default_intrinsics(h, w, ASSUMED_HFOV_DEG)
    assert (meta["intrinsics"]["width"], meta["intrinsics"]["height"]) == (w, h)
    assert meta["intrinsics"]["fy"] == pytest.approx(fy) and meta["intrinsics"]["fx"] == pytest.approx(fx)
    s = DatasetReader(out).load("train", DatasetReader(out).names("train")[0])
    assert s.rgb.shape == (h, w, 3) and s.labels.shape == (h, w) and s.depth_m.shape == (h, w)
    assert s.intrinsics == pytest.approx((fx, fy, cx, cy))


def test_ycor_labels_match_the_source_colours(ycor_out, shared_data):
    import cv2

    from meco_core.data.ycor import colors_to_ids

    out, _, frames = ycor_out
    r = DatasetReader(out)
    name = r.names("val")[0]
    src = cv2.imread(str(shared_data / "ycor" / "train" / name / "labels.png"), cv2.IMREAD_COLOR)[..., ::-1]
    src_ids, _ = colors_to_ids(src)
    stored = r.load("val", name).labels
    for c in list(range(YCOR.num_classes)) + [255]:  # class fractions survive the half-size resize
        assert (stored == c).mean() == pytest.approx((src_ids == c).mean(), abs=0.01), c
    assert len(np.unique(stored)) >= 3


def test_ycor_pseudo_depth_on_real_frames(ycor_out):
    from meco_core.data.ycor import ASSUMED_CAMERA_HEIGHT_M, ASSUMED_HORIZON_FRAC

    out, _, _ = ycor_out
    r = DatasetReader(out)
    fy = r.intrinsics["fy"]
    h = r.intrinsics["height"]
    horizon = ASSUMED_HORIZON_FRAC * h
    z = ground_row_depth(h, fy, horizon, ASSUMED_CAMERA_HEIGHT_M)
    first_full = int(math.ceil(horizon + fy * ASSUMED_CAMERA_HEIGHT_M / 40.0)) + 1  # nearer than 40 m from here
    trail_ids = [YCOR.names.index("rough_trail"), YCOR.names.index("smooth_trail")]
    n_trail = n_sky = 0
    ground_ids = [YCOR.names.index(n) for n in ("rough_trail", "smooth_trail", "traversable_grass", "puddle",
                                                "low_vegetation")]
    upright_ids = [YCOR.names.index(n) for n in ("high_vegetation", "obstacle")]
    n_upright = 0
    for split in ("train",):  # held-out frames carry no pseudo-depth
        for name in r.names(split):
            s = r.load(split, name)
            d, lab = s.depth_m, s.labels
            above = np.zeros(lab.shape, bool)
            above[: int(horizon) + 1] = True
            assert np.all(d[above & np.isin(lab, ground_ids)] == 0)  # no ground above the horizon
            assert d.max() <= 40.0 + 1e-3  # uprights take ground depths, which stop at 40 m
            n_upright += int((d[np.isin(lab, upright_ids)] > 0).sum())
            assert np.all(d[lab == YCOR.names.index("sky")] == 0)
            assert np.all(d[lab == 255] == 0)
            trail = np.isin(lab, trail_ids)
            trail[:first_full] = False
            v, _u = np.nonzero(trail)
            assert np.all(d[trail] > 0), name
            assert np.allclose(d[trail], z[v], atol=1e-3), name  # flat ground (mm rounding)
            n_trail += int(trail.sum())
            n_sky += int((lab == 0).sum())
    assert n_trail > 10000 and n_sky > 1000 and n_upright > 1000


def test_ycor_golf_view(ycor_out):
    from meco_core.data.dataset import MecoDataset

    out, _, _ = ycor_out
    r = DatasetReader(out)
    g = {n: i for i, n in enumerate(GOLF.names)}
    y = {n: i for i, n in enumerate(YCOR.names)}
    pairs = [("traversable_grass", "fairway"), ("smooth_trail", "hazard"), ("rough_trail", "hazard"),
             ("high_vegetation", "background"), ("sky", "background")]
    seen = {p: 0 for p in pairs}
    for split in ("train", "val"):
        ds = MecoDataset(out, split, class_set="golf")
        assert ds.class_set.name == "golf"
        for i in range(len(ds)):
            item = ds[i]
            raw = r.load(split, item["name"]).labels
            seg = item["seg"].numpy()
            assert set(np.unique(seg).tolist()) <= set(range(GOLF.num_classes)) | {255}
            assert np.all(seg[raw == 255] == 255)
            for src, dst in pairs:
                m = raw == y[src]
                assert np.all(seg[m] == g[dst]), (item["name"], src)
                seen[(src, dst)] += int(m.sum())
            assert bool(item["has_depth"]) == (split == "train") and bool(item["has_seg"])
            assert item["camera"] == "given" and item["focal"].item() == pytest.approx(r.intrinsics["fy"])
    assert all(n > 0 for n in seen.values()), seen


def test_ycor_cli(shared_data, tmp_path, capsys):
    from meco_core.cli import main

    _ycor_frames(shared_data)
    out = tmp_path / "cli"
    rc = main(["data", "ycor", "--root", str(shared_data / "ycor"), "--out", str(out), "--limit", "4",
               "--size", "136x256"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "ASSUMED" in printed and re.search(r"train 4", printed)
    meta = yaml.safe_load((out / "dataset.yaml").read_text())
    assert meta["splits"] == {"train": 4}  # the default holdout (1000-1149) holds none of the first ids
    assert (meta["intrinsics"]["height"], meta["intrinsics"]["width"]) == (136, 256)
    assert "ASSUMED" in meta["camera_note"]
    s = DatasetReader(out).load("train", DatasetReader(out).names("train")[0])
    assert s.rgb.shape == (136, 256, 3) and s.depth_m is not None and (s.depth_m > 0).any()


def test_ycor_cli_no_pseudo_depth_and_bad_holdout(shared_data, tmp_path):
    from meco_core.cli import main

    _ycor_frames(shared_data)
    out = tmp_path / "nodepth"
    assert main(["data", "ycor", "--root", str(shared_data / "ycor"), "--out", str(out), "--limit", "2",
                 "--size", "68x128", "--no-pseudo-depth", "--holdout", "0-0"]) == 0
    r = DatasetReader(out)
    assert r.names("val") == ["0000"] and len(r.names("train")) == 1
    assert r.load("val", "0000").depth_m is None and r.load("val", "0000").labels is not None
    assert "pseudo-depth" not in r.meta["camera_note"]
    with pytest.raises(SystemExit) as exc:
        main(["data", "ycor", "--root", str(shared_data / "ycor"), "--out", str(out), "--holdout", "9-3"])
    assert exc.value.code == 2


def test_ycor_missing_root(tmp_path):
    from meco_core.data.ycor import convert_ycor

    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError):
        convert_ycor(tmp_path, tmp_path / "out", progress=False)


# ---------------------------------------------------------------- CamVid with pseudo-depth
def test_camvid_pseudo_depth(shared_data, tmp_path):
    from meco_core.data.camvid import ASSUMED_CAMERA_HEIGHT_M, ASSUMED_HORIZON_FRAC, convert_camvid
    from meco_core.data.dataset import MecoDataset

    camvid = shared_data / "camvid"
    if not camvid.is_dir():
        pytest.skip("no CamVid in shared data")
    counts = convert_camvid(camvid, tmp_path, limit=2, splits=["val"], pseudo=True, progress=False)
    assert counts == {"val": 2}
    r = DatasetReader(tmp_path)
    assert "ASSUMED" in r.meta["camera_note"]
    fy, h = r.intrinsics["fy"], r.intrinsics["height"]
    horizon = ASSUMED_HORIZON_FRAC * h
    z = ground_row_depth(h, fy, horizon, ASSUMED_CAMERA_HEIGHT_M)
    first_full = int(math.ceil(horizon + fy * ASSUMED_CAMERA_HEIGHT_M / 40.0)) + 1
    road, sky, tree = (CAMVID.names.index(n) for n in ("Road", "Sky", "Tree"))
    for name in r.names("val"):
        s = r.load("val", name)
        d, lab = s.depth_m, s.labels
        assert d is not None and d.shape == lab.shape
        near_road = lab == road
        near_road[:first_full] = False
        assert near_road.sum() > 1000
        v, _u = np.nonzero(near_road)
        assert np.all(d[near_road] > 0) and np.allclose(d[near_road], z[v], atol=1e-3)
        assert (d[lab == road] > 0).mean() > 0.9
        assert (lab == sky).any() and np.all(d[lab == sky] == 0)
        assert np.all(d[lab == tree] == 0)  # Tree has no role: it also covers flat grass verges
        above = np.zeros(lab.shape, bool)
        above[: int(horizon) + 1] = True
        assert np.all(d[above & ((lab == road) | (lab == CAMVID.names.index("Pavement")))] == 0)
        car = lab == CAMVID.names.index("Car")
        assert (d[car] > 0).any() if car.any() else True  # uprights standing on the road
    # through the golf remap, Tree pixels are ignored
    ds = MecoDataset(tmp_path, "val", class_set="golf")
    item = ds[0]
    raw = r.load("val", item["name"]).labels
    assert (raw == tree).any() and np.all(item["seg"].numpy()[raw == tree] == 255)
    assert bool(item["has_depth"]) and item["camera"] == "given"


def test_camvid_without_pseudo_depth_has_no_depth(shared_data, tmp_path):
    from meco_core.data.camvid import convert_camvid

    camvid = shared_data / "camvid"
    if not camvid.is_dir():
        pytest.skip("no CamVid in shared data")
    convert_camvid(camvid, tmp_path, limit=1, splits=["val"], progress=False)
    r = DatasetReader(tmp_path)
    assert "camera_note" not in r.meta and r.intrinsics is None
    assert r.load("val", r.names("val")[0]).depth_m is None


def test_max_ground_depth_option_reaches_the_importers(shared_data, tmp_path):
    """`--max-ground-depth 80` gives ground between 40 and 80 m its depth (the rows nearer the
    horizon), records the range in dataset.yaml, and leaves the default (40 m) unchanged."""
    from meco_core.cli import main

    camvid = shared_data / "camvid"
    if not camvid.is_dir():
        pytest.skip("no CamVid in shared data")
    out40, out80 = tmp_path / "c40", tmp_path / "c80"
    common = ["data", "camvid", "--root", str(camvid), "--limit", "2", "--splits", "val", "--pseudo-depth"]
    assert main([*common, "--out", str(out40)]) == 0
    assert main([*common, "--out", str(out80), "--max-ground-depth", "80"]) == 0
    r40, r80 = DatasetReader(out40), DatasetReader(out80)
    assert "ground to 40 m" in r40.meta["camera_note"] and "ground to 80 m" in r80.meta["camera_note"]
    road = CAMVID.names.index("Road")
    far_rows = 0
    for name in r40.names("val"):
        d40, d80, lab = r40.load("val", name).depth_m, r80.load("val", name).depth_m, r40.load("val", name).labels
        near = (d40 > 0)
        assert np.allclose(d80[near], d40[near])  # what 40 m gave is unchanged
        extra = (d80 > 0) & ~near
        assert d40.max() <= 40.0 + 1e-3 and d80.max() <= 80.0 + 1e-3
        assert np.all(d80[extra] > 40.0 - 1e-3)  # the new depth is all beyond 40 m
        far_rows += int((extra & (lab == road)).sum())
    assert far_rows > 0  # the frames' road does reach beyond 40 m
    for bad in ("0", "-5"):
        with pytest.raises(ValueError, match="max_ground_depth"):
            main([*common, "--out", str(tmp_path / "bad"), "--max-ground-depth", bad])
