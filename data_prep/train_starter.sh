#!/usr/bin/env bash
# Reproduce the starter models models/starter/unet-lite0-s2 and -stain and their soup, the default zoo
# hubkit/models/builtin/unet-lite0-s2-soup (one command; ~5 min for all 4 folds on an H100, run in parallel;
# hours on 2 CPU cores, the stain fine-tune ~50 min). Needs the shared data beside the checkout.
#   bash data_prep/train_starter.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
python data_prep/make_tiles.py --out tiles/starter \
  --tiles "$DATA/hubmap-vanderbilt-pas-glomeruli-1600x1200:vanderbilt:1.69" \
  --tiles "$DATA/aidpath-pas-glomeruli-1024:aidpath:3.09"
for fold in 0 1 2 3; do
  hubkit train configs/starter.json --fold "$fold" --quiet --summary "out/starter/fold$fold.json" &
done
wait
python - <<'PY'
import json
scores = [json.load(open(f"out/starter/fold{f}.json"))["folds"][0]["dice"] for f in range(4)]
print("fold Dice:", [round(s, 4) for s in scores], "mean", round(sum(scores) / 4, 4))
PY
ship() {  # keep a fold model as models/starter/<name>
  rm -rf "models/starter/$2" && mkdir -p models/starter && cp -r "$1" "models/starter/$2"
  python - "$2" <<'PY'
import json, sys
path = f"models/starter/{sys.argv[1]}/card.json"
card = json.load(open(path))
card["name"] = sys.argv[1]
open(path, "w").write(json.dumps(card, indent=2))
PY
}
ship out/starter/unet-lite0-s2-fold3 unet-lite0-s2
# Then fine-tune fold 3 with HED stain jitter (configs/starter-stain.json: init = the model just kept); the
# default zoo is the two's weight average (a model soup: their ensemble's Dice at one model's cost).
hubkit train configs/starter-stain.json --quiet --summary out/starter-stain/fold3.json
ship out/starter-stain/unet-lite0-s2-fold3 unet-lite0-s2-stain
rm -rf hubkit/models/builtin/unet-lite0-s2-soup
hubkit soup models/starter/unet-lite0-s2 models/starter/unet-lite0-s2-stain --out hubkit/models/builtin/unet-lite0-s2-soup
hubkit validate hubkit/models/builtin/unet-lite0-s2-soup --record  # its cv_score: fold 3's held-out tiles
echo "kept fold 3 as unet-lite0-s2 and its stain fine-tune as unet-lite0-s2-stain in models/starter/;" \
     "their soup unet-lite0-s2-soup is the default zoo (bench/bench_stain.py, bench_postprocess.py score it)"
