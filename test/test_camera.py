"""Camera-aware depth (meco_core.camera): the default camera, intrinsics under resizing, input
sizing, canonical-focal depth scaling in the Estimator, and the per-sample `focal` of MecoDataset
with per-frame intrinsics stored in meco-dataset/1."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import TINY_CNN, TINY_SIZE
from meco_core.camera import (DEFAULT_HFOV_DEG, SIZE_MULTIPLE, canonical_focal_of, check_intrinsics,
                              default_intrinsics, depth_scale, fit_size, metric_depth_outputs, network_focal,
                              scale_intrinsics)
from meco_core.classes import GOLF
from meco_core.data.dataset import MecoDataset
from meco_core.data.format import DatasetReader, DatasetWriter

H, W = TINY_SIZE  # 64 x 96


# ---------------------------------------------------------------- pure camera maths
def test_default_camera_by_hand():
    assert DEFAULT_HFOV_DEG == 70.0
    fx, fy, cx, cy = default_intrinsics(480, 640)
    f = 320.0 / math.tan(math.radians(35.0))  # W/2 / tan(HFOV/2) = 457.01...
    assert fx == pytest.approx(f) and fy == pytest.approx(f) and f == pytest.approx(457.01, abs=0.01)
    assert (cx, cy) == (319.5, 239.5)  # the centre of a 640x480 pixel grid
    # square pixels: fy follows the width, not the height
    assert default_intrinsics(100, 640)[1] == pytest.approx(f)
    # 90 degrees: f = W/2
    assert default_intrinsics(480, 640, hfov_deg=90.0)[0] == pytest.approx(320.0)


def test_scale_intrinsics_halving_and_pixel_centres():
    intr = (400.0, 410.0, 319.5, 239.5)
    fx, fy, cx, cy = scale_intrinsics(intr, (480, 640), (240, 320))
    assert (fx, fy) == pytest.approx((200.0, 205.0))
    assert (cx, cy) == pytest.approx((159.5, 119.5))  # image centre stays the image centre
    # the centre of pixel 0 lies a quarter of a new pixel left of the new pixel 0's centre
    assert scale_intrinsics((400, 400, 0.0, 0.0), (480, 640), (240, 320))[2:] == pytest.approx((-0.25, -0.25))
    # anisotropic resize: fx follows the width, fy the height
    fx, fy, cx, cy = scale_intrinsics(intr, (480, 640), (240, 640))
    assert (fx, fy, cx, cy) == pytest.approx((400.0, 205.0, 319.5, 119.5))
    # round trip
    back = scale_intrinsics(scale_intrinsics(intr, (480, 640), (120, 200)), (120, 200), (480, 640))
    assert back == pytest.approx(intr)


def test_network_focal_uses_fy_and_heights():
    assert network_focal(None, (480, 640), (240, 320)) == pytest.approx(default_intrinsics(480, 640)[1] / 2)
    assert network_focal((300, 500, 0, 0), (480, 640), (240, 320)) == pytest.approx(250.0)
    # only the height ratio counts (fy), also when the aspect ratio changes
    assert network_focal((300, 500, 0, 0), (480, 640), (240, 999)) == pytest.approx(250.0)
    with pytest.raises(ValueError):
        network_focal((300, 0, 0, 0), (480, 640), (240, 320))


@pytest.mark.parametrize("src, budget", [((375, 1242), (240, 320)), ((544, 1024), (240, 320)),
                                         ((100, 1000), (240, 320)), ((1000, 300), (240, 320))])
def test_fit_size_keeps_aspect_and_pixel_count_within_rounding(src, budget):
    h, w = fit_size(src, budget)
    assert h % SIZE_MULTIPLE == 0 and w % SIZE_MULTIPLE == 0 and h >= SIZE_MULTIPLE and w >= SIZE_MULTIPLE
    area = budget[0] * budget[1]
    ideal_h = math.sqrt(area * src[0] / src[1])  # the budget's pixel count at the frame's aspect ratio
    ideal_w = area / ideal_h
    # each side is the ideal one rounded to the multiple (never more than half a multiple off,
    # except where the minimum side applies)
    assert abs(h - ideal_h) <= SIZE_MULTIPLE / 2 or h == SIZE_MULTIPLE
    assert abs(w - ideal_w) <= SIZE_MULTIPLE / 2 or w == SIZE_MULTIPLE


def test_fit_size_kitti_frame():
    h, w = fit_size((375, 1242), (240, 320))
    assert (h, w) == (160, 512)  # as documented: a wide strip, not squeezed to 4:3
    assert abs(h * w - 76800) / 76800 < 0.1  # 81920: the pixel count within the rounding to 32
    assert w / h > 2.5  # near the frame's 3.3, far from the budget's 1.33


def test_fit_size_same_aspect_returns_budget():
    assert fit_size((480, 640), (240, 320)) == (240, 320)
    assert fit_size((240, 320), (240, 320)) == (240, 320)
    assert fit_size((375, 1242), (375, 1242)) == (375, 1242)  # even when not a multiple of 32
    h, w = fit_size((640, 480), (240, 320))  # portrait: the budget turned (sides rounded to 32)
    assert h == 320 and w in (224, 256)


def test_depth_scale():
    assert depth_scale(250.0, 0.0) == 1.0
    assert depth_scale(250.0, -5.0) == 1.0
    assert depth_scale(250.0, 125.0) == pytest.approx(2.0)
    assert depth_scale(50.0, 100.0) == pytest.approx(0.5)


def test_check_intrinsics():
    assert check_intrinsics([1, 2, 3, 4]) == (1.0, 2.0, 3.0, 4.0)
    for bad in [(100, 0, 1, 1), (0, 100, 1, 1), (100, -1, 1, 1), (float("nan"), 100, 1, 1), (100, 100, float("inf"), 1),
                (100, 100, 1), (100, 100, 1, 1, 1), "abcd", None, ("a", 1, 2, 3)]:
        with pytest.raises(ValueError):
            check_intrinsics(bad)


def test_metric_depth_outputs_per_sample():
    depth = torch.ones(3, 1, 4, 5)
    seg = torch.zeros(3, 5, 4, 5)
    out = metric_depth_outputs({"depth": depth, "segmentation": seg}, torch.tensor([100.0, 300.0, 50.0]), 100.0)
    assert out["segmentation"] is seg
    for i, k in enumerate([1.0, 3.0, 0.5]):
        assert torch.allclose(out["depth"][i], torch.full((1, 4, 5), k))
    assert torch.equal(depth, torch.ones(3, 1, 4, 5))  # the input is not changed in place
    # canonical 0, no focal, no depth: unchanged
    assert metric_depth_outputs({"depth": depth}, torch.tensor([1.0, 2.0, 3.0]), 0.0)["depth"] is depth
    assert metric_depth_outputs({"depth": depth}, None, 100.0)["depth"] is depth
    assert metric_depth_outputs({"segmentation": seg}, torch.tensor([1.0, 2.0, 3.0]), 100.0) == {"segmentation": seg}


def test_canonical_focal_of():
    from meco_core.models import build_model

    assert canonical_focal_of(build_model("meco", **TINY_CNN, canonical_focal=100.0)) == 100.0
    assert canonical_focal_of(build_model("meco", **TINY_CNN)) == 0.0  # the default: metres directly
    assert canonical_focal_of(object()) == 0.0

    class Cfg:
        config = {"canonical_focal": None}

    assert canonical_focal_of(Cfg()) == 0.0


# ---------------------------------------------------------------- Estimator
def _estimator(canonical_focal: float):
    from meco_core.inference.estimator import Estimator

    torch.manual_seed(0)
    return Estimator(checkpoint="", model_name="meco", model_config={**TINY_CNN, "canonical_focal": canonical_focal},
                     device="cpu", inference_size=TINY_SIZE, warn=lambda msg: None)


@pytest.fixture(scope="module")
def est_canonical():
    return _estimator(100.0)


@pytest.fixture(scope="module")
def est_metric():
    return _estimator(0.0)


@pytest.fixture(scope="module")
def frame():
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _finite_close(a: np.ndarray, b: np.ndarray) -> None:
    fa, fb = np.isfinite(a), np.isfinite(b)
    assert np.array_equal(fa, fb) and fa.any()
    assert np.allclose(a[fa], b[fa], rtol=1e-5, atol=0)


def test_estimator_depth_scales_with_focal(est_canonical, frame):
    assert est_canonical.canonical_focal == 100.0
    f = 70.0
    a = est_canonical.predict(frame, intrinsics=(f, f, W / 2 - 0.5, H / 2 - 0.5))
    b = est_canonical.predict(frame, intrinsics=(f, 2 * f, W / 2 - 0.5, H / 2 - 0.5))
    assert a.camera == "given" and b.camera == "given"
    assert a.depth_m.shape == (H, W)
    _finite_close(b.depth_m, 2 * a.depth_m)
    # fx and the principal point do not change depth
    c = est_canonical.predict(frame, intrinsics=(3 * f, f, 10.0, 5.0))
    _finite_close(c.depth_m, a.depth_m)
    # labels do not depend on the camera
    assert np.array_equal(a.labels, b.labels)


def test_estimator_default_camera(est_canonical, frame):
    none = est_canonical.predict(frame)
    assert none.camera == "default"
    given = est_canonical.predict(frame, intrinsics=default_intrinsics(H, W))
    assert given.camera == "given"
    _finite_close(none.depth_m, given.depth_m)
    # and the default camera is not some other focal length
    other = est_canonical.predict(frame, intrinsics=(1.5 * default_intrinsics(H, W)[1],) * 2 + (0.0, 0.0))
    _finite_close(other.depth_m, 1.5 * none.depth_m)


def test_estimator_scale_uses_network_focal(est_canonical):
    """The frame's fy is carried to the network input's pixels: resized to the inference size
    (stretched, as the fixed-size ONNX graphs of the node must), or with keep_aspect at the
    frame's own aspect ratio."""
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (2 * H, 2 * W, 3), dtype=np.uint8)  # same aspect, twice the size
    raw = est_canonical.infer(big, intrinsics=(200.0, 200.0, 0.0, 0.0))
    assert tuple(raw.depth.shape[-2:]) == TINY_SIZE
    assert raw.depth_scale == pytest.approx(200.0 * 0.5 / 100.0)
    assert raw.output_size == (2 * H, 2 * W)

    wide = rng.integers(0, 256, (H, 3 * H, 3), dtype=np.uint8)  # 1:3, inference size 2:3
    assert est_canonical.network_size(H, 3 * H) == TINY_SIZE  # stretched by default
    raw = est_canonical.infer(wide, intrinsics=(80.0, 80.0, 0.0, 0.0))
    assert raw.depth_scale == pytest.approx(80.0 * TINY_SIZE[0] / H / 100.0)
    est_canonical.keep_aspect = True
    try:
        net = est_canonical.network_size(H, 3 * H)
        assert net == fit_size((H, 3 * H), TINY_SIZE) and net[1] / net[0] > 2  # keeps the aspect ratio
        raw = est_canonical.infer(wide, intrinsics=(80.0, 80.0, 0.0, 0.0))
        assert tuple(raw.depth.shape[-2:]) == net
        assert raw.depth_scale == pytest.approx(80.0 * net[0] / H / 100.0)
    finally:
        est_canonical.keep_aspect = False
    pred = est_canonical.predict(wide)
    assert pred.depth_m.shape == (H, 3 * H) and pred.labels.shape == (H, 3 * H)


