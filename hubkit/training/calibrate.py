"""A k-fold zoo's probability cuts chosen out of fold: the threshold (and hysteresis seed cut) that scores best
on every tile of the split, each tile predicted by the fold model that never trained on it.

A card's threshold (0.5 unless set) is the trainer's default, not a measured choice, and a cut tuned on one
fold's tiles tunes to that fold (on this project's tiles a cut that gained 0.008 Dice on fold 3 gained nothing on
fold 0). Out of fold every tile of the split counts once: each fold model (`hubkit.training.validate.one_split`
checks they are one split's folds) predicts its held-out tiles once, whole, with the TTA a submission runs
(`hubkit.training.loop.valid_probabilities`), and every cut is scored on those probabilities: pooled Dice over all
the tiles' pixels, as `validate_out_of_fold` pools them. A seed cut is applied as `predict --seed-threshold`
applies it (`hubkit.formats.specks.remove_specks` on the mask's runs): a mask is kept only where it holds a
pixel above the seed cut. The cards' own threshold (the mean of them, as `predict` uses it) is always scored,
so the gain of the best cut is measured in the same run. Whole tiles are not the sliding window a slide is
predicted with; the cut, not the absolute Dice, is what carries over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from hubkit.analysis.glomeruli import Detection, components, detection_counts
from hubkit.errors import ConfigError
from hubkit.formats.metrics import dice_from_counts
from hubkit.formats.rle import decode, encode
from hubkit.formats.specks import remove_specks
from hubkit.inference.config import PredictConfig
from hubkit.inference.tta import get_tta
from hubkit.models.zoo import load
from hubkit.training.loop import valid_probabilities
from hubkit.training.validate import held_out_loader, missing_folds, one_split

__all__ = ["Cut", "Calibration", "calibrate_out_of_fold", "cut_mask"]


@dataclass(frozen=True)
class Cut:
    """One probability cut, scored out of fold.

    Attributes:
        threshold: outlines are drawn where the probability is above it (``predict --threshold``).
        seed_threshold: masks with no pixel above it are dropped (``predict --seed-threshold``); None = off.
        dice: pooled over every scored tile's pixels.
        dice_per_tile: the mean of the tiles' Dice.
        f1: glomerulus-level F1 at IoU 0.5 (`hubkit.analysis.glomeruli.detection_counts`), from the tiles' summed TP / FP /
            FN (glomeruli cut by a tile's edge count as they are seen).
        fold_dice: each fold's pooled Dice, in the order of `Calibration.folds` (a cut worth taking wins on most).
    """

    threshold: float
    seed_threshold: Optional[float]
    dice: float
    dice_per_tile: float
    f1: float
    fold_dice: tuple[float, ...]


@dataclass(frozen=True)
class Calibration:
    """Probability cuts scored on one split's held-out tiles (`calibrate_out_of_fold`).

    Attributes:
        cuts: each cut's score, thresholds ascending, no seed cut before seed cuts ascending.
        cards_threshold: the models' threshold as `predict` uses it by default (the mean of their cards').
        tiles: tiles scored, over all the folds given.
        folds: the folds given, ascending.
        of: the split's number of folds.
        tta: the TTA set the tiles were predicted with.
    """

    cuts: tuple[Cut, ...]
    cards_threshold: float
    tiles: int
    folds: tuple[int, ...]
    of: int
    tta: str

    @property
    def best(self) -> Cut:
        """The cut of the highest pooled Dice (the first of equals, so the lower threshold, and no seed cut)."""
        return max(self.cuts, key=lambda cut: cut.dice)  # max keeps the first of equals

    @property
    def cards(self) -> Cut:
        """The cards' threshold, no seed cut: what `predict` does unless told otherwise."""
        return next(c for c in self.cuts if c.threshold == self.cards_threshold and c.seed_threshold is None)

    def wins(self, cut: Cut) -> int:
        """On how many folds ``cut`` scores above the cards' cut (`cards`)."""
        return sum(a > b for a, b in zip(cut.fold_dice, self.cards.fold_dice))

    @property
    def missing(self) -> tuple[int, ...]:
        """The split's folds no model was given for (their tiles are not in the score)."""
        return missing_folds(self.folds, self.of)


def cut_mask(prob: np.ndarray, threshold: float, seed_threshold: Optional[float] = None) -> np.ndarray:
    """A probability map cut as `predict` cuts a slide's: ``prob > threshold``, and given ``seed_threshold``
    only the 8-connected masks holding a pixel ``> seed_threshold`` (hysteresis, on the mask's runs).

    Args:
        prob: ``(height, width)`` probabilities.
        threshold: the outline cut.
        seed_threshold: the seed cut, not below ``threshold``; None keeps every mask.

    Returns:
        ``(height, width)`` bool mask.
    """
    mask = prob > threshold
    if seed_threshold is None:
        return mask
    kept = remove_specks(encode(mask), mask.shape, 0, seeds=encode(prob > seed_threshold))
    return decode(kept, mask.shape).astype(bool)


