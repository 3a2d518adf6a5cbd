"""How far a model's Dice holds when the stain changes: held-out real tiles, recoloured, against the originals.

The tiles are the shared Vanderbilt PAS tiles the shipped models never trained on (the 32 of
`hubkit.testbed.STARTER_HELD_OUT`; the 5 tiles hubkit ships when the shared data is absent), enlarged to HuBMAP
magnification and predicted whole with `hubkit.inference.predict_image` (no TTA). Each stain
level recolours every tile with `hubkit.training.augment.hed_jitter`: haematoxylin / eosin / DAB
optical densities scaled by a factor drawn from ``1 +- s`` and shifted by one from ``+- s``
(seeded draws, one per tile), the shift a lab or scanner change makes. Reported: pooled Dice
against the truth per level and its ratio to the unchanged tiles' Dice, in the same run.
Use it before and after retraining with stain augmentation, on the same tiles.

With ``--subsets``, each of the zoo's models predicts every tile once per level, and every non-empty
subset of them is scored as an ensemble (the mean of its members' probabilities, as
`hubkit.models.Ensemble` averages them), best first, with its cost in forward passes per tile
relative to one model: which models earn their time, on tiles they all held out (give it models
of the same fold). Where the lost Dice goes (`hubkit.analysis.dice_breakdown`, pooled over the
tiles): ``edges ok`` is the Dice were every found glomerulus's outline exact, ``found ok`` were
none missed and none extra.

    python bench/bench_stain.py                       # levels 0, 0.05, 0.1, 0.2; the 32 held-out tiles
    python bench/bench_stain.py --zoo out/zoo --tiles 16 --levels 0,0.1,0.3
    python bench/bench_stain.py --zoo out/fold3-models --subsets --tta flip --levels 0,0.1,0.2
    python bench/bench_stain.py --zoo out/fold0-models --fold-of out/fold0-models/starter --subsets
    python bench/bench_stain.py --zoo out/fold0-models --fold-of out/fold0-models/starter --subsets --native

With ``--native``, the tiles stay at their scanned size and each model's scale is divided by the
enlargement instead, so the model sees the same tissue after one shrink (the tile set's geometry, as
`hubkit validate` scores it) while its outlines are still upsampled and scored at full resolution, as a
submission's are: it tells the scale a score is taken at from the extra resampling of the enlargement.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np


def held_out_tiles(limit: int, fold_of: str = "", native: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rgb, truth) pairs at HuBMAP magnification (``native``: as scanned) from tiles the starter model never
    trained on, or with ``fold_of`` (a fold model's folder) the Vanderbilt tiles its fold held out."""
    from pathlib import Path

    from hubkit.slides import find_tile_pairs, read_image, read_mask
    from hubkit.testbed import VANDERBILT_TO_HUBMAP, default_tiles_dir, sample_tiles_dir, tiles_in_range
    from hubkit.training.prep import tile_stem
    from hubkit.training.validate import held_out_tiles as fold_tiles

    pairs = find_tile_pairs(default_tiles_dir() or sample_tiles_dir())
    if fold_of:
        _, valid, _ = fold_tiles(fold_of)
        stems = {Path(image).stem for image, source in zip(valid["image"], valid["source"]) if source == "vanderbilt"}
        pairs = [pair for pair in pairs if tile_stem("vanderbilt", pair[0].stem) in stems]
        if not pairs:
            raise SystemExit(f"{fold_of}: none of its fold's Vanderbilt tiles here (needs the shared data)")
    else:
        pairs = tiles_in_range(pairs)
    pairs = pairs[:limit]
    out = []
    for image, mask in pairs:
        rgb, m = read_image(image), read_mask(mask)
        if native:
            out.append((rgb, m.astype(bool)))
            continue
        size = (round(rgb.shape[1] * VANDERBILT_TO_HUBMAP), round(rgb.shape[0] * VANDERBILT_TO_HUBMAP))
        out.append((cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR),
                    cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)))
    return out


def rescaled(ensemble, factor: float):
    """The ensemble with each card's scale times ``factor`` (the same weights; models predict at the new scale)."""
    from dataclasses import replace

    from hubkit.models import Ensemble

    return Ensemble([replace(m, card=replace(m.card, scale=m.card.scale * factor)) for m in ensemble.members])