@pytest.mark.parametrize("bad", [(70.0, 0.0, 47.5, 31.5), (70.0, -70.0, 47.5, 31.5), (0.0, 70.0, 47.5, 31.5),
                                 (70.0, float("nan"), 47.5, 31.5), (float("nan"), 70.0, 47.5, 31.5),
                                 (70.0, 70.0, 47.5), (70.0, 70.0, 47.5, 31.5, 1.0), ("x", 70.0, 47.5, 31.5)])
def test_estimator_bad_intrinsics(est_canonical, frame, bad):
    with pytest.raises(ValueError):
        est_canonical.predict(frame, intrinsics=bad)


def test_metric_model_ignores_intrinsics(est_metric, frame):
    assert est_metric.canonical_focal == 0.0
    base = est_metric.predict(frame)
    for intr in [(70.0, 70.0, 47.5, 31.5), (70.0, 140.0, 47.5, 31.5), (500.0, 500.0, 0.0, 0.0)]:
        pred = est_metric.predict(frame, intrinsics=intr)
        assert pred.camera == "given"
        _finite_close(pred.depth_m, base.depth_m)
    with pytest.raises(ValueError):  # still validated
        est_metric.predict(frame, intrinsics=(70.0, 0.0, 47.5, 31.5))


# ---------------------------------------------------------------- dataset focal and per-frame intrinsics
DS_INTR = dict(fx=60.0, fy=64.0, cx=47.5, cy=31.5, width=W, height=H)


