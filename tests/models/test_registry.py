import pytest
import torch

from hubkit.errors import CardError
from hubkit.models import ARCHITECTURES, create_model
from hubkit.models.registry import CLASSIFIER_ARCHITECTURES


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_builds_and_runs_on_cpu(architecture):
    torch.manual_seed(0)
    model = create_model(architecture, "resnet18", classes=2).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 128, 128))
    expected = (1, 2) if architecture in CLASSIFIER_ARCHITECTURES else (1, 2, 128, 128)
    assert out.shape == expected and torch.isfinite(out).all()


def test_timm_universal_encoder_builds():
    model = create_model("Unet", "tu-tf_efficientnet_lite0").eval()
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 1, 64, 64)


@pytest.mark.parametrize(
    "architecture, encoder, message",
    [
        ("Unet3000", "resnet18",
         "valid names: Classifier, DeepLabV3Plus, FPN, Linknet, MAnet, PAN, Unet, UnetPlusPlus"),
        ("Unet", "resnet19", "unknown encoder 'resnet19'; valid names: .*resnet18"),
        ("Unet", "tu-not_a_model", "unknown timm encoder"),
    ],
)
def test_unknown_names_list_the_valid_ones(architecture, encoder, message):
    with pytest.raises(CardError, match=message):
        create_model(architecture, encoder)
