#!/usr/bin/env bash
# Issue 20: every reliability figure in the README's "Reliability" section, one command each,
# run one after another on a quiet machine (nothing else on the cores: they are timings).
#   raw:    meco bench, the golf model at its 240x320, torch and onnxruntime at 1 and 2 threads
#   60 Hz:  meco node-bench, a 640x480 camera at 60 Hz (faster than the model)
#   1080p:  meco node-bench, a 1920x1080 camera at 30 Hz
#   soak:   meco node-soak, 1280x720 at 30 Hz for 10 minutes, every output subscribed
#   faults: meco node-faults, every fault case on the shipped model
# JSON (and PNG, Markdown) under OUT (default out/reliability).
#   tools/reliability_figures.sh [raw|60hz|1080p|soak|faults ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
MECO=${MECO:-.venv/bin/meco}
CKPT=${CKPT:-checkpoints/meco_golf.pt}
OUT=${OUT:-out/reliability}
mkdir -p "$OUT"
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(raw 60hz 1080p soak faults)
status=0
for part in "${parts[@]}"; do
  # a part whose checks fail exits 1: say so and go on with the next (the JSON has the figures)
  set +e
  case "$part" in
    raw)    for t in 1 2; do
              "$MECO" bench --checkpoint "$CKPT" --size 240x320 --backend torch,onnxruntime --threads "$t" \
                --repeats 50 --json "$OUT/raw_threads$t.json"
            done ;;
    60hz)   "$MECO" node-bench --checkpoint "$CKPT" --rate 60 --size 480x640 --json "$OUT/node_bench_60hz.json" ;;
    1080p)  "$MECO" node-bench --checkpoint "$CKPT" --rate 30 --size 1080x1920 --json "$OUT/node_bench_1080p.json" ;;
    soak)   "$MECO" node-soak --checkpoint "$CKPT" --size 720x1280 --rate 30 --duration 600 --out "$OUT/soak_720p" ;;
    faults) "$MECO" node-faults --checkpoint "$CKPT" --out "$OUT/faults" ;;
    *) echo "unknown part: $part (raw|60hz|1080p|soak|faults)" >&2; exit 2 ;;
  esac
  code=$?
  set -e
  [ $code -eq 0 ] || { echo "reliability_figures: $part exited $code (a check failed: see its table)" >&2; status=1; }
done
exit $status