def _rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _labels(h: int = H, w: int = W) -> np.ndarray:
    labels = np.zeros((h, w), np.uint8)
    labels[h // 2:] = 1
    return labels


@pytest.fixture
def per_frame_root(tmp_path):
    """val: 'a' with its own camera, 'b' without (no dataset-level intrinsics)."""
    root = tmp_path / "per_frame"
    with DatasetWriter(root, GOLF) as writer:
        writer.write("val", "a", _rgb(0), labels=_labels(), intrinsics=(80.0, 90.0, 47.0, 31.0))
        writer.write("val", "b", _rgb(1), labels=_labels())
    return root


def test_per_frame_intrinsics_round_trip(per_frame_root):
    assert (per_frame_root / "val" / "camera" / "a.txt").is_file()
    assert not (per_frame_root / "val" / "camera" / "b.txt").exists()
    r = DatasetReader(per_frame_root)
    assert r.intrinsics is None
    assert r.load("val", "a").intrinsics == pytest.approx((80.0, 90.0, 47.0, 31.0))
    assert r.load("val", "b").intrinsics is None
    # exact floats survive the text file
    with DatasetWriter(per_frame_root, GOLF) as writer:
        writer.write("val", "c", _rgb(2), intrinsics=(1 / 3, 2 / 7, -0.1, 1e-9))
    assert DatasetReader(per_frame_root).load("val", "c").intrinsics == (1 / 3, 2 / 7, -0.1, 1e-9)
    # a rewrite without intrinsics drops the frame's camera
    with DatasetWriter(per_frame_root, GOLF) as writer:
        writer.write("val", "a", _rgb(0))
    assert DatasetReader(per_frame_root).load("val", "a").intrinsics is None


@pytest.mark.parametrize("bad", [(80.0, 0.0, 1.0, 1.0), (80.0, float("nan"), 1.0, 1.0), (80.0, 90.0, 1.0)])
def test_per_frame_intrinsics_validated(tmp_path, bad):
    from meco_core.data.format import DatasetFormatError

    with DatasetWriter(tmp_path, GOLF) as writer:
        with pytest.raises(DatasetFormatError):
            writer.write("val", "a", _rgb(0), intrinsics=bad)


def test_dataset_level_intrinsics_fallback_only_when_size_matches(tmp_path):
    root = tmp_path / "ds"
    with DatasetWriter(root, GOLF, intrinsics=DS_INTR) as writer:
        writer.write("val", "a", _rgb(0))
        writer.write("val", "own", _rgb(1), intrinsics=(10.0, 11.0, 12.0, 13.0))  # the frame's own wins
    r = DatasetReader(root)
    assert r.load("val", "a").intrinsics == pytest.approx((60.0, 64.0, 47.5, 31.5))
    assert r.load("val", "own").intrinsics == pytest.approx((10.0, 11.0, 12.0, 13.0))
    assert r.frame_intrinsics("val", "a", (H, W)) == pytest.approx((60.0, 64.0, 47.5, 31.5))
    assert r.frame_intrinsics("val", "a", (H, W + 1)) is None  # another size: not this camera
    assert r.frame_intrinsics("val", "a", (W, H)) is None
    assert r.frame_intrinsics("val", "own", (H, W + 1)) == pytest.approx((10.0, 11.0, 12.0, 13.0))


def test_corrupt_camera_file_is_an_error(per_frame_root):
    from meco_core.data.format import DatasetFormatError

    (per_frame_root / "val" / "camera" / "a.txt").write_text("80 0 1 1\n")
    with pytest.raises(DatasetFormatError):
        DatasetReader(per_frame_root).load("val", "a")


def test_dataset_focal_after_resize(per_frame_root):
    ds = MecoDataset(per_frame_root, "val", resize=(H // 2, W // 2))
    items = {ds[i]["name"]: ds[i] for i in range(len(ds))}
    a, b = items["a"], items["b"]
    assert a["image"].shape[-2:] == (H // 2, W // 2)
    assert a["camera"] == "given" and b["camera"] == "default"
    assert a["focal"].item() == pytest.approx(90.0 / 2)
    assert b["focal"].item() == pytest.approx(default_intrinsics(H, W)[1] / 2)
    # no resize: the stored focal length itself; a centre crop keeps it
    ds = MecoDataset(per_frame_root, "val", crop_size=(32, 48))
    items = {ds[i]["name"]: ds[i] for i in range(len(ds))}
    assert items["a"]["image"].shape[-2:] == (32, 48)
    assert items["a"]["focal"].item() == pytest.approx(90.0)
    assert items["b"]["focal"].item() == pytest.approx(default_intrinsics(H, W)[1])


def test_dataset_focal_keep_aspect(per_frame_root):
    budget = (128, 128)
    ds = MecoDataset(per_frame_root, "val", resize=budget, keep_aspect=True)
    nh, nw = fit_size((H, W), budget)
    assert (nh, nw) != budget
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape[-2:] == (nh, nw) and item["seg"].shape == (nh, nw)
        fy = 90.0 if item["name"] == "a" else default_intrinsics(H, W)[1]
        assert item["focal"].item() == pytest.approx(fy * nh / H)


def test_dataset_focal_under_zoom_augmentation(per_frame_root):
    torch.manual_seed(0)
    ds = MecoDataset(per_frame_root, "val", augment=True, scale_range=(0.5, 2.0), jitter=0.0)
    seen = set()
    for _ in range(6):
        for i in range(len(ds)):
            item = ds[i]
            nh = item["image"].shape[-2]
            fy = 90.0 if item["name"] == "a" else default_intrinsics(H, W)[1]
            assert item["focal"].item() == pytest.approx(fy * nh / H, rel=1e-6)  # zoom = longer lens
            seen.add(nh)
    assert len(seen) > 1


def test_dataset_focal_collates(per_frame_root):
    from torch.utils.data import DataLoader

    batch = next(iter(DataLoader(MecoDataset(per_frame_root, "val"), batch_size=2)))
    assert batch["focal"].shape == (2,) and batch["focal"].dtype == torch.float32
    assert sorted(batch["camera"]) == ["default", "given"]
