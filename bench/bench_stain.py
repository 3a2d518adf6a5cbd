"""How far a model's Dice holds when the stain changes: held-out real tiles, recoloured, against the originals.

The tiles are the shared Vanderbilt PAS tiles the starter model never trained on (from
``train_080``; the 5 tiles hubkit ships when the shared data is absent), enlarged to HuBMAP
magnification and predicted whole with `hubkit.inference.predict_image` (no TTA). Each stain
level recolours every tile with `hubkit.training.augment.hed_jitter`: haematoxylin / eosin / DAB
optical densities scaled by a factor drawn from ``1 +- s`` and shifted by one from ``+- s``
(seeded draws, one per tile), the shift a lab or scanner change makes. Reported: pooled Dice
against the truth per level and its ratio to the unchanged tiles' Dice, in the same run.
Use it before and after retraining with stain augmentation, on the same tiles.

    python bench/bench_stain.py                       # levels 0, 0.05, 0.1, 0.2; 40 tiles
    python bench/bench_stain.py --zoo out/zoo --tiles 80 --levels 0,0.1,0.3
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np


def held_out_tiles(limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rgb, truth) pairs at HuBMAP magnification from tiles the starter model never trained on."""
    from hubkit.slides import find_tile_pairs, read_image, read_mask
    from hubkit.testbed import STARTER_HELD_OUT_FIRST, VANDERBILT_TO_HUBMAP, default_tiles_dir, sample_tiles_dir

    folder = default_tiles_dir() or sample_tiles_dir()
    pairs = [p for p in find_tile_pairs(folder) if p[0].stem >= STARTER_HELD_OUT_FIRST][:limit]
    out = []
    for image, mask in pairs:
        rgb, m = read_image(image), read_mask(mask)
        size = (round(rgb.shape[1] * VANDERBILT_TO_HUBMAP), round(rgb.shape[0] * VANDERBILT_TO_HUBMAP))
        out.append((cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR),
                    cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", help="model zoo folder (default: the starter model)")
    ap.add_argument("--tiles", type=int, default=40, help="held-out tiles to use")
    ap.add_argument("--levels", default="0,0.05,0.1,0.2", help="stain change strengths s (0 = the originals)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from hubkit.inference import PredictConfig, predict_image
    from hubkit.models import zoo
    from hubkit.training.augment import hed_jitter

    ensemble = zoo.load_zoo(args.zoo or zoo.default_zoo_dir())
    cfg = PredictConfig(tta="none", device="cpu")
    threshold = float(np.mean([m.card.threshold for m in ensemble.members]))
    tiles = held_out_tiles(args.tiles)
    print(f"{', '.join(m.card.name for m in ensemble.members)} on {len(tiles)} held-out real tiles, no TTA")
    base = None
    for level in [float(s) for s in args.levels.split(",")]:
        rng = np.random.default_rng(args.seed)
        inter = total = 0
        for rgb, truth in tiles:
            alpha, beta = rng.uniform(1 - level, 1 + level, 3), rng.uniform(-level, level, 3)
            shown = hed_jitter(rgb, alpha, beta) if level else rgb
            pred = predict_image(ensemble, shown, cfg)[0] > threshold
            inter += np.logical_and(pred, truth).sum()
            total += pred.sum() + truth.sum()
        dice = 2 * inter / total
        base = dice if base is None else base
        print(f"  stain change +-{level:<5g} pooled Dice {dice:.4f}   x{dice / base:.3f} of the first level")


if __name__ == "__main__":
    main()
