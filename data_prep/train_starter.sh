#!/usr/bin/env bash
# Reproduce the starter model hubkit/models/builtin/unet-lite0-s2 (one command; ~5 min for all 4 folds on an
# H100, run in parallel; hours on 2 CPU cores). Needs the shared data beside the checkout.
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
rm -rf hubkit/models/builtin/unet-lite0-s2 && cp -r out/starter/unet-lite0-s2-fold3 hubkit/models/builtin/unet-lite0-s2
python - <<'PY'
import json
path = "hubkit/models/builtin/unet-lite0-s2/card.json"
card = json.load(open(path))
card["name"] = "unet-lite0-s2"
open(path, "w").write(json.dumps(card, indent=2))
PY
echo "shipped fold 3 as hubkit/models/builtin/unet-lite0-s2"
