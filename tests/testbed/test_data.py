"""The real tissue that ships with hubkit: present, checked, and refused by name when damaged."""

import shutil
from pathlib import Path

import pytest

from hubkit.errors import MissingInputError
from hubkit.slides import find_tile_pairs, read_mask
from hubkit.testbed import SAMPLE_TILES, STARTER_HELD_OUT, sample_tiles_dir

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_tiles_are_real_held_out_pairs_with_glomeruli():
    pairs = find_tile_pairs(sample_tiles_dir())
    assert [image.stem for image, _ in pairs] == ["train_080", "train_081", "train_092", "train_093", "train_094"]
    first, last = STARTER_HELD_OUT
    assert all(first <= image.stem <= last for image, _ in pairs)  # never trained on by the shipped models
    for _, mask in pairs:
        m = read_mask(mask)
        assert m.shape == (1200, 1600) and 0.01 < m.mean() < 0.2
    assert "MIT" in (SAMPLE_TILES / "SOURCE.md").read_text()


@pytest.fixture(scope="module")
def starter_rows(tmp_path_factory):
    """The starter's tile set as `data_prep/train_starter.sh` makes it (index rows), from the shared data."""
    from hubkit.testbed import find_data_dir
    from hubkit.testbed.data import VANDERBILT
    from hubkit.training.prep import prepare_tile_folder

    data = find_data_dir()
    if data is None:
        pytest.skip("needs the shared real data (../shared/data or $HUBKIT_DATA) to rebuild the starter's tile set")
    out = tmp_path_factory.mktemp("starter")
    return data, (prepare_tile_folder(data / VANDERBILT, out, "vanderbilt", 1.69)
                  + prepare_tile_folder(data / "aidpath-pas-glomeruli-1024", out, "aidpath", 3.09))


@pytest.mark.parametrize("card_file", [
    "hubkit/models/builtin/unet-lite0-s2-soup/card.json",  # the default zoo
    "models/starter/unet-lite0-s2/card.json",  # its parents
    "models/starter/unet-lite0-s2-stain/card.json",
    "models/lite2/unet-lite2-s2-soup/card.json",  # another encoder, the same fold
])
def test_the_held_out_range_is_the_shipped_models_validation_fold(starter_rows, card_file):
    """STARTER_HELD_OUT must name exactly the Vanderbilt tiles a shipped model validated on, rebuilt
    from its card's split (the tile set `data_prep/train_starter.sh` makes, folds, seed), so a score on
    that range is a score on tissue the model never trained on."""
    from hubkit.models.card import ModelCard
    from hubkit.testbed.data import VANDERBILT
    from hubkit.training.prep import folds_by_group

    data, rows = starter_rows
    card = ModelCard.read(REPO / card_file)
    config = card.extra["config"]
    folds = folds_by_group([r["group"] for r in rows], config["folds"], config["seed"])
    held_out = sorted(Path(r["image"]).stem.removeprefix("vanderbilt_") for r, f in zip(rows, folds)
                      if f == card.extra["fold"] and r["source"] == "vanderbilt")
    first, last = STARTER_HELD_OUT
    in_range = sorted(image.stem for image, _ in find_tile_pairs(data / VANDERBILT) if first <= image.stem <= last)
    assert held_out == in_range and len(held_out) == card.extra["valid_tiles"]


def _damage_byte(folder):
    path = folder / "images" / "train_081.jpg"
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "masks" / "train_092.png").unlink(), "train_092.png: missing sample tile file"),
    (_damage_byte, "train_081.jpg: sha256 differs"),
    (lambda f: (f / "SHA256SUMS.csv").unlink(), "SHA256SUMS.csv: missing"),
    (lambda f: (f / "SHA256SUMS.csv").write_text("path,sha256\nimages/../../x.jpg,00\n"), "missing sample tile file"),
    (lambda f: (f / "SHA256SUMS.csv").write_text("path,sha256\n/etc/hostname,00\n"), "missing sample tile file"),
])
def test_a_damaged_install_is_refused_naming_the_file(tmp_path, damage, message):
    folder = tmp_path / "sample"
    shutil.copytree(SAMPLE_TILES, folder)
    for p in folder.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    damage(folder)
    with pytest.raises(MissingInputError, match=message):
        sample_tiles_dir(folder)
