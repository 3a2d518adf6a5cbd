"""How the model-scale probabilities come back to full resolution: interpolations and the scale, scored where
a submission is scored.

hubkit predicts at the card's scale (1/2 of a HuBMAP slide) and stretches the blended probabilities linearly
to full resolution before the cut. This asks whether another interpolation (cubic, Lanczos, nearest; on the
probabilities or on their logits, cut at the threshold's logit) or another model scale (``--scales``: finer
below 1, coarser and cheaper above) would score better. The tiles are the held-out Vanderbilt tiles as scanned
(`bench_stain.held_out_tiles`, ``native``: each card's scale divided by their enlargement to HuBMAP
magnification, as ``bench_stain.py --native``), shrunk once (INTER_AREA, as a slide is read) and predicted
whole at that scale; every row of one scale upsamples the same probabilities. With several ``--fold-of``
models (a split's folds), each predicts its own fold's tiles and the rows pool them: out-of-fold Dice. The
first row is hubkit's own path (`hubkit.inference.predict_image` at full resolution), run in the same
process: the ``linear`` row must match it. Reported: pooled Dice against the full-resolution truth at each
cut.

    python bench/bench_upsample.py --fold-of models/folds/unet-lite0-s2-soup-fold0    # that model alone
    python bench/bench_upsample.py --fold-of models/lite2-folds/unet-lite2-s2-soup-fold0 --scales 1,0.85
    python bench/bench_upsample.py --fold-of models/folds/unet-* --scales 1.1,1.2 --modes linear   # out of fold
    python bench/bench_upsample.py --zoo DIR --tiles 8 --thresholds 0.4,0.5           # the starter's held-out tiles
"""

from __future__ import annotations

import argparse
from typing import Callable

import cv2
import numpy as np

INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4,
                  "nearest": cv2.INTER_NEAREST}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def upsampled_cuts(prob: np.ndarray, size: tuple[int, int], mode: str) -> Callable[[float], np.ndarray]:
    """``threshold -> (height, width) bool`` mask of a model-scale ``(h, w)`` probability map brought to
    ``size`` ``(height, width)`` by ``mode``: an `INTERPOLATIONS` name, ``-logit`` appended to interpolate
    logits (cut at the threshold's logit)."""
    name, logits = mode.removesuffix("-logit"), mode.endswith("-logit")
    up = cv2.resize(_logit(prob) if logits else prob, (size[1], size[0]), interpolation=INTERPOLATIONS[name])
    return lambda t: up > (_logit(np.float32(t)) if logits else t)


def pooled(masks: list[np.ndarray], truths: list[np.ndarray]) -> float:
    """Dice of all tiles' pixels together."""
    from hubkit.formats.metrics import dice_from_counts

    return dice_from_counts(sum(int(np.logical_and(m, t).sum()) for m, t in zip(masks, truths)),
                            sum(int(m.sum() + t.sum()) for m, t in zip(masks, truths)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", help="model zoo folder of one scale, on the starter's held-out tiles or one --fold-of's")
    ap.add_argument("--fold-of", nargs="+", default=[], help="fold models, each alone on the Vanderbilt tiles its "
                                                             "fold held out, pooled (a split's folds: out of fold)")
    ap.add_argument("--tiles", type=int, default=32, help="held-out tiles to use, per fold")
    ap.add_argument("--tta", default="flip", help="test-time augmentation (none, flip, flip2, d4)")
    ap.add_argument("--thresholds", default="0.3,0.4,0.5,0.6")
    ap.add_argument("--scales", default="1", help="model scales, as multiples of each card's (below 1: finer)")
    ap.add_argument("--modes", default="linear,linear-logit,cubic,cubic-logit,lanczos,nearest",
                    help="interpolations at the card's scale (other scales: linear)")
    args = ap.parse_args()

    from bench_stain import held_out_tiles, rescaled  # bench/ is on the path

    from hubkit.inference import PredictConfig, predict_image
    from hubkit.models import Ensemble, zoo
    from hubkit.slides.base import scaled_size
    from hubkit.testbed import VANDERBILT_TO_HUBMAP

    if args.zoo and len(args.fold_of) > 1:
        raise SystemExit("--zoo takes one --fold-of (the tiles its models held out)")
    if args.fold_of and not args.zoo:  # (models, their held-out tiles)
        jobs = [(Ensemble.of([zoo.load(m)]), held_out_tiles(args.tiles, m, native=True)) for m in args.fold_of]
    else:
        jobs = [(zoo.load_zoo(args.zoo or zoo.default_zoo_dir()),
                 held_out_tiles(args.tiles, args.fold_of[0] if args.fold_of else "", native=True))]
    scales = {m.card.scale for ensemble, _ in jobs for m in ensemble.members}
    if len(scales) != 1:
        raise SystemExit(f"models of several scales {sorted(scales)}; give models of one scale")
    card_scale = scales.pop()
    scale = card_scale / VANDERBILT_TO_HUBMAP  # the tiles' shrink at the cards' scale
    thresholds = [float(t) for t in args.thresholds.split(",")]
    cfg = PredictConfig(tta=args.tta, device="cpu")
    truths = [truth for _, tiles in jobs for _, truth in tiles]
    names = [m.card.name for ensemble, _ in jobs for m in ensemble.members]
    print(f"{', '.join(names)} on {len(truths)} held-out tiles as scanned, TTA {args.tta}, model scale {scale:.3f}; "
          "pooled Dice at full resolution")
    print(f"  {'scale':>5} {'upsampling':<22}" + "".join(f"{t:>8g}" for t in thresholds))

    def row(label: str, mult: float, cuts: list[Callable[[float], np.ndarray]]) -> None:
        dice = [pooled([cut(t) for cut in cuts], truths) for t in thresholds]
        print(f"  {mult:>5g} {label:<22}" + "".join(f"{d:>8.4f}" for d in dice), flush=True)

    native = [(rescaled(ensemble, 1 / VANDERBILT_TO_HUBMAP), tiles) for ensemble, tiles in jobs]  # as bench_stain
    probs = [predict_image(ensemble, rgb, cfg)[0] for ensemble, tiles in native for rgb, _ in tiles]
    row("hubkit (predict_image)", 1, [lambda t, p=p: p > t for p in probs])
    del probs
    at_model_scale = [(rescaled(ensemble, 1 / card_scale), tiles) for ensemble, tiles in jobs]  # tiles pre-shrunk
    for mult in [float(s) for s in args.scales.split(",")]:
        small = []
        for ensemble, tiles in at_model_scale:
            for rgb, truth in tiles:
                size = (scaled_size(truth.shape[1], scale * mult), scaled_size(truth.shape[0], scale * mult))
                shrunk = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                small.append(predict_image(ensemble, shrunk, cfg)[0])
        for mode in args.modes.split(",") if mult == 1 else ["linear"]:
            row(mode, mult, [upsampled_cuts(p, t.shape, mode) for p, t in zip(small, truths)])


if __name__ == "__main__":
    main()
