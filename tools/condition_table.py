"""A table of `meco eval` JSONs laid out as OUT/<condition>/<set>.json, one row per condition.

Why: tools/camera_shift_eval.sh (other cameras' looks) and tools/camera_views_eval.sh (other
mountings and lenses) score the same real dev sets under many conditions; one printer keeps their
tables alike. Per set: depth as metric AbsRel / median-scaled AbsRel / median scale (gt / pred)
where the set has depth, golf classes as miou_gt / fairway IoU where it has labels.

    .venv/bin/python tools/condition_table.py out/views/v18 kitti rellis
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def cells(m: dict) -> list[str]:
    out = []
    if m.get("depth_pixels"):
        out.append(f"{m['abs_rel']:.3f} / {m['ms_abs_rel']:.3f} / {m['ms_scale_median']:.2f}")
    if m.get("seg_pixels"):
        fairway = dict(zip(m["class_names"], m["iou_per_class"]))["fairway"]
        out.append(f"{m['miou_gt']:.1f} / {fairway:.1f}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        raise SystemExit("usage: condition_table.py OUT SET [SET ...]")
    out, sets = Path(argv[0]), argv[1:]
    conditions = sorted(d.name for d in out.iterdir() if d.is_dir())
    if not conditions:
        raise SystemExit(f"{out}: no condition directories")
    first = {s: json.loads((out / conditions[0] / f"{s}.json").read_text()) for s in sets}
    heads = [f"{s} {kind}" for s in sets for kind in
             (["AbsRel / ms / scale"] if first[s].get("depth_pixels") else [])
             + (["miou_gt / fairway"] if first[s].get("seg_pixels") else [])]
    width = max(len(c) for c in conditions + ["condition"])
    print(f"{'condition':<{width}}  " + "  ".join(f"{h:>26}" for h in heads))
    for cond in conditions:
        row = [c for s in sets for c in cells(json.loads((out / cond / f"{s}.json").read_text()))]
        print(f"{cond:<{width}}  " + "  ".join(f"{c:>26}" for c in row))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
