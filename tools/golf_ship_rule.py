"""The shipping rule of config/train/meco_golf_v3.yaml / _v4.yaml, applied to tools/real_dev_eval.sh outputs.

    .venv/bin/python tools/golf_ship_rule.py out/real_dev/shipped_v2 out/real_dev/meco_golf_v3 out/real_dev/meco_golf_v4

The first directory is the shipped model; each other one is a candidate. A candidate passes
if it gains >= 2 mIoU points on the held-out YCOR block OR lowers the real dev depth score
(mean of metric and median-scaled AbsRel over KITTI and RELLIS) by >= 0.02, loses neither by
more than 1 point / 0.01, and scores synthetic-test AbsRel <= 0.118. Of several passing, the
lowest depth score ships unless its YCOR mIoU is more than 1 point below another passing one's.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def scores(run: Path) -> dict[str, float]:
    m = {name: json.loads((run / f"{name}.json").read_text()) for name in ("kitti", "rellis", "ycor_val", "synth_test")}
    depth = sum(m[s]["abs_rel"] + m[s]["ms_abs_rel"] for s in ("kitti", "rellis")) / 4
    return {"depth": depth, "ycor_miou": m["ycor_val"]["miou"], "synth_abs_rel": m["synth_test"]["abs_rel"]}


def passes(c: dict[str, float], base: dict[str, float]) -> bool:
    gain = c["ycor_miou"] - base["ycor_miou"] >= 2.0 or base["depth"] - c["depth"] >= 0.02
    no_loss = c["ycor_miou"] >= base["ycor_miou"] - 1.0 and c["depth"] <= base["depth"] + 0.01
    return gain and no_loss and c["synth_abs_rel"] <= 0.118


def main(argv: list[str]) -> int:
    base_dir, *cand_dirs = [Path(a) for a in argv]
    base = scores(base_dir)
    candidates = [(d.name, scores(d)) for d in cand_dirs]
    rows = [(base_dir.name, base, None)] + [(name, s, passes(s, base)) for name, s in candidates]
    print(f"{'model':<20} {'depth score':>11} {'YCOR mIoU':>9} {'synth AbsRel':>12}  rule")
    for name, s, ok in rows:
        verdict = "shipped" if ok is None else ("passes" if ok else "fails")
        print(f"{name:<20} {s['depth']:>11.4f} {s['ycor_miou']:>9.2f} {s['synth_abs_rel']:>12.4f}  {verdict}")
    passing = [(n, s) for n, s, ok in rows if ok]
    if not passing:
        print("ships: the current model (no candidate passes)")
        return 0
    best = min(passing, key=lambda r: r[1]["depth"])
    better_seg = [r for r in passing if r[1]["ycor_miou"] > best[1]["ycor_miou"] + 1.0]
    winner = max(better_seg, key=lambda r: r[1]["ycor_miou"]) if better_seg else best
    print(f"ships: {winner[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
