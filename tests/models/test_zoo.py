import json

import pytest
import torch

from hubkit.errors import CardError
from hubkit.models import create_model, zoo
from hubkit.models.card import CARD_FILE
from tests.helpers import tiny_card


def test_the_default_zoo_is_the_soup_of_the_starter_models_in_the_repository():
    from pathlib import Path

    members = zoo.load_zoo(zoo.default_zoo_dir()).members  # sha256 checked on load
    assert [m.card.name for m in members] == ["unet-lite0-s2-soup"]
    soup = members[0]
    assert soup.card.scale == 2 and soup.card.extra["fold"] == 3 and soup.card.cv_score > 0.9  # its parents' fold
    assert (zoo.default_zoo_dir() / soup.card.name / soup.card.weights_file).stat().st_size < 20e6
    parents = zoo.load_zoo(Path(__file__).resolve().parents[2] / "models" / "starter").members
    recorded = [(p["name"], p["sha256"]) for p in soup.card.extra["soup"]]
    assert [(p.card.name, p.card.sha256) for p in parents] == recorded
    assert all(p.card.cv_score > 0.9 and p.card.extra["fold"] == 3 for p in parents)
    states = [p.model.state_dict() for p in parents]
    for key, value in soup.model.state_dict().items():  # the equal-weight mean, to float16's precision
        if value.is_floating_point():
            assert torch.allclose(value, (states[0][key] + states[1][key]) / 2, rtol=2e-3, atol=1e-4), key


@pytest.mark.parametrize("folder, folds, fold3_twin", [
    ("models/folds", [0, 1, 2, 3], "hubkit/models/builtin/unet-lite0-s2-soup"),  # fold 3's soup is the default zoo
    ("models/lite2-folds", [0, 1, 2, 3], "models/lite2/unet-lite2-s2-soup"),  # the larger encoder's four
])
def test_a_fold_zoo_holds_one_soup_per_fold_of_the_default_zoos_split(folder, folds, fold3_twin):
    from pathlib import Path

    from hubkit.models.card import SPLIT_KEYS

    repo = Path(__file__).resolve().parents[2]
    members = zoo.load_zoo(repo / folder).members  # sha256 checked on load
    default = zoo.load_zoo(zoo.default_zoo_dir()).members[0].card
    assert [m.card.extra["fold"] for m in members] == folds
    splits = [{key: m.card.extra["config"][key] for key in (*SPLIT_KEYS, "sources_valid")} for m in members]
    assert all(split == {key: default.extra["config"][key] for key in splits[0]} for split in splits)
    assert members[-1].card.sha256 == zoo.load_zoo(repo / fold3_twin).members[0].card.sha256
    assert len({m.card.encoder for m in members}) == 1
    assert all(m.card.cv_score > 0.88 and len(m.card.extra["soup"]) == 2 for m in members)
    assert all(m.card.threshold == default.threshold for m in members)


def test_save_load_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(1)
    model = create_model("FPN", "resnet18").eval()
    card_path = zoo.save(model, tiny_card(architecture="FPN", training_data="unit test"), tmp_path / "m1")
    doc = json.loads(card_path.read_text())
    assert doc["format"] == "hubkit-model-card/1" and len(doc["sha256"]) == 64 and doc["name"] == "m1"
    loaded, card = zoo.load(tmp_path / "m1")
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert card.scale == 2 and card.training_data == "unit test" and not loaded.training


def test_float16_weights_are_half_the_size_and_load_as_float32(tmp_path):
    model = create_model("Unet", "resnet18").eval()
    zoo.save(model, tiny_card(), tmp_path / "f32")
    zoo.save(model, tiny_card(), tmp_path / "f16", dtype="float16")
    size = lambda d: (d / "model.safetensors").stat().st_size  # noqa: E731
    assert size(tmp_path / "f16") < 0.55 * size(tmp_path / "f32")
    half, card = zoo.load(tmp_path / "f16")
    assert card.dtype == "float16" and next(half.parameters()).dtype == torch.float32
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(x), half(x), atol=0.05)


