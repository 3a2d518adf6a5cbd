"""Fixtures of the training tests."""

import shutil

import pytest

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
