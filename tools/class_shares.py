"""Share of each predicted class per frame, for checkpoints side by side, on frames WITHOUT
labels: e.g. how much of KITTI's paved streets a golf model calls hazard (issue 19 follow-up:
paved ground should be road).

    .venv/bin/python tools/class_shares.py data/meco_golf_v3.pt checkpoints/meco_golf.pt --data data/kitti --split test
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from meco_core.data.format import DatasetReader
from meco_core.inference.estimator import Estimator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True, help="a meco-dataset/1 directory")
    ap.add_argument("--split", default="test")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write {checkpoint: {frame: {class: percent}}} here")
    args = ap.parse_args()
    reader = DatasetReader(args.data)
    names = reader.names(args.split)
    shares: dict[str, dict[str, dict[str, float]]] = {}
    for ckpt in args.checkpoints:
        est = Estimator(ckpt, threads=args.threads)
        classes = est.class_set.names
        print(f"\n{ckpt}: % of pixels per predicted class")
        print(f"{'frame':<16}" + "".join(f"{c:>12}" for c in classes))
        for name in names:
            labels = est.predict(reader.load(args.split, name).rgb, need_depth=False).labels
            share = np.bincount(labels.ravel(), minlength=len(classes))[: len(classes)] / labels.size * 100
            print(f"{name:<16}" + "".join(f"{s:>12.1f}" for s in share))
            shares.setdefault(ckpt, {})[name] = {c: float(v) for c, v in zip(classes, share)}
    if args.json:
        Path(args.json).write_text(json.dumps(shares, indent=1))


if __name__ == "__main__":
    main()
