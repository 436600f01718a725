"""Fold speckle of the ground-surface classes into the ground around it.

Why: a few dozen pixels of "road" inside a dirt trail are not a paved path, yet a scorer that
averages every class predicted or labelled counts such a class at IoU 0 on a set that holds none
of it (231 of 24.8 M pixels turned YCOR's 75.7 over its classes into 60.6 over all five, session
22), and a planner gets a stripe of the wrong surface. Surfaces are large contiguous regions, so a
connected island of one surface smaller than `min_fraction` of the frame is filled from the ground
around it (each pixel takes the label of the nearest pixel around the island). Only the listed
classes are folded (defaults.ISLAND_CLASSES: fairway, hazard, road for the golf set); obstacles and
background never are. One function, called by the Estimator (node, Python API) and `meco eval`, so
replay and offline scores stay equal.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from meco_core.classes import ClassSet
from meco_core.defaults import ISLAND_CLASSES


def island_class_ids(class_set: ClassSet) -> tuple[int, ...]:
    """Ids of `class_set`'s ground surfaces that get folded (none for class sets not listed)."""
    names = ISLAND_CLASSES.get(class_set.name, ())
    return tuple(class_set.names.index(n) for n in names if n in class_set.names)


def fold_small_islands(labels: np.ndarray, class_ids: Sequence[int], min_fraction: float,
                       ignore_index: int = 255) -> np.ndarray:
    """(H, W) uint8 labels with islands of `class_ids` under min_fraction * H * W pixels relabelled:
    each of their pixels takes the label of the nearest pixel around the island (`ignore_index` is
    never a source; an island with no labelled pixel around it stays). Returns a new array when
    anything changed, else `labels` itself.

    Cost (the node runs this on every frame, ~1 ms at 640x480): a class with fewer pixels in the
    frame than the minimum is speckle everywhere and is filled whole. Otherwise candidates are found
    on every other row and column (a quarter of the pixels), then each is checked and filled at full
    resolution in its own box, where only components that do not touch the box's edge count as
    islands; an island too thin to leave a pixel on that grid (a one-pixel line) is not seen."""
    min_pixels = int(min_fraction * labels.shape[0] * labels.shape[1])
    if min_pixels < 2 or not len(class_ids):
        return labels
    coarse = np.ascontiguousarray(labels[::2, ::2])
    out = labels
    h, w = labels.shape
    for c in class_ids:
        mask = out == c
        total = int(np.count_nonzero(mask))
        if total == 0:
            continue
        if total < min_pixels:  # the class is only speckle in this frame: every piece of it is an island
            rows, cols = np.nonzero(mask)
            box_at = (max(int(rows.min()) - 1, 0), min(int(rows.max()) + 2, h),
                      max(int(cols.min()) - 1, 0), min(int(cols.max()) + 2, w))
            out = _fill(labels, out, mask[box_at[0]:box_at[1], box_at[2]:box_at[3]], box_at, ignore_index)
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats((coarse == c).astype(np.uint8), connectivity=8)
        for i in np.flatnonzero(stats[1:n, cv2.CC_STAT_AREA] * 4 < min_pixels * 2) + 1:  # generous: fine area decides
            x, y, bw, bh = stats[i, :4] * 2
            y0, y1, x0, x1 = max(y - 3, 0), min(y + bh + 3, h), max(x - 3, 0), min(x + bw + 3, w)
            out = _fold_box(labels, out, c, (y0, y1, x0, x1), min_pixels, ignore_index)
    return out


def _fold_box(labels: np.ndarray, out: np.ndarray, c: int, box_at: tuple[int, int, int, int], min_pixels: int,
              ignore_index: int) -> np.ndarray:
    """Fill, inside one box, every component of class `c` that is small and clear of the box's edge."""
    y0, y1, x0, x1 = box_at
    box = out[y0:y1, x0:x1]
    n, comp, stats, _ = cv2.connectedComponentsWithStats((box == c).astype(np.uint8), connectivity=8)
    h, w = labels.shape
    bh, bw = box.shape
    for i in range(1, n):
        x, y, cw, ch, area = stats[i]
        # a side of the box that is not the image's edge cuts through a region that goes on beyond it
        cut = ((x == 0 and x0 > 0) or (y == 0 and y0 > 0) or (x + cw == bw and x1 < w) or (y + ch == bh and y1 < h))
        if area < min_pixels and not cut:
            out = _fill(labels, out, comp == i, box_at, ignore_index)
    return out


def _fill(labels: np.ndarray, out: np.ndarray, island: np.ndarray, box_at: tuple[int, int, int, int],
          ignore_index: int) -> np.ndarray:
    """Give the `island` pixels of one box the label of the nearest other labelled pixel in the box."""
    y0, y1, x0, x1 = box_at
    box = out[y0:y1, x0:x1]
    not_source = island | (box == ignore_index)
    sources = np.flatnonzero(~not_source.ravel())
    if sources.size == 0:
        return out
    _, nearest = cv2.distanceTransformWithLabels(not_source.astype(np.uint8), cv2.DIST_L2, 3,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    if out is labels:
        out = labels.copy()
        box = out[y0:y1, x0:x1]
    box[island] = box.ravel()[sources[nearest[island] - 1]]  # sources are numbered in raster order
    return out

