"""Held-out Dice per tile source: does a model hold on another lab's or scanner's tiles?

For each model folder (a fold model `hubkit train` saved: its card's ``extra.config`` names the
tile set, folds and seed, ``extra.fold`` its fold), the fold's held-out tiles of the tile set are
split by ``source`` (e.g. ``vanderbilt``, ``aidpath``) and scored whole, as the trainer validates:
pooled and per-tile Dice at the card's threshold, no TTA. Sources the model trained on show
in-source Dice; a source it never saw (a run with ``sources_train``, and no ``init`` model that
saw it) shows what a change of lab and scanner costs, and is also scored on all its tiles (every
one is unseen). Ratios are to the first model's Dice on the same tiles (a model of the same fold).
Where the lost Dice goes (`hubkit.analysis.dice_breakdown`, pooled over the tiles): ``edges ok`` is the
Dice were every found glomerulus's outline exact, ``found ok`` the Dice were none missed and none extra,
``FN:FP`` the outlines' bias (true pixels left out at found glomeruli's edges per predicted pixel too many;
above 1 = drawn tighter than the annotators drew them). With ``--oof`` the models are one split's folds, a
model each (`hubkit.training.validate.one_split` checks it), and a last row per source pools their
held-out tiles: the recipe's out-of-fold Dice on that source.

    python bench/bench_sources.py models/starter/unet-lite0-s2 out/cross/unet-aidpath-fold3
    python bench/bench_sources.py --oof out/folds/zoo/unet-lite0-s2-soup-fold*
"""

from __future__ import annotations

import argparse


def sources_seen(config: dict, every: list[str]) -> list[str]:
    """The tile sources a model's training saw: its ``sources_train`` (all when unset), and those of the
    model it was fine-tuned from (``init``), whose card is read from where the config names it."""
    from pathlib import Path

    from hubkit.models.card import ModelCard

    seen = set(config.get("sources_train") or every)
    if config.get("init"):
        card = Path(config["init"]) / "card.json"
        if not card.is_file():
            raise SystemExit(f"{card}: the card of the model this one was fine-tuned from is not there, so which "
                             "sources it saw is unknown; run from the folder its config was trained in")
        seen |= set(sources_seen(ModelCard.read(card).extra.get("config") or {}, every))
    return sorted(seen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="fold model folders (card.json + weights)")
    ap.add_argument("--tiles", help="tile set (default: the one each card's config names)")
    ap.add_argument("--oof", action="store_true", help="the models are one split's folds: pool them per source")
    args = ap.parse_args()

    import numpy as np
    import torch

    from hubkit.analysis import dice_breakdown
    from hubkit.errors import HubkitError
    from hubkit.models import zoo
    from hubkit.training.loop import valid_predictions
    from hubkit.training.prep import read_index, split_fold
    from hubkit.training.validate import held_out_loader, one_split

    if args.oof:
        try:
            one_split(args.models, args.tiles)  # the cards checked before any model runs
        except HubkitError as e:
            raise SystemExit(f"--oof: {e}") from None

    def score(model, loader, threshold):
        parts = [dice_breakdown(pred[0].numpy(), mask[0].numpy())  # as the trainer validates: whole tiles, no TTA
                 for pred, mask in valid_predictions(model, loader, torch.device("cpu"), threshold)]
        return sum(parts[1:], parts[0]), float(np.mean([b.dice for b in parts]))

    base, pooled_by_source = {}, {}
    print(f"{'model':<34} {'trained on':<18} {'tiles scored':<30} {'tiles':>5} {'Dice':>7} {'per tile':>8} "
          f"{'x first':>7} {'edges ok':>8} {'found ok':>8} {'FN:FP':>5}")
    for folder in args.models:
        model, card = zoo.load(folder)
        config = card.extra.get("config") or {}
        index, root = read_index(args.tiles or config["tiles"])
        _, held_out = split_fold(index, config["folds"], config["seed"], card.extra["fold"])
        trained_on = ",".join(sources_seen(config, sorted(index["source"].unique())))
        sets = [(source, "held-out fold", held_out[held_out["source"] == source])
                for source in sorted(held_out["source"].unique())]
        sets += [(source, "all (unseen)", index[index["source"] == source])
                 for source in sorted(index["source"].unique()) if source not in trained_on.split(",")]
        for source, which, rows in sets:
            pooled, per_tile = score(model, held_out_loader(card, rows, root), card.threshold)
            ratio = pooled.dice / base.setdefault(tuple(rows["image"]), pooled.dice)  # the same tiles
            row(card.name, trained_on, f"{source}, {which}", len(rows), pooled, per_tile, f"{ratio:>7.3f}")
            if which == "held-out fold":
                pooled_by_source.setdefault(source, []).append((pooled, per_tile, len(rows)))
    for source, folds in sorted(pooled_by_source.items()) if args.oof else ():
        count = sum(n for *_, n in folds)
        row(f"out of fold ({len(folds)} models)", "", f"{source}, held-out folds", count,
            sum((b for b, *_ in folds[1:]), folds[0][0]), sum(t * n for _, t, n in folds) / count, "")


def row(name, trained_on, scored, tiles, pooled, per_tile, ratio) -> None:
    """One line of the table: a model (or the pooled folds) on one set of tiles."""
    print(f"{name:<34} {trained_on:<18} {scored:<30} {tiles:>5} {pooled.dice:>7.4f} {per_tile:>8.4f} {ratio:>7} "
          f"{pooled.dice_exact_edges:>8.4f} {pooled.dice_exact_detection:>8.4f} {pooled.outline_bias:>5.2f}")


if __name__ == "__main__":
    main()
