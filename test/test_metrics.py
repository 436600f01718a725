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
