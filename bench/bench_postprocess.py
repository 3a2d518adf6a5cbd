"""Threshold and speck removal against Dice and glomerulus F1, on a real-tissue local competition.

Builds the local competition `hubkit demo` builds (real Vanderbilt PAS tiles the shipped models
never trained on, laid into slides at HuBMAP magnification: 3 slides from the 32 tiles of
`hubkit.testbed.STARTER_HELD_OUT` with the shared data, else 2 from the 5 tiles hubkit ships),
predicts each slide's probabilities once (flip TTA, as a submission runs), then for every threshold
and ``min_area`` (full-resolution px) encodes the mask, removes its specks
(`hubkit.formats.specks.remove_specks`; with ``--seeds``, also the masks with no pixel above a seed
cut: hysteresis, as ``--seed-threshold`` predicts) and scores it: mean Dice over the
slides (the competition's metric) and glomerulus-level TP / FP / FN and F1 at IoU 0.5
(`hubkit.analysis.analyze_slide`), and where the lost Dice goes (`hubkit.analysis.dice_breakdown`):
the mean Dice were every found glomerulus's outline exact (``edges ok``), and were no glomerulus
missed nor any extra one predicted (``found ok``), and the outlines' bias (``FN:FP``: true pixels
left out at found glomeruli's edges per predicted pixel too many; above 1 = outlines too tight).
The first row (the cards' threshold, no speck removal) is the baseline of the same run. Note that
tiles are crops: glomeruli cut by a tile's edge are small true components, so speck removal is
judged harshly here compared with whole slides.

    python bench/bench_postprocess.py
    python bench/bench_postprocess.py --zoo out/zoo --thresholds 0.4,0.5 --areas 0,4000,8000
    python bench/bench_postprocess.py --thresholds 0.3,0.5 --seeds 0.7,0.8 --areas 8000   # hysteresis
    python bench/bench_postprocess.py --overlaps 0.25,0.125,0,0.5 --areas 8000           # fewer passes

With ``--overlaps`` the slides are predicted once per overlap, each timed (model time dominates on a
CPU), and the table repeats for each; the first overlap is the baseline of the Dice and time ratios.
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", help="model zoo folder (default: the starter model)")
    ap.add_argument("--thresholds", default="", help="probability cuts (default: the cards' threshold)")
    ap.add_argument("--areas", default="0,2000,4000,8000,12000", help="min_area values, full-resolution px")
    ap.add_argument("--seeds", default="", help="seed thresholds (hysteresis: a mask is kept only if a pixel is above "
                                                 "it; those below a row's threshold are skipped; default: none)")
    ap.add_argument("--tta", default="flip")
    ap.add_argument("--overlaps", default="0.25", help="tile overlaps, fractions of the tile (default: hubkit's 0.25)")
    args = ap.parse_args()

    import numpy as np

    from hubkit.formats.hubmap2021 import read_encodings
    from hubkit.inference import PredictConfig, probability_strips
    from hubkit.models import zoo
    from hubkit.slides import open_slide
    from hubkit.testbed import (
        FULL,
        SMALL,
        STARTER_HELD_OUT,
        default_tiles_dir,
        make_competition,
        sample_tiles_dir,
    )

    ensemble = zoo.load_zoo(args.zoo or zoo.default_zoo_dir())
    cards = float(np.mean([m.card.threshold for m in ensemble.members]))
    thresholds = [float(t) for t in args.thresholds.split(",")] if args.thresholds else [cards]
    areas = [int(a) for a in args.areas.split(",")]
    seed_cuts = [None] + [float(t) for t in args.seeds.split(",") if t]
    tiles = default_tiles_dir()
    with tempfile.TemporaryDirectory() as tmp:
        solution = make_competition(tmp, tiles or sample_tiles_dir(), FULL if tiles else SMALL,
                                    tile_range=STARTER_HELD_OUT)
        truth = read_encodings(f"{tmp}/solution.csv")
        baseline = None  # (seconds, first row's mean Dice) at the first overlap
        overlaps = [float(o) for o in args.overlaps.split(",")]
        for overlap in overlaps:
            cfg = PredictConfig(tta=args.tta, device="cpu", overlap=overlap)
            probs, t0 = {}, time.perf_counter()
            for slide_id in solution["id"]:
                with open_slide(f"{tmp}/test/{slide_id}.tiff") as slide:
                    strips = [strip.max(axis=0) for _, strip in probability_strips(slide, ensemble, cfg)]
                probs[slide_id] = np.concatenate(strips, axis=1)
            seconds = time.perf_counter() - t0
            print(f"\n{', '.join(m.card.name for m in ensemble.members)}: {len(probs)} slides "
                  f"({sum(p.size for p in probs.values()) / 1e6:.0f} Mpx), TTA {args.tta}, overlap {overlap:g}: "
                  f"predicted in {seconds:.0f} s", end="")
            dice = _print_table(probs, truth, thresholds, areas, seed_cuts)
            baseline = baseline or (seconds, dice)
            print(f"overlap {overlap:g} against {overlaps[0]:g}: time x{seconds / baseline[0]:.2f}, "
                  f"first row's mean Dice {dice - baseline[1]:+.4f}")


def _print_table(probs: dict, truth: dict, thresholds: list, areas: list, seed_cuts: list) -> float:
    """Scores every (threshold, seed cut, min_area) row on the slides' probabilities and prints it;
    returns the first row's mean Dice."""
    import numpy as np

    from hubkit.analysis import analyze_slide, dice_breakdown
    from hubkit.formats import rle
    from hubkit.formats.metrics import rle_dice
    from hubkit.formats.specks import remove_specks

    print()
    print(f"{'threshold':>9} {'seed':>5} {'min_area':>8} {'mean Dice':>9} {'TP':>4} {'FP':>4} {'FN':>4} {'F1':>6} "
          f"{'edges ok':>8} {'found ok':>8} {'FN:FP':>5} {'seconds':>7}  Dice per slide")
    true_masks = {i: rle.decode(truth[i], p.shape) for i, p in probs.items()}
    encodings = {None: dict.fromkeys(probs)}  # {cut: {id: the slide's mask above it}}, each cut encoded once

    def encoded(cut):
        if cut not in encodings:
            encodings[cut] = {i: rle.encode(p > cut) for i, p in probs.items()}
        return encodings[cut]

    first = None
    for threshold, seed_cut in [(t, c) for t in thresholds for c in seed_cuts if c is None or c >= t]:
        masks, seeds = encoded(threshold), encoded(seed_cut)
        for area in areas:
            t0 = time.perf_counter()
            cleaned = {i: remove_specks(e, probs[i].shape, area, seeds=seeds[i], name=i) for i, e in masks.items()}
            seconds = time.perf_counter() - t0
            per_slide = [rle_dice(cleaned[i], truth[i]) for i in cleaned]
            dice = np.mean(per_slide)
            tp = fp = fn = 0
            for i, e in cleaned.items():
                det = analyze_slide(probs[i].shape, e, truth[i]).detection
                tp, fp, fn = tp + det.tp, fp + det.fp, fn + det.fn
            f1 = 2 * tp / max(2 * tp + fp + fn, 1)
            parts = [dice_breakdown(rle.decode(e, probs[i].shape), true_masks[i]) for i, e in cleaned.items()]
            edges = np.mean([b.dice_exact_edges for b in parts])
            found = np.mean([b.dice_exact_detection for b in parts])
            pooled = sum(parts[1:], parts[0])
            seed_text = "-" if seed_cut is None else f"{seed_cut:.2f}"
            print(f"{threshold:>9.2f} {seed_text:>5} {area:>8d} {dice:>9.4f} {tp:>4d} {fp:>4d} {fn:>4d} {f1:>6.3f} "
                  f"{edges:>8.4f} {found:>8.4f} {pooled.outline_bias:>5.2f} {seconds:>7.2f}  "
                  f"{' / '.join(f'{d:.4f}' for d in per_slide)}")
            first = dice if first is None else first
    return first


if __name__ == "__main__":
    main()
