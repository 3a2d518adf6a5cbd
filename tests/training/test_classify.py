import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from hubkit.errors import ConfigError, DataError
from hubkit.formats.metrics import best_threshold
from hubkit.models import zoo
from hubkit.models.card import ModelCard
from hubkit.training import TrainConfig, run
from hubkit.training.classify import crop_folds
from hubkit.training.crops import CropSet, read_crop_set


def _cfg(tiles, out, **kw) -> TrainConfig:
    base = dict(task="classify", architecture="Classifier", tiles=str(tiles), out=str(out), name="gs", pretrained="",
                tile_size=64, batch_size=4, epochs=1, max_steps=2, folds=2, train_folds=[0, 1], workers=0,
                device="cpu", licence="CC BY-NC-SA 4.0")
    return TrainConfig(**{**base, **kw})


def test_a_classify_run_validates_each_crop_once_by_slide_and_ships_a_classifier(tiny_crops, tmp_path):
    results = run(_cfg(tiny_crops, tmp_path, fit_all=True, inputs="rgb+mask"), progress=False)
    oof = pd.read_csv(tmp_path / "gs-oof.csv")
    labels = pd.read_csv(tiny_crops / "labels.csv")
    assert sorted(oof["crop"]) == sorted(labels["crop"])  # every crop validated exactly once
    assert (oof.groupby("slide")["fold"].nunique() == 1).all()  # a slide never straddles folds
    assert [r["fold"] for r in results] == [0, 1] and all(0 <= r["auc"] <= 1 for r in results)
    cv = pd.read_csv(tmp_path / "gs-cv.csv")
    assert list(cv["crops"]) == [r["crops"] for r in results] and cv["crops"].sum() == len(labels)
    model, card = zoo.load(tmp_path / "gs")
    assert (card.kind, card.inputs, card.class_names, card.licence) == ("classifier", "rgb+mask", ["sclerotic"],
                                                                        "CC BY-NC-SA 4.0")
    expected = best_threshold((oof["label"] == "sclerotic").astype(int), oof["p"])
    assert card.threshold == pytest.approx(expected, abs=1e-4)
    assert [f["fold"] for f in card.extra["folds"]] == [0, 1]
    with torch.inference_mode():
        assert model(torch.rand(2, 4, 64, 64)).shape == (2, 1)
    fold_card = ModelCard.read(tmp_path / "gs-fold1" / "card.json")
    assert fold_card.cv_score == pytest.approx(results[1]["auc"], abs=1e-5) and fold_card.threshold == 0.5


def test_the_real_crop_set_splits_by_slide_with_both_classes_in_every_fold(data_dir):
    table = read_crop_set(data_dir / "aidpath-glomerulosclerosis-crops", "sclerotic")
    cfg = _cfg(data_dir / "aidpath-glomerulosclerosis-crops", "out", folds=5, train_folds=[0, 1, 2, 3, 4])
    fold_of = crop_folds(table, cfg)
    per_slide = pd.Series(fold_of).groupby(table["slide"].to_numpy()).nunique()
    assert (per_slide == 1).all() and len(per_slide) == 27
    for fold in range(5):
        assert set(table["target"][fold_of == fold]) == {0, 1}


def test_a_fold_without_both_classes_is_refused(tiny_crops, tmp_path):
    one_class = tmp_path / "crops"
    shutil.copytree(tiny_crops, one_class)
    labels = pd.read_csv(one_class / "labels.csv")
    keep = labels[(labels["slide"] != "SESCAM_4_0") | (labels["label"] == "sclerotic")]
    keep = keep[(keep["slide"] == "SESCAM_4_0") | (keep["label"] == "non_sclerotic")]
    keep.to_csv(one_class / "labels.csv", index=False)  # sclerotic crops only on one slide
    with pytest.raises(DataError, match="hold one class only"):
        crop_folds(read_crop_set(one_class, "sclerotic"), _cfg(one_class, tmp_path))


def _break(folder, how: str) -> None:
    labels = pd.read_csv(folder / "labels.csv")
    first = labels["crop"].iloc[0]
    if how == "no labels.csv":
        (folder / "labels.csv").unlink()
    elif how == "no slide column":
        labels.drop(columns="slide").to_csv(folder / "labels.csv", index=False)
    elif how == "a crop twice":
        pd.concat([labels, labels.head(1)]).to_csv(folder / "labels.csv", index=False)
    elif how == "three labels":
        labels.assign(label=["a", "b", "sclerotic"] * (len(labels) // 3)).to_csv(folder / "labels.csv", index=False)
    elif how == "no positive crops":
        labels.assign(label="non_sclerotic").to_csv(folder / "labels.csv", index=False)
    elif how == "a path as crop name":
        labels.assign(crop=["../escape"] + list(labels["crop"].iloc[1:])).to_csv(folder / "labels.csv", index=False)
    elif how == "a missing image":
        (folder / "images" / f"{first}.jpg").unlink()
    elif how == "a missing mask":
        (folder / "masks" / f"{first}.png").unlink()


@pytest.mark.parametrize("how, message", [
    ("no labels.csv", "no such file"),
    ("no slide column", r"missing columns \['slide'\]"),
    ("a crop twice", "crops listed twice"),
    ("three labels", "a classifier needs two"),
    ("no positive crops", "a classifier needs two, one of them 'sclerotic'"),
    ("a path as crop name", "plain file names"),
    ("a missing image", "no image for crop"),
    ("a missing mask", "no mask"),
])
def test_a_broken_crop_set_is_refused_naming_the_file(tiny_crops, tmp_path, how, message):
    folder = tmp_path / "crops"
    shutil.copytree(tiny_crops, folder)
    _break(folder, how)
    with pytest.raises(DataError, match=message) as err:
        read_crop_set(folder, "sclerotic")
    assert str(folder) in str(err.value)


@pytest.mark.parametrize("fields, message", [
    (dict(task="classify"), "task 'classify' cannot train architecture 'Unet'"),
    (dict(architecture="Classifier"), "task 'segment' cannot train architecture 'Classifier'"),
    (dict(inputs="rgb+mask"), "inputs 'rgb\\+mask' is for the classify task"),
    (dict(task="classify", architecture="Classifier", inputs="mask"), "inputs"),
    (dict(task="detect"), "task"),
])
def test_classify_settings_are_checked(fields, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(tiles="t", **fields)


def test_crops_augment_reproducibly_and_keep_the_mask_on_the_glomerulus(tiny_crops):
    table = read_crop_set(tiny_crops, "sclerotic")
    ds = CropSet(table, 96, (0.5,) * 3, (0.5,) * 3, with_mask=True, strength=1.0, seed=3)
    first, again = ds[5][0], ds[5][0]
    ds.set_epoch(1)
    other = ds[5][0]
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.shape == (4, 96, 96) and set(np.unique(first[3].numpy())) <= {0.0, 1.0}
    assert ds[0][1].item() == float(table["target"].iloc[0])
