"""Fold speckle of the ground-surface classes into the ground around it.

Why: a few dozen pixels of "road" inside a dirt trail are not a paved path, yet a scorer that
averages every class predicted or labelled counts such a class at IoU 0 on a set that holds none
of it (231 of 24.8 M pixels turned YCOR's 75.7 over its classes into 60.6 over all five, session
22), and a planner gets a stripe of the wrong surface. Surfaces are large contiguous regions, so a
connected island of one surface smaller than `min_fraction` of the frame takes the label most
common on its outer border. Only the listed classes are folded (defaults.ISLAND_CLASSES: fairway,
hazard, road for the golf set); obstacles and background never are. One function, called by the
Estimator (node, Python API) and `meco eval`, so replay and offline scores stay equal.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from meco_core.classes import ClassSet
from meco_core.defaults import ISLAND_CLASSES

_RING = np.ones((3, 3), np.uint8)


def island_class_ids(class_set: ClassSet) -> tuple[int, ...]:
    """Ids of `class_set`'s ground surfaces that get folded (none for class sets not listed)."""
    names = ISLAND_CLASSES.get(class_set.name, ())
    return tuple(class_set.names.index(n) for n in names if n in class_set.names)


def fold_small_islands(labels: np.ndarray, class_ids: Sequence[int], min_fraction: float,
                       ignore_index: int = 255) -> np.ndarray:
    """(H, W) uint8 labels with islands of `class_ids` under min_fraction * H * W pixels relabelled
    to the most common label on their outer border (ignore_index not counted; an island with no
    labelled border stays). Returns a new array when anything changed, else `labels` itself."""
    min_pixels = int(min_fraction * labels.shape[0] * labels.shape[1])
    if min_pixels < 2 or not len(class_ids):
        return labels
    out = labels
    h, w = labels.shape
    for c in class_ids:
        mask = (out == c).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        small = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] < min_pixels]
        for i in small:
            x, y, bw, bh = stats[i, :4]
            x0, y0, x1, y1 = max(x - 1, 0), max(y - 1, 0), min(x + bw + 1, w), min(y + bh + 1, h)
            island = comp[y0:y1, x0:x1] == i
            ring = cv2.dilate(island.astype(np.uint8), _RING).astype(bool) & ~island
            around = out[y0:y1, x0:x1][ring]
            around = around[(around != ignore_index) & (around != c)]
            if around.size == 0:
                continue
            if out is labels:
                out = labels.copy()
            out[y0:y1, x0:x1][island] = np.bincount(around).argmax()
    return out