def calibrate_out_of_fold(directories: Sequence, thresholds: Sequence[float] = (0.3, 0.4, 0.5, 0.6),
                          seeds: Sequence[Optional[float]] = (None,), tiles: Optional[str] = None,
                          tta: str = PredictConfig.tta, device: str = "cpu") -> Calibration:
    """Score probability cuts on the held-out tiles of fold models of one split, each tile predicted once.

    Every pair of a threshold and a seed cut (None = no seed cut) is scored, but a seed cut below the
    threshold (which `predict` refuses); the cards' threshold with no seed cut is always added. Every card
    is checked before any weights are read (`one_split`); fewer models than folds score the folds given.

    Args:
        directories: model folders (or card files), one per fold, e.g. ``train_folds.sh``'s ``zoo/*``.
        thresholds: outline cuts, each in (0, 1).
        seeds: seed cuts, each in (0, 1) or None.
        tiles: the tile set (default: the one each card's config names, relative to the working folder).
        tta: the TTA set (`hubkit.inference.tta`) the submission will run (default: `predict`'s).
        device: where to run the models (autocast as `hubkit.inference.config.autocast_dtype` says).

    Returns:
        Every cut's pooled, per-tile and per-fold Dice, and its glomerulus F1.

    Raises:
        ConfigError: a cut that is not a number in (0, 1), no thresholds or seeds, or an unknown TTA (lists them).
        CardError, DataError: see `one_split`.
    """
    get_tta(tta)
    held = one_split(directories, tiles)  # every card checked before any weights are read
    cards_threshold = float(np.mean([card.threshold for card, _, _ in held]))
    pairs = _pairs([*_checked(thresholds, "thresholds"), cards_threshold], _checked(seeds, "seeds", none=True))
    folds = sorted(card.extra["fold"] for card, _, _ in held)
    inter, total = np.zeros((len(pairs), len(folds))), np.zeros((len(pairs), len(folds)))
    per_tile, found, count = np.zeros(len(pairs)), np.zeros((len(pairs), 3), int), 0  # found: TP, FP, FN
    torch_device = torch.device(device)
    for directory, (card, valid, root) in zip(directories, held):
        model, _ = load(directory, device)  # sha256-checked
        k = folds.index(card.extra["fold"])
        for prob, truth in valid_probabilities(model, held_out_loader(card, valid, root), torch_device, tta=tta):
            prob, truth = prob[0].numpy(), truth[0].numpy() > 0
            true_labels = components(truth)  # numbered once, matched against every cut
            for j, (threshold, seed) in enumerate(pairs):
                pred = cut_mask(prob, threshold, seed)
                i, t = float((pred & truth).sum()), float(pred.sum() + truth.sum())
                inter[j, k], total[j, k] = inter[j, k] + i, total[j, k] + t
                per_tile[j] += dice_from_counts(i, t)
                found[j] += detection_counts(components(pred), true_labels)
            count += 1
    cuts = []
    for j, (threshold, seed) in enumerate(pairs):
        dice = dice_from_counts(inter[j].sum(), total[j].sum())
        cuts.append(Cut(threshold, seed, dice, float(per_tile[j] / count), Detection(*map(int, found[j]), dice).f1,
                        tuple(dice_from_counts(a, b) for a, b in zip(inter[j], total[j]))))
    return Calibration(tuple(cuts), cards_threshold, count, tuple(folds), held[0][0].extra["config"]["folds"], tta)


def _checked(values: Sequence, what: str, none: bool = False) -> list:
    """``values`` if each is a probability cut in (0, 1) (or None, with ``none``), else a ConfigError naming it."""
    for v in values:
        if v is None and none:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and 0 < v < 1):
            raise ConfigError(f"{what}: {v!r} is not a probability cut in (0, 1)")
    if not values:
        raise ConfigError(f"{what}: give at least one cut")
    return [None if v is None else float(v) for v in values]


def _pairs(thresholds: list[float], seeds: list[Optional[float]]) -> list[tuple[float, Optional[float]]]:
    """Every (threshold, seed) pair once, sorted, but a seed cut below its threshold; the cards' threshold
    (the last of ``thresholds``) always with no seed cut."""
    pairs = {(t, s) for t in thresholds[:-1] for s in seeds if s is None or s >= t} | {(thresholds[-1], None)}
    return sorted(pairs, key=lambda p: (p[0], p[1] is not None, p[1] or 0.0))
