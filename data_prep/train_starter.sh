#!/usr/bin/env bash
# Reproduce the starter models models/starter/unet-lite0-s2 and -stain and their soup, the default zoo
# hubkit/models/builtin/unet-lite0-s2-soup, in one command: the tile set, then data_prep/train_folds.sh
# (every fold's starter, stain fine-tune and soup, scored; the 4-fold zoo in out/folds/zoo), then fold 3's
# two models kept in models/starter/ and their soup made the default zoo, and every fold's soup kept in
# models/folds/ (the 4-fold zoo). About 7 minutes on one H100 (the folds run in parallel); most of a day on
# 2 CPU cores. Needs the shared data beside the checkout.
#   bash data_prep/train_starter.sh [DATA_DIR [KEY=VALUE ...]]   (KEY=VALUE: train_folds.sh's overrides)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
shift || true
OUT=out/folds
python data_prep/make_tiles.py --out tiles/starter \
  --tiles "$DATA/hubmap-vanderbilt-pas-glomeruli-1600x1200:vanderbilt:1.69" \
  --tiles "$DATA/aidpath-pas-glomeruli-1024:aidpath:3.09"
bash data_prep/train_folds.sh "$OUT" "$@"
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
ship "$OUT/fold3/unet-lite0-s2-fold3" unet-lite0-s2
ship "$OUT/fold3/unet-lite0-s2-stain-fold3" unet-lite0-s2-stain
# The default zoo is the two's weight average (a model soup: their ensemble's Dice at one model's cost);
# train_folds.sh made the same soup as $OUT/zoo/unet-lite0-s2-soup-fold3, remade here under its shipped name.
rm -rf hubkit/models/builtin/unet-lite0-s2-soup
hubkit soup models/starter/unet-lite0-s2 models/starter/unet-lite0-s2-stain --out hubkit/models/builtin/unet-lite0-s2-soup
hubkit validate hubkit/models/builtin/unet-lite0-s2-soup --record  # its cv_score: fold 3's held-out tiles
rm -rf models/folds/unet-lite0-s2-soup-fold* && mkdir -p models/folds && cp -r "$OUT"/zoo/unet-lite0-s2-soup-fold* models/folds/
echo "kept fold 3 as unet-lite0-s2 and its stain fine-tune as unet-lite0-s2-stain in models/starter/;" \
     "their soup unet-lite0-s2-soup is the default zoo (bench/bench_stain.py, bench_postprocess.py score it);" \
     "models/folds/ (from $OUT/zoo) holds every fold's soup, the 4-fold zoo"
