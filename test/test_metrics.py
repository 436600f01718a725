"""Metrics against hand-computed values, accumulated over a set."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from meco_core.models.losses import depth_loss, segmentation_loss
from meco_core.models.metrics import DepthMetrics, SegmentationMetrics


def test_depth_metrics_by_hand() -> None:
    m = DepthMetrics(max_depth=80.0)
    # image 1: gt 2, 4 (and 0 = no data, and 90 >= max_depth: both ignored); pred 1, 4
    m.update(np.array([1.0, 4.0, 7.0, 50.0]), np.array([2.0, 4.0, 0.0, 90.0]))
    # image 2: gt 10, pred 12.5 (ratio exactly 1.25: not < 1.25)
    m.update(torch.tensor([12.5]), torch.tensor([10.0]))
    r = m.compute()
    errs, gts = np.array([-1.0, 0.0, 2.5]), np.array([2.0, 4.0, 10.0])
    preds = gts + errs
    assert r["pixels"] == 3
    assert r["rmse"] == pytest.approx(math.sqrt((1 + 0 + 6.25) / 3))
    assert r["abs_rel"] == pytest.approx((0.5 + 0 + 0.25) / 3)
    assert r["sq_rel"] == pytest.approx((1 / 2 + 0 + 6.25 / 10) / 3)
    assert r["rmse_log"] == pytest.approx(math.sqrt(np.mean((np.log(preds) - np.log(gts)) ** 2)))
    assert r["d1"] == pytest.approx(1 / 3)      # only the exact pixel; 1.25 and 2.0 are not < 1.25
    assert r["d2"] == pytest.approx(2 / 3)      # 1.25 < 1.5625; 2.0 is not
    assert r["d3"] == pytest.approx(2 / 3)      # 2.0 > 1.953


def test_depth_metrics_clamp_nonpositive_predictions_and_empty_set() -> None:
    m = DepthMetrics()
    assert math.isnan(m.compute()["rmse"])
    m.update(np.array([0.0, np.nan]), np.array([1.0, 1.0]))
    assert m.compute()["abs_rel"] == pytest.approx(1 - 1e-3)


def test_segmentation_iou_by_hand() -> None:
    m = SegmentationMetrics(num_classes=4)
    gt = np.array([[0, 0, 1, 255], [1, 1, 2, 2]])
    pred = np.array([[0, 1, 1, 3], [1, 0, 2, 2]])
    m.update(pred, gt)
    r = m.compute()
    # class 0: tp1 fp1 fn1 -> 1/3; class 1: tp2 fp1 fn1 -> 2/4; class 2: 2/2; class 3: absent -> NaN
    assert r["iou_per_class"][:3] == pytest.approx([100 / 3, 50.0, 100.0])
    assert math.isnan(r["iou_per_class"][3])
    assert r["miou"] == pytest.approx((100 / 3 + 50 + 100) / 3)
    assert r["pixels"] == 7
    # accumulation over a set equals one big update
    m2 = SegmentationMetrics(num_classes=4)
    m2.update(pred[:1], gt[:1])
    m2.update(pred[1:], gt[1:])
    assert torch.equal(m.confusion, m2.confusion)


def test_confusion_by_hand_in_text_and_picture(tmp_path) -> None:
    """The matrix of the IoU example above (rows ground truth, columns prediction), its row
    shares, the largest confusions as `meco eval` prints them, and the PNG."""
    from meco_core.evaluation.confusion import row_shares, save_confusion, top_confusions
    from meco_core.evaluation.evaluate import MetricSet, format_table

    m = SegmentationMetrics(num_classes=4)
    m.update(np.array([[0, 1, 1, 3], [1, 0, 2, 2]]), np.array([[0, 0, 1, 255], [1, 1, 2, 2]]))
    cm = m.compute()["confusion"]
    assert cm == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]]  # the 255 pixel is not counted
    shares = row_shares(cm)
    assert shares[0].tolist() == [50.0, 50.0, 0.0, 0.0] and shares[1] == pytest.approx([100 / 3, 200 / 3, 0, 0])
    assert np.isnan(shares[3]).all()  # a class the frames do not hold
    names = ["grass", "trail", "sky", "rock"]
    # two cells of one pixel each: 1/7 of all pixels; "grass called trail" is 50 % of grass
    assert top_confusions(cm, names) == [("trail", "grass", pytest.approx(100 / 3), pytest.approx(100 / 7)),
                                         ("grass", "trail", 50.0, pytest.approx(100 / 7))]
    assert top_confusions(cm, names, min_share=40.0) == [("grass", "trail", 50.0, pytest.approx(100 / 7))]
    ms = MetricSet(("segmentation",), num_classes=4)
    ms.update({"labels": torch.tensor([[[0, 1, 1, 3], [1, 0, 2, 2]]])},
              {"seg": torch.tensor([[[0, 0, 1, 255], [1, 1, 2, 2]]]), "has_seg": torch.tensor([True])})
    r = ms.compute()
    assert r["confusion"] == cm
    assert "most confused: trail called grass (33.3 % of its pixels, 14.3 % of all)" in format_table(r, names)
    png = save_confusion(cm, names, tmp_path / "c.png")
    assert png.stat().st_size > 1000
    with pytest.raises(ValueError, match="3 class names"):
        save_confusion(cm, names[:3], tmp_path / "bad.png")


def test_per_frame_rows_by_hand_and_the_worst_frames_printed(tmp_path) -> None:
    """Each frame's scores by the set's conventions; the worst listed only when the set holds
    more frames than the list; NaN cells empty in the CSV."""
    from meco_core.evaluation.evaluate import MetricSet, format_table
    from meco_core.evaluation.per_frame import save_csv, worst_frames

    ms = MetricSet(("depth", "segmentation"), num_classes=3, per_frame=True)
    gt_depth = torch.full((1, 1, 2, 2), 10.0)
    frames = [  # name, predicted depth (m), predicted labels; ground-truth labels are [[0, 0], [1, 1]]
        ("a", 10.0, [[0, 0], [1, 1]]),  # perfect
        ("b", 12.0, [[0, 1], [1, 1]]),  # AbsRel 0.2; class 0: 1/2, class 1: 2/3
        ("c", 5.0, [[0, 0], [1, 2]]),   # AbsRel 0.5; class 1: 1/2, class 2 only predicted
        ("d", 8.0, [[0, 0], [1, 1]]),   # AbsRel 0.2 (|8 - 10| / 10)
    ]
    for name, depth, labels in frames:
        ms.update({"depth": torch.full((1, 1, 2, 2), depth),
                   "labels": torch.tensor([labels])},
                  {"depth": gt_depth, "seg": torch.tensor([[[0, 0], [1, 1]]]), "name": [name]})
    r = ms.compute()
    rows = {row["name"]: row for row in r["per_frame"]}
    assert list(rows) == ["a", "b", "c", "d"]
    assert rows["b"]["abs_rel"] == pytest.approx(0.2) and rows["c"]["abs_rel"] == pytest.approx(0.5)
    assert rows["c"]["ms_scale"] == pytest.approx(2.0) and rows["c"]["ms_abs_rel"] == pytest.approx(0.0)
    assert rows["b"]["miou_gt"] == pytest.approx((50.0 + 200 / 3) / 2)
    assert rows["c"]["miou_gt"] == pytest.approx(75.0) and rows["c"]["miou"] == pytest.approx(50.0)
    assert rows["a"]["pixel_acc"] == 100.0 and rows["b"]["pixel_acc"] == 75.0
    assert [f["name"] for f in worst_frames(r["per_frame"], "abs_rel")] == ["c", "b", "d"]
    assert [f["name"] for f in worst_frames(r["per_frame"], "miou_gt", 2)] == ["b", "c"]
    text = format_table(r, ["x", "y", "z"])
    assert "worst frames by AbsRel: c 0.500, b 0.200, d 0.200" in text
    assert "worst frames by mIoU over its classes: b 58.3, c 75.0, a 100.0" in text
    # a depth-only frame: segmentation cells empty
    only = MetricSet(("depth",), num_classes=3, per_frame=True)
    only.update({"depth": torch.full((1, 1, 2, 2), 12.0)}, {"depth": gt_depth})
    path = save_csv(only.compute()["per_frame"], tmp_path / "pf.csv")
    assert path.read_text().splitlines() == [
        "name,rmse,rmse_log,abs_rel,sq_rel,d1,d2,d3,ms_abs_rel,ms_d1,ms_scale,miou_gt,miou,pixel_acc",
        "0,2.0,0.1823,0.2,0.4,1.0,1.0,1.0,0.0,1.0,0.8333,,,"]  # rmse_log = ln(1.2); sq_rel = 2^2 / 10
    assert "worst frames" not in format_table(only.compute())  # one frame: nothing to rank


def test_a_class_only_predicted_counts_in_miou_not_in_miou_gt() -> None:
    m = SegmentationMetrics(num_classes=3)
    gt = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 1, 2]])  # one pixel of class 2, which the ground truth does not hold
    m.update(pred, gt)
    r = m.compute()
    # class 0: 2/2; class 1: 1/2; class 2: tp0 fp1 -> 0
    assert r["iou_per_class"] == pytest.approx([100.0, 50.0, 0.0])
    assert r["miou"] == pytest.approx(50.0) and r["miou_gt"] == pytest.approx(75.0)


def test_segmentation_accepts_logits() -> None:
    m = SegmentationMetrics(num_classes=3)
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 2] = 1.0
    m.update(logits, torch.full((1, 2, 2), 2))
    assert m.compute()["miou"] == pytest.approx(100.0)


def test_losses_mask_samples_without_labels() -> None:
    pred = torch.full((2, 1, 2, 2), 2.0, requires_grad=True)
    gt = torch.tensor([[[[2.0, 0.0], [2.0, 2.0]]], [[[9.0, 9.0], [9.0, 9.0]]]])
    has = torch.tensor([True, False])
    assert float(depth_loss(pred, gt, has, "l1")) == 0.0          # sample 2 masked, 0 = no data
    assert float(depth_loss(pred, gt, None, "l1")) == pytest.approx(7 * 4 / 7)
    none = depth_loss(pred, gt, torch.tensor([False, False]), "silog")
    none.backward()                                                # connected, exactly zero
    assert float(none) == 0.0 and pred.grad is not None
    logits = torch.zeros(2, 3, 1, 1, requires_grad=True)
    target = torch.tensor([[[1]], [[2]]])
    ce = segmentation_loss(logits, target, torch.tensor([True, False]))
    assert float(ce) == pytest.approx(math.log(3))


# ------------------------------------------------------------------ median-scaled depth
def test_median_scaled_depth_of_a_prediction_twice_the_truth() -> None:
    m = DepthMetrics(max_depth=80.0)
    m.update(np.array([2.0, 4.0, 8.0]), np.array([1.0, 2.0, 4.0]))   # frame 1: pred = 2 gt
    m.update(np.array([6.0]), np.array([3.0]))                        # frame 2: pred = 2 gt
    r = m.compute()
    assert r["abs_rel"] == pytest.approx(1.0)
    assert r["rmse"] == pytest.approx(math.sqrt((1 + 4 + 16 + 9) / 4))
    assert r["d1"] == 0.0
    for k in ("ms_rmse", "ms_rmse_log", "ms_abs_rel", "ms_sq_rel"):
        assert r[k] == pytest.approx(0.0, abs=1e-12), k
    assert r["ms_d1"] == r["ms_d2"] == r["ms_d3"] == 1.0
    assert r["ms_scale_median"] == pytest.approx(0.5)
    assert r["pixels"] == 4


def test_median_scaled_depth_by_hand_with_invalid_pixels() -> None:
    m = DepthMetrics(max_depth=80.0)
    # frame 1: valid gt 2, 4, 6, 8; invalid gt 0, 90 and 95 (>= max_depth) whose predictions are
    # large: counting them would make both medians 6 (s = 1)
    m.update(np.array([1.0, 6.0, 100.0, 3.0, 200.0, 5.0, 300.0]), np.array([2.0, 4.0, 0.0, 6.0, 90.0, 8.0, 95.0]))
    m.update(np.array([20.0]), np.array([10.0]))             # frame 2: one pixel, s = 0.5
    m.update(np.array([5.0, 5.0]), np.array([0.0, 100.0]))   # frame 3: no valid pixel, contributes nothing
    r = m.compute()

    # by hand: medians over valid pixels only (even count: mean of the two middle values)
    s1 = ((4.0 + 6.0) / 2) / ((3.0 + 5.0) / 2)             # median gt 5, median pred 4 -> 1.25
    s2 = 10.0 / 20.0
    assert s1 == 1.25
    gts = [2.0, 4.0, 6.0, 8.0, 10.0]
    scaled = [s1 * 1.0, s1 * 6.0, s1 * 3.0, s1 * 5.0, s2 * 20.0]   # 1.25, 7.5, 3.75, 6.25, 10
    n = len(gts)
    abs_rel = sum(abs(p - g) / g for p, g in zip(scaled, gts)) / n
    assert abs_rel == pytest.approx((0.75 / 2 + 3.5 / 4 + 2.25 / 6 + 1.75 / 8 + 0.0) / 5)
    sq_rel = sum((p - g) ** 2 / g for p, g in zip(scaled, gts)) / n
    rmse = math.sqrt(sum((p - g) ** 2 for p, g in zip(scaled, gts)) / n)
    rmse_log = math.sqrt(sum((math.log(p) - math.log(g)) ** 2 for p, g in zip(scaled, gts)) / n)
    ratios = [max(p / g, g / p) for p, g in zip(scaled, gts)]  # 1.6, 1.875, 1.6, 1.28, 1.0

    assert r["pixels"] == 5
    assert r["ms_abs_rel"] == pytest.approx(abs_rel)
    assert r["ms_sq_rel"] == pytest.approx(sq_rel)
    assert r["ms_rmse"] == pytest.approx(rmse)
    assert r["ms_rmse_log"] == pytest.approx(rmse_log)
    assert r["ms_d1"] == pytest.approx(sum(x < 1.25 for x in ratios) / n) == pytest.approx(1 / 5)
    assert r["ms_d2"] == pytest.approx(sum(x < 1.25 ** 2 for x in ratios) / n) == pytest.approx(2 / 5)
    assert r["ms_d3"] == pytest.approx(sum(x < 1.25 ** 3 for x in ratios) / n) == pytest.approx(1.0)
    assert r["ms_scale_median"] == pytest.approx((s1 + s2) / 2)   # frame 3 has no scale
    # the metric numbers are untouched by the scaling
    preds = [1.0, 6.0, 3.0, 5.0, 20.0]
    assert r["abs_rel"] == pytest.approx(sum(abs(p - g) / g for p, g in zip(preds, gts)) / n)


def test_median_scaled_depth_of_an_empty_set_is_nan() -> None:
    m = DepthMetrics(max_depth=80.0)
    m.update(np.array([5.0, 5.0]), np.array([0.0, 80.0]))
    r = m.compute()
    assert r["pixels"] == 0
    for k in ("rmse", "rmse_log", "abs_rel", "sq_rel", "d1", "d2", "d3"):
        assert math.isnan(r[k]) and math.isnan(r["ms_" + k]), k
    assert math.isnan(r["ms_scale_median"])


def test_metric_set_and_table_show_the_median_scaled_row() -> None:
    import json

    from meco_core.evaluation.evaluate import DEPTH_KEYS, MS_DEPTH_KEYS, MetricSet, format_table, json_safe

    ms = MetricSet(("depth",), num_classes=0, max_depth=80.0)
    gt = torch.tensor([1.0, 2.0, 4.0, 0.0]).view(1, 1, 1, 4)
    ms.update({"depth": gt * 2}, {"depth": gt, "has_depth": torch.tensor([True])})
    r = ms.compute()
    assert set(MS_DEPTH_KEYS) == {f"ms_{k}" for k in DEPTH_KEYS} | {"ms_scale_median"}
    assert r["abs_rel"] == pytest.approx(1.0) and r["ms_abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert r["ms_scale_median"] == pytest.approx(0.5)
    text = format_table(r).splitlines()
    label = next(i for i, line in enumerate(text) if "median-scaled (per frame, median(gt)/median(pred))" in line)
    assert "0.500" in text[label]                                  # median scale
    assert text[label - 1].split()[2] == "1.000"                   # metric AbsRel row above
    assert text[label + 1].split()[2] == "0.000"                   # median-scaled AbsRel row below
    # results without the ms_ keys (older JSON) print the metric row only
    old = {k: v for k, v in r.items() if not k.startswith("ms_")}
    assert "median-scaled" not in format_table(old)
    # strict JSON with NaN for a set without depth
    empty = MetricSet(("depth",), num_classes=0).compute()
    doc = json.loads(json.dumps(json_safe(empty), allow_nan=False))
    assert all(doc[k] is None for k in MS_DEPTH_KEYS)


def test_depth_by_true_distance_by_hand() -> None:
    """Bands [0,10) [10,20) [20,40) [40,max): pixel share, metric AbsRel and the median gt/pred, by hand."""
    from meco_core.evaluation.evaluate import MetricSet, format_table, json_safe

    m = DepthMetrics(max_depth=80.0)
    # near: ratios 1, 0.5, 1.25 (median 1; AbsRel (0 + 1 + 0.2) / 3); 10-20 m exact; 30 m and 60 m read half
    m.update(np.array([5.0, 10.0, 4.0, 15.0, 15.0, 30.0]), np.array([5.0, 5.0, 5.0, 15.0, 30.0, 60.0]))
    m.update(np.array([8.0]), np.array([10.0]))  # a second frame: 10 m exactly opens the second band
    bands = m.compute()["bands"]
    assert [(b["from_m"], b["to_m"], b["pixels"]) for b in bands] == [(0, 10, 3), (10, 20, 2), (20, 40, 1), (40, 80, 1)]
    assert bands[0]["share"] == pytest.approx(3 / 7) and bands[0]["abs_rel"] == pytest.approx(0.4)
    assert bands[0]["gt_over_pred_median"] == pytest.approx(1.0, rel=0.005)
    assert bands[1]["abs_rel"] == pytest.approx(0.1) and bands[1]["gt_over_pred_median"] == pytest.approx(1.0, rel=0.005)
    for far in bands[2:]:
        assert far["abs_rel"] == pytest.approx(0.5) and far["gt_over_pred_median"] == pytest.approx(2.0, rel=0.005)
    # merged frames count as one set; a band with no pixels is NaN and left out of the printed line
    only_near = DepthMetrics(max_depth=80.0)
    only_near.update(np.array([2.0]), np.array([4.0]))
    near = only_near.compute()["bands"]
    assert near[0]["gt_over_pred_median"] == pytest.approx(2.0, rel=0.005) and math.isnan(near[3]["abs_rel"])
    ms = MetricSet(("depth",), num_classes=0, max_depth=80.0)
    ms.update({"depth": torch.tensor([2.0, 30.0]).view(1, 1, 1, 2)},
              {"depth": torch.tensor([4.0, 30.0]).view(1, 1, 1, 2), "has_depth": torch.tensor([True])})
    r = ms.compute()
    line = next(x for x in format_table(r).splitlines() if x.startswith("by true distance"))
    assert "0-10 m: AbsRel 0.500, gt/pred 2.00 (50 %)" in line and "20-40 m: AbsRel 0.000, gt/pred 1.00" in line
    assert "10-20" not in line
    assert json_safe(r)["depth_bands"][1]["abs_rel"] is None  # NaN -> null in the JSON
    short = DepthMetrics(max_depth=15.0)  # a short-range model: bands end at its range
    short.update(np.array([12.0]), np.array([14.0]))
    assert [(b["from_m"], b["to_m"], b["pixels"]) for b in short.compute()["bands"]] == [(0, 10, 0), (10, 15, 1)]


def test_depth_by_predicted_distance_by_hand() -> None:
    """The same pixels binned by their prediction; and why: an uncertain but unbiased reading shows
    regression to the mean by true distance, and none by its own distance."""
    from meco_core.evaluation.evaluate import MetricSet, format_table, json_safe

    m = DepthMetrics(max_depth=80.0)
    m.update(np.array([5.0, 10.0, 4.0, 15.0, 15.0, 30.0]), np.array([5.0, 5.0, 5.0, 15.0, 30.0, 60.0]))
    m.update(np.array([8.0]), np.array([10.0]))
    bands = m.compute()["pred_bands"]
    # predicted 5, 4, 8 m (gt 5, 5, 10): ratios 1, 1.25, 1.25; predicted 10, 15, 15 (gt 5, 15, 30): 0.5, 1, 2
    assert [(b["from_m"], b["to_m"], b["pixels"]) for b in bands] == [(0, 10, 3), (10, 20, 3), (20, 40, 1), (40, 80, 0)]
    assert bands[0]["abs_rel"] == pytest.approx(0.4 / 3) and bands[0]["gt_over_pred_median"] == pytest.approx(1.25, rel=0.005)
    assert bands[1]["abs_rel"] == pytest.approx(0.5) and bands[1]["gt_over_pred_median"] == pytest.approx(1.0, rel=0.005)
    assert bands[2]["gt_over_pred_median"] == pytest.approx(2.0, rel=0.005) and math.isnan(bands[3]["abs_rel"])
    # one appearance, three true depths: the reading 20 m is the log-mean, unbiased for what it reads
    u = DepthMetrics(max_depth=80.0)
    u.update(np.full(3, 20.0), np.array([12.0, 20.0, 33.0]))
    by_true, by_pred = u.compute()["bands"], u.compute()["pred_bands"]
    assert by_true[1]["gt_over_pred_median"] == pytest.approx(0.6, rel=0.005)  # 12 m reads far
    assert by_true[2]["gt_over_pred_median"] == pytest.approx(1.0, rel=0.005)  # 20 and 33 m: median ratio 1
    assert by_pred[2]["pixels"] == 3 and by_pred[2]["gt_over_pred_median"] == pytest.approx(1.0, rel=0.005)
    # beyond max_depth a prediction falls in the last band; merge adds both binnings
    far = DepthMetrics(max_depth=80.0)
    far.update(np.array([95.0]), np.array([50.0]))
    m.merge(far)
    assert m.compute()["pred_bands"][3]["pixels"] == 1 and m.compute()["bands"][3]["pixels"] == 2
    ms = MetricSet(("depth",), num_classes=0, max_depth=80.0)
    ms.update({"depth": torch.tensor([2.0, 30.0]).view(1, 1, 1, 2)},
              {"depth": torch.tensor([4.0, 30.0]).view(1, 1, 1, 2), "has_depth": torch.tensor([True])})
    r = ms.compute()
    line = next(x for x in format_table(r).splitlines() if x.startswith("by predicted distance"))
    assert "0-10 m: AbsRel 0.500, gt/pred 2.00 (50 %)" in line
    assert json_safe(r)["depth_bands_by_pred"][1]["abs_rel"] is None
