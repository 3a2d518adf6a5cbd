"""Local competitions: which real tiles a competition is built from."""

import re

import pytest

from hubkit.errors import DataError
from hubkit.testbed import SMALL, STARTER_HELD_OUT, SlideSpec, make_competition, sample_tiles_dir


@pytest.mark.parametrize("tile_range, slides, sources", [
    (None, SMALL, ["train_080.jpg..train_092.jpg", "train_093.jpg..train_094.jpg"]),
    (STARTER_HELD_OUT, SMALL, ["train_080.jpg..train_092.jpg", "train_093.jpg..train_094.jpg"]),
    (("train_081", "train_093"), (SlideSpec(3, 3),), ["train_081.jpg..train_093.jpg"]),  # both ends kept
    (("train_092", "train_092"), (SlideSpec(1, 1),), ["train_092.jpg..train_092.jpg"]),
])
def test_slides_are_built_from_the_tiles_in_range_in_order(tmp_path, tile_range, slides, sources):
    table = make_competition(tmp_path, sample_tiles_dir(), slides, tile_range=tile_range)
    assert [s.split(" from ")[0].removeprefix("real tiles ") for s in table["source"]] == sources


@pytest.mark.parametrize("tile_range, message", [
    (("train_081", "train_093"), "3 tile pairs (images/ + masks/) from train_081 to train_093, the slides need 5"),
    (("train_240", "train_339"), "0 tile pairs (images/ + masks/) from train_240 to train_339, the slides need 5"),
])
def test_too_few_tiles_in_range_is_refused_naming_the_folder_and_range(tmp_path, tile_range, message):
    with pytest.raises(DataError, match=re.escape(f"{sample_tiles_dir()}: {message}")):
        make_competition(tmp_path / "comp", sample_tiles_dir(), SMALL, tile_range=tile_range)
    assert not any((tmp_path / "comp" / "test").glob("*"))  # no slide written
