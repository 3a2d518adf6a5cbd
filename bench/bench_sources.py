"""Held-out Dice per tile source: does a model hold on another lab's or scanner's tiles?

For each model folder (a fold model `hubkit train` saved: its card's ``extra.config`` names the
tile set, folds and seed, ``extra.fold`` its fold), the fold's held-out tiles of the tile set are
split by ``source`` (e.g. ``vanderbilt``, ``aidpath``) and scored whole, as the trainer validates:
pooled and per-tile Dice at the card's threshold, no TTA. Sources the model trained on show
in-source Dice; a source it never saw (a run with ``sources_train``) shows what a change of lab and
scanner costs, and is also scored on all its tiles (every one is unseen). Ratios are to the first
model's Dice on the same tiles.

    python bench/bench_sources.py hubkit/models/builtin/unet-lite0-s2 out/cross/unet-aidpath-fold3
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="fold model folders (card.json + weights)")
    ap.add_argument("--tiles", help="tile set (default: the one each card's config names)")
    args = ap.parse_args()

    import torch
    from torch.utils.data import DataLoader

    from hubkit.models import zoo
    from hubkit.training.data import ValidTiles
    from hubkit.training.loop import evaluate
    from hubkit.training.prep import folds_by_group, read_index

    base = {}
    print(f"{'model':<34} {'trained on':<18} {'tiles scored':<30} {'tiles':>5} {'Dice':>7} {'per tile':>8} "
          f"{'x first':>7}")
    for folder in args.models:
        model, card = zoo.load(folder)
        config = card.extra.get("config") or {}
        index, root = read_index(args.tiles or config["tiles"])
        fold_of = folds_by_group(index["group"], config["folds"], config["seed"])
        held_out = index[fold_of == card.extra["fold"]]
        trained_on = ",".join(config.get("sources_train") or sorted(index["source"].unique()))
        sets = [(source, "held-out fold", held_out[held_out["source"] == source])
                for source in sorted(held_out["source"].unique())]
        sets += [(source, "all (unseen)", index[index["source"] == source])
                 for source in sorted(index["source"].unique()) if source not in trained_on.split(",")]
        for source, which, rows in sets:
            tiles = ValidTiles(rows, root, card.mean, card.std, card.classes)
            scores = evaluate(model, DataLoader(tiles, 1), torch.device("cpu"), torch.bfloat16, card.threshold)
            ratio = scores["dice"] / base.setdefault((source, which), scores["dice"])
            print(f"{card.name:<34} {trained_on:<18} {source + ', ' + which:<30} {len(tiles):>5} "
                  f"{scores['dice']:>7.4f} {scores['dice_per_tile']:>8.4f} {ratio:>7.3f}")


if __name__ == "__main__":
    main()
