"""Which class the model calls each ground-truth class: the confusion matrix as text and a PNG.

Why: a per-class IoU says a class is weak, not what it is mistaken for; on real ground the
answer decides what to fix (grass called background is a labelling question, grass called
hazard a texture one). `SegmentationMetrics` already counts the matrix (rows: ground truth,
columns: prediction, pixels); `meco eval` and `meco replay-eval` put it in their JSON and
draw it with `save_confusion`.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

from .plotting import pyplot, save_figure


def row_shares(confusion: Sequence[Sequence[int]]) -> np.ndarray:
    """Each ground-truth row as percent of its pixels (NaN rows: a class the frames do not hold)."""
    cm = np.asarray(confusion, np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {cm.shape}")
    totals = cm.sum(axis=1, keepdims=True)
    return np.where(totals > 0, cm / np.maximum(totals, 1) * 100.0, np.nan)


def top_confusions(confusion: Sequence[Sequence[int]], names: Sequence[str], n: int = 3,
                   min_share: float = 1.0) -> list[tuple[str, str, float, float]]:
    """The `n` largest off-diagonal cells as (true class, called, percent of that class's pixels,
    percent of all labelled pixels), largest share of all pixels first; cells under
    `min_share` percent of the class are left out."""
    cm = np.asarray(confusion, np.float64)
    shares, total = row_shares(cm), cm.sum()
    cells = [(cm[i, j], i, j) for i in range(len(cm)) for j in range(len(cm))
             if i != j and cm[i, j] > 0 and shares[i, j] >= min_share]
    cells.sort(reverse=True)
    return [(str(names[i]), str(names[j]), float(shares[i, j]), float(c / total * 100.0)) for c, i, j in cells[:n]]


def save_confusion(confusion: Sequence[Sequence[int]], names: Sequence[str], path: str | Path,
                   title: str = "") -> Path:
    """PNG heat map: rows ground truth, columns prediction, each row in percent of its pixels
    (printed in the cells); classes the frames do not hold are a grey row."""
    plt = pyplot()
    shares = row_shares(confusion)
    k = len(names)
    if shares.shape != (k, k):
        raise ValueError(f"{k} class names for a {shares.shape[0]}x{shares.shape[1]} confusion matrix")
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * k, 1.0 + 0.65 * k))
    cmap = plt.get_cmap("Blues").copy()
    cmap.set_bad("#dddddd")
    ax.imshow(np.ma.masked_invalid(shares), cmap=cmap, vmin=0, vmax=100)
    for i in range(k):
        for j in range(k):
            if np.isfinite(shares[i, j]):
                ax.text(j, i, f"{shares[i, j]:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 60 else "black")
    ax.set_xticks(range(k), [str(n) for n in names], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), [str(n) for n in names], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    caption = f"{title}: % of each ground-truth class's pixels" if title else "% of each ground-truth class's pixels"
    ax.set_title("\n".join(textwrap.wrap(caption, 12 + 9 * k)), fontsize=8)
    return save_figure(fig, path)
