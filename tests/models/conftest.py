"""Fixtures of the model tests."""

import pytest

from hubkit.models import create_model, zoo
from tests.helpers import tiny_card


@pytest.fixture()
def saved(tmp_path):
    zoo.save(create_model("Unet", "resnet18"), tiny_card(), tmp_path / "m")
    return tmp_path / "m"
