#!/usr/bin/env bash
# Issue 19: a golf checkpoint on the real development frames, every number from `meco eval`.
#   depth (metric + median-scaled, each frame's own intrinsics): KITTI (3 frames, Velodyne),
#     RELLIS-3D (1 frame, Ouster);
#   golf classes: the held-out YCOR block (ids 1000-1149, never trained on), CamVid val
#     (streets), RELLIS (1 frame); synthetic test seed 3 (depth + classes, regression check);
#   KITTI's unlabelled street frames: the share of each predicted class (paved ground should be road);
#   KITTI centre-cropped to 22-75 degree HFOV (tools/hfov_crops.py): depth through longer lenses.
# Converts the shared data into data/ first where missing. JSONs and picture grids go to
# OUT (default out/real_dev/<checkpoint name>); a summary table is printed at the end.
#   tools/real_dev_eval.sh checkpoints/meco_golf.pt
# SYNTH (default data/synth_golf) names the synthetic root whose test split (seed 3) is scored;
# SYNTH_ARGS are extra `meco data synth` arguments when it must be made (e.g. "--rough fairway").
# YCOR (default data/ycor) names the YCOR root whose val split is scored as ycor_val (e.g.
# data/ycor_every2: the block's frames a model trained on every other one of them never saw).
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${1:?usage: tools/real_dev_eval.sh CHECKPOINT}
MECO=${MECO:-.venv/bin/meco}
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-out/real_dev/$(basename "${CKPT%.*}")}
SYNTH=${SYNTH:-data/synth_golf}
YCOR=${YCOR:-data/ycor}
HFOVS="22 30 38 45 55 65 75"  # 22: a portrait crop (281x375), as a portrait camera
mkdir -p "$OUT"

[ -f data/kitti/dataset.yaml ] || "$MECO" data kitti --root "$SHARED/kitti_object_sample" --out data/kitti
[ -f data/rellis/dataset.yaml ] || "$MECO" data rellis --root "$SHARED/rellis3d_example" --out data/rellis
[ -f data/ycor/dataset.yaml ] || "$MECO" data ycor --root "$SHARED/ycor" --out data/ycor
[ -f "$YCOR/dataset.yaml" ] || { echo "real_dev_eval: no dataset at YCOR=$YCOR (make it with meco data ycor)" >&2; exit 2; }
[ -f data/camvid/dataset.yaml ] || "$MECO" data camvid --root "$SHARED/camvid" --out data/camvid
for h in $HFOVS; do
  [ -f "data/kitti_hfov/hfov$h/dataset.yaml" ] || .venv/bin/python tools/hfov_crops.py data/kitti --split test --hfov "$h" --out data/kitti_hfov
done
[ -d "$SYNTH/test" ] || "$MECO" data synth --out "$SYNTH" --n 300 --seed 3 --split test ${SYNTH_ARGS:-}
# The regression set is one 75-degree camera (the command above). A test split made with --hfov random
# (per-frame cameras) scores ~0.015 AbsRel worse for every model (session 26: v15 0.095 -> 0.111); refuse it.
.venv/bin/python - "$SYNTH" <<'PY'
import sys, yaml
from pathlib import Path
from meco_core.camera import default_intrinsics
from meco_core.data.synth.common import DEFAULT_HFOV_DEG
root = Path(sys.argv[1])
intr = (yaml.safe_load((root / "dataset.yaml").read_text()) or {}).get("intrinsics") or {}
one_camera = bool(intr) and abs(intr["fx"] - default_intrinsics(intr["height"], intr["width"], DEFAULT_HFOV_DEG)[0]) < 1e-3
if (root / "test" / "camera").is_dir() or not one_camera:
    sys.exit(f"real_dev_eval: {root}/test is not the synthetic regression set (seed 3, one {DEFAULT_HFOV_DEG:g}-degree "
             f"camera); remake it: rm -rf {root}/test && meco data synth --out {root} --n 300 --seed 3 --split test")
PY

run() {  # name data split [extra meco eval args]
  local name=$1 data=$2 split=$3; shift 3
  "$MECO" eval --checkpoint "$CKPT" --data "$data" --split "$split" --json "$OUT/$name.json" \
    --out "$OUT/$name" --samples 4 --no-progress "$@"
}
run kitti data/kitti test
run rellis data/rellis test
run ycor_val "$YCOR" val
run camvid_val data/camvid val
run synth_test "$SYNTH" test
for h in $HFOVS; do
  "$MECO" eval --checkpoint "$CKPT" --data "data/kitti_hfov/hfov$h" --split test --json "$OUT/kitti_hfov$h.json" --no-progress >/dev/null
done
# KITTI has no labels: how much of its paved streets the model calls each class (paved = road)
.venv/bin/python tools/class_shares.py "$CKPT" --data data/kitti --split test --json "$OUT/kitti_class_shares.json" >/dev/null

.venv/bin/python - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print(f"\n{'set':<12} {'AbsRel':>7} {'d1':>6} {'ms AbsRel':>9} {'ms d1':>6} {'mIoU':>6} {'GT cls':>6} {'fairway':>8} {'hazard':>7} {'road':>6}")
names = ["kitti", "rellis", "ycor_val", "camvid_val", "synth_test"]
names += sorted(p.stem for p in out.glob("kitti_hfov*.json"))
for name in names:
    m = json.loads((out / f"{name}.json").read_text())
    iou = dict(zip(m.get("class_names") or [], m.get("iou_per_class") or []))
    f = lambda v, w=6, p=3: f"{v:{w}.{p}f}" if isinstance(v, (int, float)) else f"{'-':>{w}}"
    print(f"{name:<12} {f(m.get('abs_rel'), 7)} {f(m.get('d1'))} {f(m.get('ms_abs_rel'), 9)} {f(m.get('ms_d1'))} "
          f"{f(m.get('miou') if m.get('seg_pixels') else None, 6, 1)} {f(m.get('miou_gt') if m.get('seg_pixels') else None, 6, 1)} "
          f"{f(iou.get('fairway'), 8, 1)} "
          f"{f(iou.get('hazard'), 7, 1)} {f(iou.get('road'), 6, 1)}")
shares = next(iter(json.loads((out / "kitti_class_shares.json").read_text()).values()))
print("KITTI streets (no labels), % of each frame called hazard: "
      + " / ".join(f"{frame['hazard']:.1f}" for frame in shares.values()))
EOF
