#!/usr/bin/env bash
# A golf checkpoint on the real dev frames as other cameras would record them: the clean frames and
# the 9 looks of tools/camera_shift.py (white balance, tone curve, blur, noise, JPEG, vignetting),
# every number from `meco eval`. Per condition: OUT/<condition>/{ycor_val,kitti,rellis}.json; the
# shifted frames are made once into SHIFTED/<dataset name>/<condition> (default data/shift).
#   tools/camera_shift_eval.sh CHECKPOINT OUT
# YCOR (default data/ycor_every2) is the YCOR root whose val split is scored: the 24 block frames
# that a model trained on the block's other 24 (v15a, v16a) never saw.
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${1:?usage: tools/camera_shift_eval.sh CHECKPOINT OUT}
OUT=${2:?usage: tools/camera_shift_eval.sh CHECKPOINT OUT}
MECO=${MECO:-.venv/bin/meco}
YCOR=${YCOR:-data/ycor_every2}
SHIFTED=${SHIFTED:-data/shift}
SHIFTS=$(.venv/bin/python tools/camera_shift.py --list)

for pair in "ycor_val:$YCOR:val" "kitti:data/kitti:test" "rellis:data/rellis:test"; do
  IFS=: read -r name root split <<<"$pair"
  [ -f "$root/dataset.yaml" ] || { echo "camera_shift_eval: no dataset at $root (see tools/real_dev_eval.sh)" >&2; exit 2; }
  [ -f "$SHIFTED/$(basename "$root")/vignette/dataset.yaml" ] || .venv/bin/python tools/camera_shift.py "$root" \
    --split "$split" --out "$SHIFTED/$(basename "$root")" >/dev/null
done

for cond in clean $SHIFTS; do
  mkdir -p "$OUT/$cond"
  for pair in "ycor_val:$YCOR:val" "kitti:data/kitti:test" "rellis:data/rellis:test"; do
    IFS=: read -r name root split <<<"$pair"
    data=$root; [ "$cond" = clean ] || data=$SHIFTED/$(basename "$root")/$cond
    "$MECO" eval --checkpoint "$CKPT" --data "$data" --split "$split" --json "$OUT/$cond/$name.json" --no-progress >/dev/null
  done
done

.venv/bin/python tools/condition_table.py "$OUT" ycor_val kitti rellis
