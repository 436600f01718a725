#!/usr/bin/env bash
# The own-cart path measured end to end (README "Fine-tune on your own cart"): a cart the shipped
# model never saw records two drives as bags (camera + 32-beam lidar + camera_info + /tf_static),
# `meco data from-bag` turns them into datasets (lidar depth, no labels), the committed recipe
# config/train/meco_golf_finetune.yaml fine-tunes the shipped model on the first drive, and the
# second drive judges it against the shipped model. The cart is rendered (nothing else with a
# lidar exists here): a 55-degree lens at 640x480 among near scenery (things 3-30 m beside the
# path), where the shipped model trained on 45-90 degree 240x320 renders mostly without it.
# What it shows is that the path works and what it is worth on that cart; real ground needs real
# recordings. Also scored: the shipped model's own sets (synthetic test, the real dev frames), for
# what a depth-only fine-tune costs them.
#   tools/own_cart_finetune.sh            (about 25 min on 2 cores; OUT=out/own_cart)
#   REPLAY=real tools/own_cart_finetune.sh   (OUT=out/own_cart_real): the recipe with the template's
#       commented real replay sources switched on (YCOR and CamVid, as the shipped model trained on)
# Rule for the template's default, fixed before the REPLAY=real run (session 23, after the synthetic-
# only run read drive 2 lidar AbsRel 0.258 -> 0.172 but KITTI 0.210 -> 0.265, RELLIS 0.243 -> 0.330,
# YCOR block 82.2 -> 70.3, CamVid 83.1 -> 81.4): real replay becomes the default if it keeps at least
# 75 % of the drive-2 lidar AbsRel gain and wins back at least half of the loss on each of KITTI
# AbsRel, RELLIS AbsRel and the YCOR block; otherwise the default stays synthetic-only and the
# template says what it costs.
set -euo pipefail
cd "$(dirname "$0")/.."
MECO=${MECO:-.venv/bin/meco}
REPLAY=${REPLAY:-synthetic}
case $REPLAY in
  synthetic) OUT=${OUT:-out/own_cart}; run=runs/own_cart_finetune; replay=() ;;
  real) OUT=${OUT:-out/own_cart_real}; run=runs/own_cart_finetune_real
    replay=(--set "data.train.2={root: data/ycor_all, split: train, weight: 0.3, scale_range: [0.8, 1.5], scale_from: input}"
            --set "data.train.3={root: data/camvid_geo, split: train, weight: 0.3, scale_range: [0.8, 1.5], scale_from: input, squeeze_range: [0.4, 1.0], squeeze_prob: 0.5, road_relight: 0.5}") ;;
  *) echo "REPLAY must be synthetic or real" >&2; exit 2 ;;
esac
STEPS=${STEPS:-600}
SHIPPED=checkpoints/meco_golf.pt
mkdir -p "$OUT"

render=data/own_cart_render
if [ ! -f "$render/dataset.yaml" ]; then
  "$MECO" data synth --out "$render" --n 400 --seed 41 --split train --size 480x640 --hfov 55 --near
  "$MECO" data synth --out "$render" --n 150 --seed 42 --split val --size 480x640 --hfov 55 --near
fi
cart=data/own_cart
if [ ! -f "$cart/dataset.yaml" ]; then
  for split in train val; do
    "$MECO" data make-bag --data "$render" --split "$split" --out "$OUT/drive_$split" --storage mcap --lidar \
      --lidar-rings 32 --overwrite
    "$MECO" data from-bag --bag "$OUT/drive_$split" --out "$cart" --split "$split"
  done
fi
[ -d data/synth_golf/val ] || "$MECO" data synth --out data/synth_golf --n 200 --seed 2 --split val
[ -d data/synth_golf/train ] || "$MECO" data synth --out data/synth_golf --n 4000 --seed 1 --split train --hfov random

"$MECO" train --config config/train/meco_golf_finetune.yaml --resume --steps "$STEPS" --out "$run" \
  --set "data.train.0.root=$cart" --set "data.val.0.root=$cart" "${replay[@]}" --json "$OUT/train.json"
"$MECO" export --checkpoint "$run/last.pt" --input-size 240x320 --out "$OUT/my_golf.pt"

for model in shipped finetuned; do
  ckpt=$SHIPPED; [ "$model" = finetuned ] && ckpt=$OUT/my_golf.pt
  # the held-out drive: against its lidar (as a user scores) and against the renderer's dense depth
  "$MECO" eval --checkpoint "$ckpt" --data "$cart" --split val --json "$OUT/$model/drive2_lidar.json" --no-progress >/dev/null
  "$MECO" eval --checkpoint "$ckpt" --data "$render" --split val --json "$OUT/$model/drive2_dense.json" \
    --out "$OUT/$model/drive2_dense" --samples 4 --no-progress >/dev/null
done
OUT="$OUT/finetuned/real_dev" tools/real_dev_eval.sh "$OUT/my_golf.pt" >/dev/null
.venv/bin/python tools/own_cart_figure.py "$OUT/my_golf.pt" --out "$OUT/own_cart_finetune.png"

.venv/bin/python - "$OUT" runs/shipped/meco_golf/real_dev <<'EOF'
import json, sys
from pathlib import Path
out, shipped_dev = Path(sys.argv[1]), Path(sys.argv[2])
load = lambda p: json.loads(p.read_text())
rows = [("drive 2, its lidar: AbsRel / median-scaled", "drive2_lidar", ("abs_rel", "ms_abs_rel")),
        ("drive 2, dense depth: AbsRel / median-scaled", "drive2_dense", ("abs_rel", "ms_abs_rel")),
        ("drive 2, dense depth: d1", "drive2_dense", ("d1",)),
        ("drive 2 classes (renderer's labels): mIoU", "drive2_dense", ("miou",))]
print(f"\n{'':<46} {'shipped':>15} {'fine-tuned':>15}")
table = {}
for label, name, keys in rows:
    cells = []
    for model in ("shipped", "finetuned"):
        m = load(out / model / f"{name}.json")
        cells.append(" / ".join(f"{m[k]:.3f}" if k != "miou" else f"{m[k]:.1f}" for k in keys))
    table[label] = cells
    print(f"{label:<46} {cells[0]:>15} {cells[1]:>15}")
for name, keys in (("synth_test", ("abs_rel", "miou")), ("kitti", ("abs_rel", "ms_abs_rel")),
                   ("rellis", ("abs_rel", "ms_abs_rel")), ("ycor_val", ("miou_gt",)), ("camvid_val", ("miou_gt",))):
    a, b = load(shipped_dev / f"{name}.json"), load(out / "finetuned" / "real_dev" / f"{name}.json")
    fmt = lambda m: " / ".join(f"{m[k]:.3f}" if k not in ("miou", "miou_gt") else f"{m[k]:.1f}" for k in keys)
    table[name] = [fmt(a), fmt(b)]
    print(f"{name + ': ' + ' / '.join(keys):<46} {fmt(a):>15} {fmt(b):>15}")
(out / "summary.json").write_text(json.dumps(table, indent=2))
print(f"\n{out / 'summary.json'}")
EOF
