import json
import re
import shutil

import pytest
import torch

from hubkit.cli.main import main
from hubkit.errors import CardError, DataError
from hubkit.formats.metrics import dice_from_counts
from hubkit.models import average_models, zoo
from hubkit.training.validate import held_out_tiles, record_fold_score, validate_fold_model, validate_out_of_fold


def test_a_fold_model_scores_as_the_trainer_scored_it(fold_model):
    folder, result = fold_model
    score = validate_fold_model(folder)
    card = zoo.load(folder)[1]
    assert (score.fold, score.tiles) == (0, card.extra["valid_tiles"]) and score.dice > 0.05  # not an empty mask
    assert score.dice == pytest.approx(result["dice"], abs=2e-3) == pytest.approx(card.cv_score, abs=2e-3)
    assert score.dice_per_tile == pytest.approx(card.extra["dice_per_tile"], abs=2e-3)


def test_the_held_out_tiles_are_the_fold_the_trainer_validated_on_and_none_it_trained_on(fold_model, tiny_tiles):
    from hubkit.training import read_index, split_fold

    folder, result = fold_model
    card, valid, root = held_out_tiles(folder)
    index, _ = read_index(tiny_tiles)
    trained, expected = split_fold(index, 2, 0, 0)
    assert card.extra["fold"] == 0 and root == tiny_tiles and len(valid) == result["valid_tiles"]
    assert list(valid["image"]) == list(expected["image"])
    assert not set(valid["group"]) & set(trained["group"])


def test_a_soup_of_one_fold_is_scored_on_that_fold_and_the_score_recorded(fold_model, tmp_path):
    folder, _ = fold_model
    card_file = average_models([folder, folder], tmp_path / "soup")
    assert zoo.load(tmp_path / "soup")[1].cv_score is None
    score = validate_fold_model(tmp_path / "soup")
    weights_before = (tmp_path / "soup" / "model.safetensors").read_bytes()
    assert record_fold_score(tmp_path / "soup", score) == card_file
    soup, card = zoo.load(tmp_path / "soup")  # the sha256 still matches: only the card changed
    assert card.cv_score == round(score.dice, 5) and card.extra["dice_per_tile"] == round(score.dice_per_tile, 5)
    assert (tmp_path / "soup" / "model.safetensors").read_bytes() == weights_before
    assert score.dice == pytest.approx(validate_fold_model(folder).dice, abs=2e-3)  # the same weights, to fp16


@pytest.mark.parametrize("damage, error, message", [
    (lambda card: card["extra"].pop("fold"), CardError, r"card\.json: names no held-out fold"),
    (lambda card: card["extra"].pop("config"), CardError, r"card\.json: names no held-out fold"),
    (lambda card: card["extra"]["config"].pop("seed"), CardError, r"card\.json: names no held-out fold"),
    (lambda card: card["extra"]["config"].update(folds="4"), CardError, r"card\.json: names no held-out fold"),
    (lambda card: card["extra"]["config"].update(tiles="no/such/tiles"), DataError,
     r"card\.json: its tile set 'no/such/tiles' is not there"),
    (lambda card: card["extra"]["config"].update(sources_valid=["aidpath"]), DataError,
     r"no tile of fold 0 \(sources \['aidpath'\]\)"),
])
def test_a_model_without_known_held_out_tiles_is_refused_by_name(fold_model, tmp_path, damage, error, message):
    folder = tmp_path / "m"
    shutil.copytree(fold_model[0], folder)
    card = json.loads((folder / "card.json").read_text())
    damage(card)
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(error, match=message):
        validate_fold_model(folder)


@pytest.mark.parametrize("record", [False, True])
def test_the_validate_command(fold_model, tmp_path, capsys, record):
    folder = tmp_path / "m"
    shutil.copytree(fold_model[0], folder)
    card = json.loads((folder / "card.json").read_text())
    card["cv_score"] = None  # e.g. a soup's
    (folder / "card.json").write_text(json.dumps(card))
    assert main(["validate", str(folder), *(["--record"] if record else [])]) == 0
    out = capsys.readouterr().out
    assert f"{folder}: fold 0, {card['extra']['valid_tiles']} held-out tiles: Dice " in out
    assert ("recorded in" in out) == record
    recorded = json.loads((folder / "card.json").read_text())["cv_score"]
    assert (recorded is not None) == record


