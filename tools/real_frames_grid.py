"""Picture grid of a checkpoint on real frames, through `Estimator.predict(rgb, intrinsics=...)`:
input | predicted depth (lidar ground truth as dots where there is some) | predicted classes.

The path a user's script or the node takes, not `meco eval`'s: each row also prints the
frame's AbsRel and median-scaled AbsRel from this path, which must agree with `meco eval`.

    .venv/bin/python tools/real_frames_grid.py checkpoints/meco_golf.pt --out docs/real_frames.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from meco_core.data.format import DatasetReader
from meco_core.evaluation.plotting import pyplot, save_figure
from meco_core.inference.estimator import Estimator
from meco_core.models.metrics import DepthMetrics

DEFAULT_FRAMES = ("data/kitti:test:000001", "data/kitti:test:000002", "data/rellis:test:*",
                  "data/ycor:val:1061", "data/ycor:val:1121", "data/camvid:val:0016E5_07959")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--frames", nargs="+", default=list(DEFAULT_FRAMES), help="ROOT:SPLIT:NAME (NAME * = first)")
    ap.add_argument("--out", default="docs/real_frames.png")
    ap.add_argument("--max-depth", type=float, default=60.0, help="top of the depth colour scale, m")
    args = ap.parse_args(argv)
    est = Estimator(args.checkpoint, device="cpu")
    plt = pyplot()
    rows = [f.split(":") for f in args.frames]
    fig, axes = plt.subplots(len(rows), 3, figsize=(13, 2.9 * len(rows)), squeeze=False)
    for r, (root, split, name) in enumerate(rows):
        reader = DatasetReader(root)
        if name == "*":
            name = reader.names(split)[0]
        elif name not in reader.names(split):
            raise SystemExit(f"{root}: no frame {name!r} in split {split!r}")
        s = reader.load(split, name)
        pred = est.predict(s.rgb, intrinsics=s.intrinsics)
        title = f"{Path(root).name}/{name} ({'own intrinsics' if s.intrinsics else 'default camera'})"
        if s.depth_m is not None and (s.depth_m > 0).any():
            m = DepthMetrics()
            m.update(np.nan_to_num(pred.depth_m, nan=0.0), s.depth_m)
            res = m.compute()
            title += f": AbsRel {res['abs_rel']:.2f}, median-scaled {res['ms_abs_rel']:.2f}"
            print(f"{root}:{split}:{name}: AbsRel {res['abs_rel']:.3f}, median-scaled AbsRel {res['ms_abs_rel']:.3f}")
        axes[r][0].imshow(s.rgb)
        axes[r][0].set_title(title, fontsize=8, loc="left")
        axes[r][1].imshow(np.ma.masked_invalid(pred.depth_m), cmap="turbo_r", vmin=0, vmax=args.max_depth)
        if s.depth_m is not None and (s.depth_m > 0).any():
            v, u = np.nonzero(s.depth_m > 0)
            step = max(1, len(v) // 3000)
            axes[r][1].scatter(u[::step], v[::step], c=s.depth_m[v, u][::step], cmap="turbo_r", vmin=0,
                               vmax=args.max_depth, s=1.5, edgecolors="none")
        axes[r][1].set_title(f"depth 0-{args.max_depth:g} m (dots: lidar)", fontsize=8)
        axes[r][2].imshow(est.class_set.colorize(pred.labels))
        axes[r][2].set_title("classes: " + ", ".join(est.class_set.names), fontsize=8)
        for ax in axes[r]:
            ax.axis("off")
    print(f"wrote {save_figure(fig, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
