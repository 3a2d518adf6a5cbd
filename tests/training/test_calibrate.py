import re

import numpy as np
import pytest
import torch

from hubkit.analysis.glomeruli import Detection, detection_metrics
from hubkit.cli.main import main
from hubkit.errors import ConfigError
from hubkit.models import zoo
from hubkit.training.calibrate import calibrate_out_of_fold, cut_mask
from hubkit.training.loop import valid_predictions
from hubkit.training.validate import held_out_loader, held_out_tiles, validate_out_of_fold

#: Three masks at 0.6 on a (12, 12) map: one with a 0.95 centre, one touching its corner (so 8-connected to it),
#: one apart.
REGIONS = {"seeded": np.s_[1:4, 1:4], "corner": np.s_[4:6, 4:6], "apart": np.s_[8:11, 8:11], "centre": np.s_[2, 2]}


@pytest.mark.parametrize("threshold, seed, kept", [
    (0.5, None, ["seeded", "corner", "apart"]),
    (0.5, 0.9, ["seeded", "corner"]),  # the corner mask is one 8-connected mask with the seeded one
    (0.5, 0.99, []),
    (0.7, None, ["centre"]),
    (0.7, 0.9, ["centre"]),
])
def test_a_cut_draws_outlines_at_the_threshold_and_keeps_masks_holding_a_seed(threshold, seed, kept):
    prob = np.zeros((12, 12), np.float32)
    for name in ("seeded", "corner", "apart"):
        prob[REGIONS[name]] = 0.6
    prob[REGIONS["centre"]] = 0.95
    expected = np.zeros(prob.shape, bool)
    for name in kept:
        expected[REGIONS[name]] = True
    assert np.array_equal(cut_mask(prob, threshold, seed), expected)


def test_at_the_cards_threshold_the_calibration_is_the_out_of_fold_dice(fold_model, other_fold):
    folders = [fold_model[0], other_fold]
    calibration = calibrate_out_of_fold(folders, thresholds=(0.3,), tta="none")
    oof = validate_out_of_fold(folders)  # the cards' threshold, no TTA, as the trainer validates
    assert (calibration.tiles, calibration.folds, calibration.of, calibration.missing) == (oof.tiles, (0, 1), 2, ())
    assert calibration.cards.threshold == 0.5 and calibration.cards.dice == pytest.approx(oof.dice, abs=1e-9)
    assert calibration.cards.dice_per_tile == pytest.approx(oof.dice_per_tile, abs=1e-9)
    assert calibration.cards.fold_dice == pytest.approx([score.dice for score in oof.scores], abs=1e-9)
    assert calibration.best.dice == max(c.dice for c in calibration.cuts) and calibration.wins(calibration.cards) == 0
    counts = np.zeros(3, int)  # the glomeruli found, extra and missed, counted tile by tile as the trainer predicts
    for folder in folders:
        card, valid, root = held_out_tiles(folder)
        model = zoo.load(folder)[0]
        for pred, mask in valid_predictions(model, held_out_loader(card, valid, root), torch.device("cpu"),
                                            card.threshold):
            found = detection_metrics(pred[0].numpy() > 0, mask[0].numpy() > 0)
            counts += (found.tp, found.fp, found.fn)
    assert calibration.cards.f1 == pytest.approx(Detection(*map(int, counts), 0.0).f1)


@pytest.mark.parametrize("thresholds, seeds, pairs", [
    ((0.3, 0.6), (None,), [(0.3, None), (0.5, None), (0.6, None)]),  # the cards' 0.5 is always scored
    ((0.5, 0.3), (None, 0.4, 0.9), [(0.3, None), (0.3, 0.4), (0.3, 0.9), (0.5, None), (0.5, 0.9)]),  # 0.4 < 0.5
    ((0.6,), (0.9,), [(0.5, None), (0.6, 0.9)]),
])
def test_every_threshold_and_seed_pair_is_scored_once_but_a_seed_below_its_threshold(fold_model, other_fold,
                                                                                   thresholds, seeds, pairs):
    calibration = calibrate_out_of_fold([other_fold], thresholds, seeds, tta="none")
    assert [(c.threshold, c.seed_threshold) for c in calibration.cuts] == pairs
    assert calibration.folds == (1,) and calibration.missing == (0,)
    assert all(0 <= c.dice <= 1 and 0 <= c.dice_per_tile <= 1 for c in calibration.cuts)


@pytest.mark.parametrize("thresholds, seeds, tta, message", [
    ((0.0,), (None,), "none", r"thresholds: 0\.0 is not a probability cut in \(0, 1\)"),
    ((1.0,), (None,), "none", r"thresholds: 1\.0 is not"),
    ((float("nan"),), (None,), "none", r"thresholds: nan is not"),
    ((True,), (None,), "none", r"thresholds: True is not"),
    ((None,), (None,), "none", r"thresholds: None is not"),
    ((), (None,), "none", r"thresholds: give at least one cut"),
    ((0.4,), (1.5,), "none", r"seeds: 1\.5 is not a probability cut"),
    ((0.4,), (None,), "spin", r"unknown TTA 'spin'; valid names: none, flip, flip2, d4"),
])
def test_cuts_that_are_not_probabilities_are_refused(fold_model, thresholds, seeds, tta, message):
    with pytest.raises(ConfigError, match=message):
        calibrate_out_of_fold([fold_model[0]], thresholds, seeds, tta=tta)


@pytest.mark.parametrize("args, code, pattern", [
    (["--thresholds", "0.4,0.5", "--seeds", "none,0.9", "--tta", "none"], 0,
     r"out of fold: folds 0, 1 of 2, \d+ tiles, TTA none\n"
     r" *threshold +seed cut +Dice +per tile +F1 +fold 0 +fold 1\n"
     r" *0\.4 +- +(0\.\d{4} +){2}[01]\.\d{3} +0\.\d{4} +0\.\d{4}\n"
     r" *0\.4 +0\.9 +(0\.\d{4} +){2}[01]\.\d{3} +0\.\d{4} +0\.\d{4}\n"
     r" *0\.5 +- +(0\.\d{4} +){2}[01]\.\d{3} +0\.\d{4} +0\.\d{4}  the cards'\n"
     r" *0\.5 +0\.9 +(0\.\d{4} +){2}[01]\.\d{3} +0\.\d{4} +0\.\d{4}\n"
     r"best: (--threshold 0\.5, the cards' own: Dice 0\.\d{4} pooled out of fold|--threshold 0\.[45]"
     r"( --seed-threshold 0\.9)?: Dice 0\.\d{4} pooled out of fold, \+0\.\d{4} over the cards' 0\.5, above it on "
     r"[0-2] of 2 folds)\n"),
    (["--thresholds", "0.4,1.5"], 2, r"thresholds: 1\.5 is not a probability cut in \(0, 1\)"),
])
def test_the_calibrate_command(fold_model, other_fold, capsys, args, code, pattern):
    assert main(["calibrate", str(fold_model[0]), str(other_fold), *args]) == code
    captured = capsys.readouterr()
    assert re.search(pattern, captured.out if code == 0 else captured.err)
