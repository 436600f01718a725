"""Reference depth predictors on the real camera + lidar dev frames, scored like `meco eval`.

Why: a model's real-frame depth numbers mean little without the numbers of predictors that
know nothing about the image. Three references, each with the frame's own intrinsics:
- constant: one depth for the whole frame (its median-scaled score is what "structure" must
  beat; the issue's "no better than a constant");
- ground plane: every pixel on a flat ground `--camera-height` m below a level camera
  (horizon at cy), capped at 80 m above the horizon: pure geometry, no learning;
- label pseudo-depth (frames with labels: RELLIS): `meco_core.data.pseudo_depth` from the
  TRUE labels, i.e. the best the pseudo-depth used in training could teach.

    .venv/bin/python tools/depth_references.py data/kitti:test data/rellis:test --json out/depth_refs.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from meco_core.classes import GOLF
from meco_core.data.format import DatasetReader
from meco_core.data.pseudo_depth import GROUND, UPRIGHT, ground_row_depth, pseudo_depth, role_lut
from meco_core.defaults import MAX_DEPTH_M
from meco_core.evaluation.evaluate import json_safe
from meco_core.models.metrics import DepthMetrics

# golf ids of the converted RELLIS labels -> geometric roles
_GOLF_ROLES = role_lut({GOLF.names.index("fairway"): GROUND, GOLF.names.index("hazard"): GROUND,
                        GOLF.names.index("road"): GROUND, GOLF.names.index("obstacle"): UPRIGHT,
                        GOLF.names.index("background"): UPRIGHT})


def references(sample, camera_height: float) -> dict[str, np.ndarray]:
    h, w = sample.rgb.shape[:2]
    fx, fy, cx, cy = sample.intrinsics
    gt = sample.depth_m
    valid = gt > 0
    out = {"constant": np.full((h, w), float(np.median(gt[valid])) if valid.any() else 1.0, np.float32)}
    rows = ground_row_depth(h, fy, cy, camera_height, max_ground_depth=MAX_DEPTH_M)
    out["ground plane"] = np.repeat(np.where(rows > 0, rows, MAX_DEPTH_M)[:, None], w, 1).astype(np.float32)
    if sample.labels is not None:
        pd = pseudo_depth(sample.labels, _GOLF_ROLES, fy, cy, camera_height)
        out["label pseudo-depth"] = np.where(pd > 0, pd, np.nan).astype(np.float32)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+", help="ROOT:SPLIT of meco datasets with lidar depth and intrinsics")
    ap.add_argument("--camera-height", type=float, default=1.5, help="assumed camera height for the geometric references")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for spec in args.sets:
        root, split = spec.rsplit(":", 1)
        reader = DatasetReader(root)
        metrics: dict[str, DepthMetrics] = {}
        for name in reader.names(split):
            s = reader.load(split, name)
            if s.depth_m is None or s.intrinsics is None:
                sys.exit(f"{root}/{split}/{name}: needs depth and intrinsics")
            for ref, pred in references(s, args.camera_height).items():
                # pixels where a reference has no opinion (NaN) are left out of its score
                gt = np.where(np.isfinite(pred), s.depth_m, 0)
                metrics.setdefault(ref, DepthMetrics()).update(np.nan_to_num(pred, nan=1.0), gt)
        results[spec] = {ref: m.compute() for ref, m in metrics.items()}
    print(f"{'set':<18} {'reference':<20} {'AbsRel':>7} {'d1':>6} {'ms AbsRel':>9} {'ms d1':>6} {'pixels':>7}")
    for spec, refs in results.items():
        for ref, m in refs.items():
            print(f"{spec:<18} {ref:<20} {m['abs_rel']:7.3f} {m['d1']:6.3f} {m['ms_abs_rel']:9.3f} {m['ms_d1']:6.3f} "
                  f"{m['pixels']:7d}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(json_safe(results), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
