"""Fixtures of the training tests."""

import shutil

import pytest

from hubkit.models import zoo
from hubkit.training import TrainConfig, train_fold
from hubkit.training.prep import prepare_tile_folder, write_index


@pytest.fixture(scope="module")
def tiny_tiles(data_dir, tmp_path_factory):
    """Eight real Vanderbilt tiles in two regions, at 1/4 scale."""
    src = data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200"
    folder = tmp_path_factory.mktemp("src")
    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    stems = sorted(p.stem for p in (src / "images").glob("*.jpg"))
    for stem in stems[:4] + stems[-4:]:
        shutil.copy(src / "images" / f"{stem}.jpg", folder / "images")
        shutil.copy(src / "masks" / f"{stem}.png", folder / "masks")
    out = tmp_path_factory.mktemp("tiles")
    write_index(out, prepare_tile_folder(folder, out, "vanderbilt", scale=4.0, group_size=100))
    return out


#: Four real AIDPATH slides with both classes; three crops of each class from each.
CROP_SLIDES = ("SESCAM_1_0", "SESCAM_4_0", "SESCAM_6_0", "SESCAM_102")


@pytest.fixture(scope="module")
def tiny_crops(data_dir, tmp_path_factory):
    """24 real glomerulus crops (12 globally sclerotic) from 4 AIDPATH slides, in the crop set layout."""
    import pandas as pd

    src = data_dir / "aidpath-glomerulosclerosis-crops"
    labels = pd.read_csv(src / "labels.csv")
    picked = labels[labels["slide"].isin(CROP_SLIDES)].groupby(["slide", "label"]).head(3)
    out = tmp_path_factory.mktemp("crops")
    (out / "images").mkdir()
    (out / "masks").mkdir()
    for crop in picked["crop"]:
        shutil.copy(src / "images" / f"{crop}.jpg", out / "images")
        shutil.copy(src / "masks" / f"{crop}.png", out / "masks")
    picked.to_csv(out / "labels.csv", index=False)
    return out


@pytest.fixture(scope="module")
def fold_model(tiny_tiles, tmp_path_factory):
    """A model `hubkit train` saved for fold 0 of the tiny tile set, with the scores the trainer gave it."""
    out = tmp_path_factory.mktemp("trained")
    cfg = TrainConfig(tiles=str(tiny_tiles), out=str(out), name="t", crop=96, batch_size=4, epochs=1,
                      samples_per_epoch=8, folds=2, workers=0, strength=0.0, device="cpu", pretrained="")
    result = train_fold(cfg, fold=0, progress=False)
    return out / "t-fold0", result


@pytest.fixture(scope="module")
def other_fold(fold_model):
    """Fold 1 of the same split, trained beside fold 0 (the two together score every tile once)."""
    cfg = TrainConfig(**zoo.load(fold_model[0])[1].extra["config"])
    train_fold(cfg, fold=1, progress=False)
    return fold_model[0].parent / "t-fold1"
