import json

import pytest

from hubkit.errors import CardError
from hubkit.models import zoo
from hubkit.models.card import CARD_FILE


@pytest.mark.parametrize(
    "change, message",
    [
        ({"architecture": "Segformer9"}, "architecture 'Segformer9' is not one of"),
        ({"classes": 0}, "classes must be a whole number"),
        ({"classes": True}, "classes must be a whole number"),
        ({"classes": 3}, "class_names has 1 names for 3 classes"),
        ({"scale": 0.5}, "scale is a downscale factor"),
        ({"tile_size": 500}, "multiple of 32"),
        ({"std": [0.2, 0.0, 0.2]}, "std > 0"),
        ({"threshold": 1.5}, r"threshold must be in \(0, 1\)"),
        ({"format": "something-else"}, "not a hubkit model card"),
        ({"colour": "red"}, r"unknown fields \['colour'\]"),
        ({"name": "../../evil"}, "name must be a plain file name"),
        ({"name": "/abs"}, "name must be a plain file name"),
        ({"weights_file": "../../x.safetensors"}, "weights_file must be a plain file name"),
        ({"weights_file": ".."}, "weights_file must be a plain file name"),
        ({"weights_file": ""}, "weights_file is empty"),
    ],
)
def test_card_validation(saved, change, message):
    card = json.loads((saved / CARD_FILE).read_text())
    card.update(change)
    (saved / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CardError, match=message) as info:
        zoo.load(saved)
    assert "card.json" in str(info.value)
