import json

import pytest
import torch

from hubkit.cli.main import main
from hubkit.errors import CardError
from hubkit.models import create_model, zoo
from hubkit.models.soup import average_models
from tests.helpers import tiny_card


def _model(seed: int):
    torch.manual_seed(seed)
    model = create_model("Unet", "resnet18").eval()
    for module in model.modules():  # batch-norm statistics that differ between the models, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.num_batches_tracked.fill_(seed + 1)
    return model


@pytest.fixture
def parents(tmp_path):
    """Two saved models of one network with different weights (seeds 0 and 1) and thresholds 0.4 / 0.6."""
    return [zoo.save(_model(seed), tiny_card(name=f"p{seed}", threshold=t), tmp_path / f"p{seed}").parent
            for seed, t in ((0, 0.4), (1, 0.6))]


@pytest.mark.parametrize("weights, mix, threshold", [
    (None, (0.5, 0.5), 0.5),
    ((1, 3), (0.25, 0.75), 0.55),
    ((2, 2), (0.5, 0.5), 0.5),
])
def test_a_soup_is_the_weighted_mean_of_its_parents(parents, tmp_path, weights, mix, threshold):
    card_path = average_models(parents, tmp_path / "soup", weights=weights, dtype="float32")
    soup, card = zoo.load(card_path.parent)  # sha256 checked
    states = [zoo.load(p)[0].state_dict() for p in parents]
    for key, value in soup.state_dict().items():
        if value.is_floating_point():  # weights and batch-norm statistics
            expected = mix[0] * states[0][key] + mix[1] * states[1][key]
            assert torch.allclose(value, expected, atol=1e-6), key
        else:  # batch-norm step counts: the first parent's
            assert torch.equal(value, states[0][key]), key
    assert card.name == "soup" and card.threshold == pytest.approx(threshold) and card.cv_score is None
    assert [(p["name"], p["weight"]) for p in card.extra["soup"]] == [("p0", mix[0]), ("p1", mix[1])]
    assert [p["sha256"] for p in card.extra["soup"]] == [zoo.load(p)[1].sha256 for p in parents]
    assert "p0" in card.notes and "p1" in card.notes


SPLIT = {"tiles": "tiles/starter", "folds": 4, "seed": 0}


@pytest.mark.parametrize("extras, kept", [
    (({"fold": 3, "valid_tiles": 32, "config": SPLIT}, {"fold": 3, "valid_tiles": 32, "config": SPLIT}), True),
    (({"fold": 3, "config": SPLIT}, {"fold": 2, "config": SPLIT}), False),  # each saw the other's held-out tiles
    (({"fold": 3, "config": SPLIT}, {"fold": 3, "config": {**SPLIT, "seed": 1}}), False),  # another split
    (({"fold": 3, "config": SPLIT}, {"fold": 3, "config": {**SPLIT, "tiles": "tiles/other"}}), False),
    (({"fold": 3, "config": SPLIT}, {}), False),  # a parent of unknown training
])
def test_a_soup_keeps_a_held_out_fold_only_where_every_parent_held_out_the_same_tiles(tmp_path, extras, kept):
    folders = [zoo.save(_model(i), tiny_card(name=f"q{i}", extra=extra), tmp_path / f"q{i}").parent
               for i, extra in enumerate(extras)]
    card = zoo.load(average_models(folders, tmp_path / "soup"))[1]
    if kept:
        assert {k: card.extra[k] for k in ("fold", "valid_tiles", "config")} == extras[0]
    else:
        assert not {"fold", "valid_tiles", "config"} & set(card.extra)
    assert [p["name"] for p in card.extra["soup"]] == ["q0", "q1"]


def test_a_soup_of_one_model_twice_predicts_as_that_model(parents, tmp_path):
    average_models([parents[0], parents[0]], tmp_path / "same", dtype="float32")
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(zoo.load(tmp_path / "same")[0](x), zoo.load(parents[0])[0](x), atol=1e-5)


@pytest.mark.parametrize("change, message", [
    ({"encoder": "resnet34"}, r"encoder 'resnet34' differs from 'resnet18'"),
    ({"architecture": "FPN"}, r"architecture 'FPN' differs from 'Unet'"),
    ({"scale": 4.0}, r"scale 4.0 differs from 2"),
    ({"tile_size": 128}, r"tile_size 128 differs from 64"),
    ({"mean": (0.6, 0.4, 0.6)}, r"mean \(0.6, 0.4, 0.6\) differs"),
])
def test_models_of_another_network_or_use_are_refused_by_name(parents, tmp_path, change, message):
    fields = {"architecture": "Unet", "encoder": "resnet18", **change}
    other = create_model(fields["architecture"], fields["encoder"]).eval()
    card = zoo.save(other, tiny_card(name="other", **change), tmp_path / "other")
    with pytest.raises(CardError, match=message) as err:
        average_models([parents[0], tmp_path / "other"], tmp_path / "soup")
    assert str(card) in str(err.value) and str(parents[0]) in str(err.value)
    assert not (tmp_path / "soup").exists()


@pytest.mark.parametrize("models, weights, message", [
    (1, None, r"a soup needs two or more models, got 1"),
    (2, (1,), r"1 weights for 2 models"),
    (2, (1, 0), r"weights must all be positive"),
    (2, (1, -1), r"weights must all be positive"),
])
def test_bad_counts_and_weights_are_refused(parents, tmp_path, models, weights, message):
    with pytest.raises(CardError, match=message):
        average_models(parents[:models], tmp_path / "soup", weights=weights)


def test_a_changed_parent_fails_its_sha256_check(parents, tmp_path):
    weights = parents[1] / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(CardError, match="sha256 does not match"):
        average_models(parents, tmp_path / "soup")


@pytest.mark.parametrize("extra, code, expected", [
    ([], 0, "soup of 2 models"),
    (["--weights", "1,3"], 0, "soup of 2 models"),
    (["--weights", "1,x"], 2, "--weights '1,x': give comma-separated numbers"),
    (["--weights", "1"], 2, "1 weights for 2 models"),
])
def test_the_soup_command(parents, tmp_path, capsys, extra, code, expected):
    out = tmp_path / "cli-soup"
    assert main(["soup", *map(str, parents), "--out", str(out), "--name", "s", *extra]) == code
    printed = capsys.readouterr()
    assert expected in printed.out + printed.err
    if code == 0:
        assert json.loads((out / "card.json").read_text())["name"] == "s"
