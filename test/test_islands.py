"""Small islands of a ground surface fold into the ground around them (meco_core.inference.islands),
by hand on tiny label images; the Estimator and `meco eval` apply the same step."""
from __future__ import annotations

import numpy as np

from meco_core.classes import CAMVID, GOLF
from meco_core.inference.islands import fold_small_islands, island_class_ids

BG, FAIRWAY, HAZARD, ROAD, OBSTACLE = range(5)
SURFACES = island_class_ids(GOLF)


def test_golf_surfaces_are_folded_and_other_sets_are_left_alone() -> None:
    assert SURFACES == (FAIRWAY, HAZARD, ROAD)
    assert island_class_ids(CAMVID) == ()


def test_a_small_road_island_in_a_trail_becomes_trail_and_big_regions_stay() -> None:
    labels = np.full((50, 100), HAZARD, np.uint8)    # 5000 px; 0.2 % = 10 px
    labels[:10, :] = BG                              # sky band, large
    labels[30:33, 40:43] = ROAD                      # 9 px road speckle inside the trail
    labels[20:30, 70:90] = ROAD                      # 200 px of road: a real patch
    labels[40:42, 5:8] = OBSTACLE                    # 6 px obstacle: never folded
    out = fold_small_islands(labels, SURFACES, 0.002)
    expected = labels.copy()
    expected[30:33, 40:43] = HAZARD
    assert np.array_equal(out, expected)
    assert labels[31, 41] == ROAD                    # the input is not modified


def test_an_island_is_filled_from_the_ground_around_it_never_from_void() -> None:
    labels = np.full((40, 40), FAIRWAY, np.uint8)
    labels[:, :20] = BG
    labels[18:21, 19:22] = HAZARD                    # 9 px straddling background (column 19) and fairway
    labels[0:2, 38:40] = 255                         # void is never a source and stays void
    out = fold_small_islands(labels, SURFACES, 0.01)  # 16 px minimum
    assert (out[18:21, 19] == BG).all() and (out[18:21, 20:22] == FAIRWAY).all()
    assert (out[0:2, 38:40] == 255).all()
    assert np.array_equal(out[:, :18], labels[:, :18]) and np.array_equal(out[:, 23:], labels[:, 23:])


def test_islands_at_the_image_edge_and_frames_of_nothing_but_islands() -> None:
    labels = np.full((30, 30), 255, np.uint8)
    labels[0:2, 0:2] = HAZARD                        # corner island with fairway beside it
    labels[0:5, 2:6] = FAIRWAY
    labels[20:30, 20:30] = BG
    out = fold_small_islands(labels, SURFACES, 0.01)  # 9 px minimum
    assert (out[0:2, 0:2] == FAIRWAY).all() and (out[out != FAIRWAY] == labels[out != FAIRWAY]).all()
    only = np.full((10, 10), 255, np.uint8)
    only[4:6, 4:6] = ROAD                            # an island with no labelled pixel anywhere: stays
    assert fold_small_islands(only, SURFACES, 0.1) is only


def test_nothing_to_fold_returns_the_same_array_and_zero_turns_it_off() -> None:
    labels = np.full((20, 20), FAIRWAY, np.uint8)
    assert fold_small_islands(labels, SURFACES, 0.002) is labels
    labels[4:6, 4:6] = ROAD
    assert fold_small_islands(labels, SURFACES, 0.0) is labels
    assert fold_small_islands(labels, (), 0.5) is labels
    assert (fold_small_islands(labels, SURFACES, 0.02)[4:6, 4:6] == FAIRWAY).all()   # 4 px < 8


def test_islands_are_found_on_a_coarse_grid_and_filled_exactly() -> None:
    """Candidates come from every other row and column (cost): a one-pixel island between the grid's
    pixels is not seen while its class is large elsewhere; a region that only looks small near the
    edge of its search box is kept."""
    labels = np.full((60, 60), HAZARD, np.uint8)
    labels[45:60, 40:60] = ROAD                      # 300 px of road: real
    labels[31, 31] = ROAD                            # odd row and column: not on the coarse grid
    labels[10:13, 10:13] = ROAD                      # 9 px: seen and filled
    labels[40:60, 2:4] = FAIRWAY                     # 40 px strip to the bottom edge: >= 36, kept
    out = fold_small_islands(labels, SURFACES, 0.01)  # 36 px minimum
    assert out[31, 31] == ROAD and (out[10:13, 10:13] == HAZARD).all()
    assert (out[40:60, 2:4] == FAIRWAY).all() and (out[45:60, 40:60] == ROAD).all()


def test_a_class_that_is_only_speckle_in_a_frame_is_filled_whole() -> None:
    """Fewer pixels of a class in the whole frame than the minimum: every piece goes, one-pixel
    lines included (what a scorer counting every predicted class would see as IoU 0)."""
    labels = np.full((60, 60), HAZARD, np.uint8)
    labels[:20, :] = BG
    labels[31, 31] = ROAD
    labels[40, 5:30] = ROAD                          # a one-pixel line, 25 px
    out = fold_small_islands(labels, SURFACES, 0.02)  # 72 px minimum, 26 px of road in all
    assert not (out == ROAD).any() and (out[20:, :] == HAZARD).all() and (out[:20] == BG).all()


def test_the_estimator_folds_by_default_and_min_island_fraction_zero_turns_it_off() -> None:
    """What the node's `min_island_fraction` parameter (config/golf_cart.yaml) reaches: the Estimator's
    option, applied in `postprocess` to the labels it outputs."""
    import torch

    from meco_core.inference import Estimator
    from meco_core.inference.estimator import RawOutput

    cfg = {"backbone": "vit_tiny_patch16_224", "channels": 32}
    on = Estimator(model_name="meco", model_config=cfg, class_set="golf")
    off = Estimator(model=on.model, class_set="golf", min_island_fraction=0.0)
    logits = torch.zeros(1, 5, 48, 64)
    logits[0, HAZARD] = 1.0
    logits[0, ROAD, 20:22, 30:32] = 2.0               # 4 of 3072 px at network size: ~0.13 % of the frame
    raw = RawOutput(depth=None, logits=logits, output_size=(48, 64), timings={})
    assert (off.postprocess(raw).labels == ROAD).sum() == 4
    assert (on.postprocess(raw).labels == HAZARD).all()
