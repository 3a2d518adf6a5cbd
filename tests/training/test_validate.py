import json
import shutil

import pytest
import torch

from hubkit.cli.main import main
from hubkit.errors import CardError, DataError
from hubkit.models import average_models, zoo
from hubkit.training import TrainConfig, train_fold
from hubkit.training.validate import held_out_tiles, record_fold_score, validate_fold_model


@pytest.fixture(scope="module")
def fold_model(tiny_tiles, tmp_path_factory):
    """A model `hubkit train` saved for fold 0 of the tiny tile set, with the scores the trainer gave it."""
    out = tmp_path_factory.mktemp("trained")
    cfg = TrainConfig(tiles=str(tiny_tiles), out=str(out), name="t", crop=96, batch_size=4, epochs=1,
                      samples_per_epoch=8, folds=2, workers=0, strength=0.0, device="cpu", pretrained="")
    result = train_fold(cfg, fold=0, progress=False)
    return out / "t-fold0", result


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
