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


def test_an_island_takes_the_most_common_label_on_its_border_ignoring_void() -> None:
    labels = np.full((40, 40), FAIRWAY, np.uint8)
    labels[:, :20] = BG
    labels[18:21, 19:22] = HAZARD                    # 9 px straddling background (3 border px) and fairway (9)
    labels[0:2, 38:40] = 255                         # void elsewhere is never a vote
    out = fold_small_islands(labels, SURFACES, 0.01)  # 16 px minimum
    assert set(np.unique(out[18:21, 19:22])) == {FAIRWAY}   # the island is relabelled as one piece
    assert (out[0:2, 38:40] == 255).all()


def test_islands_surrounded_by_void_or_at_the_image_edge() -> None:
    labels = np.full((30, 30), 255, np.uint8)
    labels[10:12, 10:12] = ROAD                      # only void around it: stays
    labels[0:2, 0:2] = HAZARD                        # corner island with fairway beside it
    labels[0:5, 2:6] = FAIRWAY
    out = fold_small_islands(labels, SURFACES, 0.01)  # 9 px minimum
    assert (out[10:12, 10:12] == ROAD).all()
    assert (out[0:2, 0:2] == FAIRWAY).all()


def test_nothing_to_fold_returns_the_same_array_and_zero_turns_it_off() -> None:
    labels = np.full((20, 20), FAIRWAY, np.uint8)
    assert fold_small_islands(labels, SURFACES, 0.002) is labels
    labels[5, 5] = ROAD
    assert fold_small_islands(labels, SURFACES, 0.0) is labels
    assert fold_small_islands(labels, (), 0.5) is labels
    assert fold_small_islands(labels, SURFACES, 0.01)[5, 5] == FAIRWAY
