import json
import shutil
import tarfile

import pytest

from hubkit.cli import main
from hubkit.errors import CardError, MissingInputError, OutputError
from hubkit.kaggle.datasets import SOURCE_ARCHIVE, pack_source, pack_zoo
from hubkit.models.registry import create_model
from hubkit.models.zoo import default_zoo_dir, find_cards, load_zoo, save
from tests.helpers import tiny_card


def test_pack_zoo_writes_a_flat_folder_that_loads_like_the_zoo(tmp_path):
    assert main(["pack-zoo", str(default_zoo_dir()), str(tmp_path / "ds"), "--dataset-id", "me/hubkit-zoo"]) == 0
    assert json.loads((tmp_path / "ds" / "dataset-metadata.json").read_text())["id"] == "me/hubkit-zoo"
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == [
        "dataset-metadata.json", "unet-lite0-s2-soup.card.json", "unet-lite0-s2-soup.safetensors"]  # no folder
    packed, original = load_zoo(tmp_path / "ds"), load_zoo(default_zoo_dir())  # sha256 checked on load
    assert packed.names == original.names
    for one, other in zip(packed.members, original.members):
        a, b = one.model.state_dict(), other.model.state_dict()
        assert all((a[k] == b[k]).all() for k in a)


def test_pack_zoo_flattens_many_models_and_refuses_twins(tmp_path):
    zoo = tmp_path / "zoo"
    for name in ("a", "b"):
        save(create_model("Unet", "resnet18"), tiny_card(name=name), zoo / "deep" / name)
    cards = pack_zoo(zoo, tmp_path / "flat", "me/hubkit-zoo")
    assert [c.name for c in cards] == ["a.card.json", "b.card.json"]
    assert [c.name for c in find_cards(tmp_path / "flat")] == ["a.card.json", "b.card.json"]
    shutil.copytree(zoo / "deep" / "a", zoo / "again" / "a")
    with pytest.raises(CardError, match="two models named 'a'"):
        pack_zoo(zoo, tmp_path / "flat2", "me/hubkit-zoo")


@pytest.mark.parametrize("case, error", [("no zoo", MissingInputError), ("out has folders", OutputError)])
def test_pack_zoo_refusals(tmp_path, case, error):
    out = tmp_path / "out"
    if case == "out has folders":
        (out / "old-model").mkdir(parents=True)
    zoo = tmp_path / "nothing" if case == "no zoo" else default_zoo_dir()
    with pytest.raises(error):
        pack_zoo(zoo, out, "me/hubkit-zoo")


def test_pack_source_archives_a_tree_that_builds(tmp_path):
    from hubkit.kaggle.wheelhouse import build_wheelhouse, source_dir

    archive = pack_source(source_dir(), tmp_path / "ds", "me/hubkit-source")
    assert archive.name == SOURCE_ARCHIVE
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["dataset-metadata.json", SOURCE_ARCHIVE]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert all(n.startswith("hubkit-source/") and "__pycache__" not in n for n in names)
        tar.extractall(tmp_path / "unpacked", filter="data")
    (wheel,) = build_wheelhouse(tmp_path / "wheels", source=tmp_path / "unpacked" / "hubkit-source", download=False)
    assert wheel.name.startswith("hubkit-")
    with pytest.raises(MissingInputError, match="not a hubkit source tree"):
        pack_source(tmp_path, tmp_path / "ds2", "me/hubkit-source")
