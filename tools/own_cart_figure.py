"""Picture of the own-cart fine-tune (tools/own_cart_finetune.sh): frames of the held-out drive,
input | the renderer's depth | the shipped model's | the fine-tuned model's, each prediction
through `Estimator.predict` with the frame's intrinsics and its AbsRel in the title.

    .venv/bin/python tools/own_cart_figure.py out/own_cart/my_golf.pt --out docs/own_cart_finetune.png
"""
from __future__ import annotations

import argparse

import numpy as np

from meco_core.data.format import DatasetReader
from meco_core.evaluation.plotting import pyplot, save_figure
from meco_core.inference.estimator import Estimator
from meco_core.models.metrics import DepthMetrics
from meco_core.visualize import colorize_depth


def abs_rel(pred: np.ndarray, gt: np.ndarray) -> float:
    """The frame's AbsRel by the metric code `meco eval` uses."""
    metrics = DepthMetrics()
    metrics.update(np.nan_to_num(pred, nan=0.0), gt)
    return float(metrics.compute()["abs_rel"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("finetuned")
    ap.add_argument("--shipped", default="checkpoints/meco_golf.pt")
    ap.add_argument("--data", default="data/own_cart_render", help="the drive's renders (dense depth), split val")
    ap.add_argument("--frames", type=int, default=3, help="evenly spaced frames of the drive")
    ap.add_argument("--max-depth", type=float, default=60.0)
    ap.add_argument("--out", default="docs/own_cart_finetune.png")
    args = ap.parse_args(argv)
    reader = DatasetReader(args.data)
    names = reader.names("val")
    picks = [names[int(i)] for i in np.linspace(0, len(names) - 1, args.frames + 2)[1:-1]]
    models = {"shipped": Estimator(args.shipped, device="cpu"), "fine-tuned": Estimator(args.finetuned, device="cpu")}
    plt = pyplot()
    fig, axes = plt.subplots(len(picks), 4, figsize=(15, 2.9 * len(picks)), squeeze=False)
    for r, name in enumerate(picks):
        sample = reader.load("val", name)
        gt = np.where(sample.depth_m > 0, sample.depth_m, np.nan).astype(np.float32)
        panels = [(sample.rgb, f"drive 2, {name}"), (colorize_depth(gt, args.max_depth), "depth (renderer)")]
        for label, est in models.items():
            depth = est.predict(sample.rgb, need_labels=False, intrinsics=sample.intrinsics).depth_m
            panels.append((colorize_depth(depth, args.max_depth), f"{label}: AbsRel {abs_rel(depth, sample.depth_m):.3f}"))
        for ax, (img, title) in zip(axes[r], panels):
            ax.imshow(img)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.suptitle("A cart the shipped model never saw: fine-tuned on one drive's lidar, shown on another", fontsize=11)
    print(save_figure(fig, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
