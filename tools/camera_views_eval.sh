#!/usr/bin/env bash
# A golf checkpoint on the real lidar frames as other mountings and lenses would record them
# (tools/camera_views.py: pitched, rolled, yawed about the camera's centre, or zoomed; exact pixels and
# rotated lidar depth), every
# number from `meco eval` with each view's own intrinsics. Per view: OUT/<group>_<view>/{kitti,rellis}.json;
# the views are made once into VIEWS/<dataset name>/ (default data/views).
#   tools/camera_views_eval.sh CHECKPOINT OUT
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${1:?usage: tools/camera_views_eval.sh CHECKPOINT OUT}
OUT=${2:?usage: tools/camera_views_eval.sh CHECKPOINT OUT}
MECO=${MECO:-.venv/bin/meco}
VIEWS=${VIEWS:-data/views}

for name in kitti rellis; do
  [ -f "data/$name/dataset.yaml" ] || { echo "camera_views_eval: no dataset at data/$name (see tools/real_dev_eval.sh)" >&2; exit 2; }
  [ -f "$VIEWS/$name/zoom_x2.2/dataset.yaml" ] || .venv/bin/python tools/camera_views.py "data/$name" --split test \
    --out "$VIEWS/$name" >/dev/null
done
for view_dir in "$VIEWS"/kitti/*/; do
  view=$(basename "$view_dir")
  mkdir -p "$OUT/$view"
  for name in kitti rellis; do
    "$MECO" eval --checkpoint "$CKPT" --data "$VIEWS/$name/$view" --split test --json "$OUT/$view/$name.json" \
      --no-progress >/dev/null
  done
done

.venv/bin/python tools/condition_table.py "$OUT" kitti rellis