def recolour(tiles: list[tuple[np.ndarray, np.ndarray]], level: float, seed: int) -> list[np.ndarray]:
    """Each tile's RGB under a stain change of strength ``level`` (seeded draws, one per tile; 0 = as scanned)."""
    from hubkit.training.augment import hed_jitter

    rng = np.random.default_rng(seed)
    shown = []
    for rgb, _ in tiles:
        alpha, beta = rng.uniform(1 - level, 1 + level, 3), rng.uniform(-level, level, 3)
        shown.append(hed_jitter(rgb, alpha, beta) if level else rgb)
    return shown


def subset_rows(probs: dict[str, list[np.ndarray]], truths: list[np.ndarray],
                thresholds: dict[str, float]) -> list[tuple]:
    """``(Dice, members, breakdown)`` of every non-empty subset of ``probs`` (name -> per-tile
    ``(H, W)`` probabilities), its mean cut at its members' mean threshold (an ensemble's, from
    ``thresholds``: name -> card threshold) and pooled over the tiles; best first."""
    from itertools import combinations

    from hubkit.analysis import dice_breakdown

    rows = []
    for k in range(1, len(probs) + 1):
        for names in combinations(probs, k):
            threshold = np.mean([thresholds[n] for n in names])
            parts = [dice_breakdown(np.mean([probs[n][i] for n in names], axis=0) > threshold, truth)
                     for i, truth in enumerate(truths)]
            pooled = sum(parts[1:], parts[0])
            rows.append((pooled.dice, names, pooled))
    return sorted(rows, key=lambda row: -row[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", help="model zoo folder (default: the starter model)")
    ap.add_argument("--tiles", type=int, default=32, help="held-out tiles to use (at most 32)")
    ap.add_argument("--fold-of", default="", help="a fold model: use the Vanderbilt tiles its fold held out instead "
                                                  "(give a zoo of that fold's models)")
    ap.add_argument("--levels", default="0,0.05,0.1,0.2", help="stain change strengths s (0 = the originals)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tta", default="none", help="test-time augmentation (none, flip, flip2, d4)")
    ap.add_argument("--subsets", action="store_true", help="score every subset of the zoo's models as an ensemble")
    ap.add_argument("--native", action="store_true", help="tiles as scanned, each model's scale divided by their "
                                                         "enlargement to HuBMAP magnification (one shrink)")
    args = ap.parse_args()

    from hubkit.inference import PredictConfig, predict_image
    from hubkit.inference.tta import get_tta
    from hubkit.models import Ensemble, zoo

    ensemble = zoo.load_zoo(args.zoo or zoo.default_zoo_dir())
    if args.native:
        from hubkit.testbed import VANDERBILT_TO_HUBMAP

        ensemble = rescaled(ensemble, 1 / VANDERBILT_TO_HUBMAP)
    cfg = PredictConfig(tta=args.tta, device="cpu")
    passes = len(get_tta(args.tta))
    threshold = float(np.mean([m.card.threshold for m in ensemble.members]))
    tiles = held_out_tiles(args.tiles, args.fold_of, args.native)
    truths = [truth for _, truth in tiles]
    print(f"{', '.join(m.card.name for m in ensemble.members)} on {len(tiles)} held-out real tiles, TTA {args.tta}"
          + (", as scanned, one shrink" if args.native else ", enlarged to HuBMAP magnification"))
    base = None
    for level in [float(s) for s in args.levels.split(",")]:
        shown = recolour(tiles, level, args.seed)
        if not args.subsets:
            inter = total = 0
            for rgb, truth in zip(shown, truths):
                pred = predict_image(ensemble, rgb, cfg)[0] > threshold
                inter += np.logical_and(pred, truth).sum()
                total += pred.sum() + truth.sum()
            dice = 2 * inter / total
            base = dice if base is None else base
            print(f"  stain change +-{level:<5g} pooled Dice {dice:.4f}   x{dice / base:.3f} of the first level")
            continue
        probs = {}
        for member in ensemble.members:
            one = Ensemble([member])
            probs[member.card.name] = [predict_image(one, rgb, cfg)[0] for rgb in shown]
        rows = subset_rows(probs, truths, {m.card.name: m.card.threshold for m in ensemble.members})
        width = max(len(" + ".join(names)) for _, names, _ in rows)
        print(f"  stain change +-{level:g}")
        print(f"    {'models':<{width}} {'passes':>6} {'Dice':>7} {'edges ok':>8} {'found ok':>8}")
        for dice, names, pooled in rows:
            print(f"    {' + '.join(names):<{width}} {len(names) * passes:>6d} {dice:>7.4f} "
                  f"{pooled.dice_exact_edges:>8.4f} {pooled.dice_exact_detection:>8.4f}")


if __name__ == "__main__":
    main()