def test_changed_weights_fail_the_sha256_check(saved):
    weights = saved / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(CardError, match=r"model\.safetensors: sha256 does not match"):
        zoo.load(saved)


def test_missing_weights_are_named(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(CardError, match=r"model\.safetensors: weight file named by .*card\.json is missing"):
        zoo.load(saved)


def test_missing_card_is_named(tmp_path):
    with pytest.raises(CardError, match=r"card\.json: model card not found"):
        zoo.load(tmp_path)


def test_weights_of_another_architecture_are_refused(saved):
    card = json.loads((saved / CARD_FILE).read_text())
    card["encoder"], card["sha256"] = "resnet34", ""
    (saved / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CardError, match="do not fit Unet/resnet34"):
        zoo.load(saved)


def test_load_zoo_finds_cards_at_any_depth(tmp_path):
    # Kaggle mounts look like /kaggle/input/<dataset>/<version>/<anything>/model
    for i, where in enumerate(["a/model", "b/1/2/other", "c"]):
        zoo.save(create_model("Unet", "resnet18"), tiny_card(name=f"m{i}"), tmp_path / where)
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "config.json").write_text("{}")
    assert len(zoo.find_cards(tmp_path)) == 3
    models = zoo.load_zoo(tmp_path, names=["m2", "m0"])
    assert models.names == ["m2", "m0"]
    with pytest.raises(CardError, match=r"no segmenter models named \[.m9.\]; found \['m0', 'm1', 'm2'\]"):
        zoo.load_zoo(tmp_path, names=["m9"])
    with pytest.raises(CardError, match=r"no model card \(card.json or \*.card.json\) found"):
        zoo.load_zoo(tmp_path / "noise")


@pytest.mark.parametrize("links", [["loop"], ["loop", "again"]])
def test_links_back_up_the_tree_neither_loop_nor_list_a_card_twice(tmp_path, links):
    zoo.save(create_model("Unet", "resnet18"), tiny_card(name="m"), tmp_path / "zoo" / "m")
    for name in links:
        (tmp_path / "zoo" / "m" / name).symlink_to(tmp_path / "zoo")
    assert zoo.find_cards(tmp_path / "zoo") == [tmp_path / "zoo" / "m" / "card.json"]
    assert zoo.load_zoo(tmp_path / "zoo").names == ["m"]


def test_two_models_of_one_name_are_refused(tmp_path):
    for where in ("a", "b"):
        zoo.save(create_model("Unet", "resnet18"), tiny_card(name="same"), tmp_path / where)
    with pytest.raises(CardError, match="two models named 'same'"):
        zoo.load_zoo(tmp_path)


def test_the_mit_package_ships_no_weights_under_other_terms():
    from hubkit.models.card import ModelCard

    cards = zoo.find_cards(zoo.default_zoo_dir())
    assert cards and all(ModelCard.read(p).licence == "" for p in cards)  # "" = hubkit's MIT


@pytest.mark.parametrize("given, expected", [
    (["zoo/b", "zoo/a"], ["zoo/b", "zoo/a"]),  # model folders stand for themselves, in the order given
    (["zoo/a/card.json"], ["zoo/a/card.json"]),  # so do card files
    (["zoo"], ["zoo/a/card.json", "zoo/b/card.json", "zoo/deep/c/card.json"]),  # a zoo: its models, by name
    (["zoo/b", "zoo/deep"], ["zoo/b", "zoo/deep/c/card.json"]),
    (["absent"], ["absent"]),  # left for loading to name
])
def test_model_cards_expand_zoo_folders_into_their_models(tmp_path, given, expected):
    for name, where in (("a", "zoo/a"), ("b", "zoo/b"), ("c", "zoo/deep/c")):
        zoo.save(create_model("Unet", "resnet18"), tiny_card(name=name), tmp_path / where)
    assert zoo.model_cards([tmp_path / g for g in given]) == [tmp_path / e for e in expected]


def test_a_folder_with_no_model_is_refused_by_name(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CardError, match=r"empty: no model card \(card.json or \*.card.json\) found"):
        zoo.model_cards([tmp_path / "empty"])
