#!/usr/bin/env bash
# Which backbone serves MECO best at equal training time (issue 9)?
# Three short CamVid runs of config/train/meco_camvid.yaml that differ only in the backbone,
# each given about the same wall time on 2 cores (steps set from measured s/step), all
# scored at the end on the full CamVid val split. Rule fixed before running: the highest
# val mIoU wins. Results: runs/backbone_study/<name>/summary.json and a printed table.
set -euo pipefail
cd "$(dirname "$0")/.."
MECO=${MECO:-.venv/bin/meco}
OUT=${OUT:-runs/backbone_study}
COMMON=(--config config/train/meco_camvid.yaml --set model.config.backbone=tf_efficientnet_lite0 --set run.val_every=0 --set optim.warmup_steps=30 --no-progress)

run() {  # name steps overrides...
  local name=$1 steps=$2; shift 2
  if [ -f "$OUT/$name/summary.json" ]; then echo "$name: done already"; return; fi
  local resume=(); [ -f "$OUT/$name/last.pt" ] && resume=(--resume)
  "$MECO" train "${COMMON[@]}" "${resume[@]}" --steps "$steps" --out "$OUT/$name" "$@" \
    --json "$OUT/$name/summary.json.tmp" > "$OUT.$name.log" 2>&1
  mv "$OUT/$name/summary.json.tmp" "$OUT/$name/summary.json"
}
mkdir -p "$OUT"
# ~6 minutes of training each: 2.0 / 2.2 / 1.75 s per step measured at batch 8, 240x320.
run cnn_lite0_imagenet 180
run hybrid_vit_tiny_over_lite0_imagenet 165 --set model.config.backbone=vit_tiny_patch16_224 \
  --set model.config.hybrid_stem=tf_efficientnet_lite0
run vit_tiny_r_s16_scratch 210 --set model.config.backbone=vit_tiny_r_s16_p8_224 \
  --set model.config.backbone_weights=null --set 'model.config.backbone_kwargs={patch_size: 4}'
"$(dirname "$MECO")/python" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
print(f"{'run':40s} {'steps':>5s} {'s/step':>6s} {'mIoU':>6s} {'AbsRel':>7s} {'d1':>6s}")
for p in sorted(Path(sys.argv[1]).glob("*/summary.json")):
    s = json.loads(p.read_text())
    v = s.get("val", {})
    print(f"{p.parent.name:40s} {s['step']:5d} {s['sec_per_step']:6.2f} {v.get('miou', float('nan')):6.2f} "
          f"{v.get('abs_rel', float('nan')):7.4f} {v.get('d1', float('nan')):6.3f}")
PY
