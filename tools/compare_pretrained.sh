#!/usr/bin/env bash
# Issue 9, item 5: the same-budget comparison on the pretrained EfficientNet-Lite0 backbone.
# meco, mlore, taskexpert and the single-task pair, seeds 1 and 2, each run 330 steps of
# config/train/meco_camvid.yaml pinned to Lite0, the backbone these runs were made on (the
# shipped CamVid model moved to Lite2 afterwards); ~15 min at ~2.7 s/step on 2 cores, mlore's
# training form is slower per step. Extra arguments go to `meco compare` and win over these
# (tools/ablate_meco.sh passes --models meco, --seeds and a knob's --set). Final weights scored on all of CamVid val and the synthetic test
# seed (depth). ~2.5 hours in all: resumable (re-run the script; finished runs are reused,
# an interrupted one continues from its last.pt). Results: runs/compare_pretrained/compare.{md,json,png}.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${MECO:-.venv/bin/meco}" compare --config config/train/meco_camvid.yaml \
  --models meco,mlore,taskexpert,single_depth,single_segmentation --seeds 1,2 --steps 330 \
  --set model.config.backbone=tf_efficientnet_lite0 \
  --set optim.warmup_steps=30 --set run.val_every=0 --set run.ckpt_every=50 \
  --eval data/camvid:val --eval data/synth_golf:test:depth \
  --size 360x480 --out "${OUT:-runs/compare_pretrained}" --no-progress "$@"