@pytest.mark.parametrize("device, message", [
    ("gpu", "unknown device 'gpu'; valid names: auto, cpu, cuda, cuda:N"),
    pytest.param("cuda", "torch sees no CUDA GPU here", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="a CUDA GPU is here")),
])
def test_the_validate_command_refuses_a_device_it_cannot_use(fold_model, capsys, device, message):
    assert main(["validate", str(fold_model[0]), "--device", device]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("folds, missing", [((0, 1), ()), ((1, 0), ()), ((1,), (0,))])
def test_out_of_fold_dice_pools_each_tile_scored_by_the_model_that_held_it_out(fold_model, other_fold, tiny_tiles,
                                                                              folds, missing):
    from hubkit.training import read_index

    folders = {0: fold_model[0], 1: other_fold}
    oof = validate_out_of_fold([folders[k] for k in folds])
    alone = [validate_fold_model(folders[k]) for k in folds]
    assert oof.folds == tuple(sorted(folds)) and oof.of == 2 and oof.missing == missing
    assert [s.fold for s in oof.scores] == list(folds) and [s.dice for s in oof.scores] == [s.dice for s in alone]
    assert oof.tiles == sum(s.tiles for s in alone)
    assert (oof.tiles == len(read_index(tiny_tiles)[0])) == (not missing)  # all folds: every tile, once
    assert oof.dice == pytest.approx(dice_from_counts(sum(s.intersection for s in alone), sum(s.total for s in alone)))
    assert min(s.dice for s in alone) <= oof.dice <= max(s.dice for s in alone) and oof.dice > 0.05
    assert oof.dice_per_tile == pytest.approx(sum(s.dice_per_tile * s.tiles for s in alone) / oof.tiles)


@pytest.mark.parametrize("second, damage, message", [
    ("fold 0", None, r"t-fold0/card\.json and .*t-fold0/card\.json: both held out fold 0; give one model per fold"),
    ("fold 1", lambda config: config.update(seed=1), r"m/card\.json: held out a fold of another split than "
                                                     r".*t-fold0/card\.json \(seed 1 vs 0\)"),
    ("fold 1", lambda config: config.update(folds=3), r"\(folds 3 vs 2\)"),
    ("fold 1", lambda config: config.update(sources_valid=["vanderbilt"]),
     r"\(validation sources \['vanderbilt'\] vs \[\]\)"),
    ("none", None, r"no model to score"),
])
def test_out_of_fold_refuses_models_that_do_not_split_one_set_of_tiles(fold_model, other_fold, tmp_path, second,
                                                                        damage, message):
    models = {"fold 0": [fold_model[0], fold_model[0]], "fold 1": [fold_model[0], tmp_path / "m"], "none": []}[second]
    shutil.copytree(other_fold, tmp_path / "m")
    if damage:
        card = json.loads((tmp_path / "m" / "card.json").read_text())
        damage(card["extra"]["config"])
        (tmp_path / "m" / "card.json").write_text(json.dumps(card))
        (tmp_path / "m" / "model.safetensors").write_bytes(b"not read: the cards are checked first")
    with pytest.raises(CardError, match=message):
        validate_out_of_fold(models)


@pytest.mark.parametrize("folds, last_line", [
    ((0, 1), r"out of fold: folds 0, 1 of 2, \d+ tiles: Dice 0\.\d{4} pooled, 0\.\d{4} per tile\n"),
    ((1,), r"out of fold: folds 1 of 2, \d+ tiles: .* per tile; fold 0 not given: not every tile is scored\n"),
])
def test_the_validate_command_pools_folds_with_oof(fold_model, other_fold, capsys, folds, last_line):
    folders = {0: fold_model[0], 1: other_fold}
    assert main(["validate", "--oof", *(str(folders[k]) for k in folds)]) == 0
    lines = capsys.readouterr().out.splitlines(keepends=True)
    assert [line.split(":")[0] for line in lines[:-1]] == [str(folders[k]) for k in folds]
    assert re.fullmatch(last_line, lines[-1])


def test_a_k_fold_zoo_folder_stands_for_its_fold_models(fold_model, other_fold, capsys):
    assert main(["validate", "--oof", str(fold_model[0]), str(other_fold)]) == 0
    by_folder = capsys.readouterr().out.splitlines()
    assert main(["validate", "--oof", str(fold_model[0].parent)]) == 0  # t-fold0 and t-fold1 are under it
    by_zoo = capsys.readouterr().out.splitlines()
    assert by_zoo[-1] == by_folder[-1] and by_zoo[-1].startswith("out of fold: folds 0, 1 of 2")
    assert [line.split(":")[0] for line in by_zoo[:-1]] == [str(f / "card.json") for f in (fold_model[0], other_fold)]
