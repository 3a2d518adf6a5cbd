"""An image classifier built from the same encoders as the segmentation models.

``Classifier`` is an smp encoder (any ``tu-<timm model>`` included, so the offline ImageNet wheels
of `hubkit.models.pretrained` fill it) followed by global average pooling, dropout and a linear
layer. It takes the same constructor arguments as the smp architectures, so the one registry
(`hubkit.models.registry`) builds it from a card's names like any other model.

Its input is fixed here too: `crop_glomerulus` cuts a glomerulus as the training crops were cut,
`classifier_input` turns a crop into the tensor the model takes.
"""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np
import segmentation_models_pytorch as smp
import torch
from torch import nn

from hubkit.errors import ConfigError, DataError, ModelOutputError

__all__ = ["Classifier", "CROP_SIZE", "mask_box", "crop_glomerulus", "classifier_input", "crop_probabilities"]


class Classifier(nn.Module):
    """Encoder, global average pooling, dropout, linear: ``(N, in_channels, H, W)`` -> ``(N, classes)`` logits.

    Args:
        encoder_name: an smp encoder name or ``"tu-<timm model>"``.
        encoder_weights: must be None (hubkit never downloads; see `hubkit.models.pretrained`).
        classes: output logits.
        in_channels: input channels (3 = RGB; 4 = RGB and the glomerulus mask).
        dropout: dropout before the linear layer (training only).
    """

    def __init__(self, encoder_name: str, encoder_weights: Optional[str] = None, classes: int = 1,
                 in_channels: int = 3, dropout: float = 0.2):
        super().__init__()
        if encoder_weights is not None:
            raise ConfigError("hubkit builds encoders without downloaded weights; load offline ones instead")
        self.encoder = smp.encoders.get_encoder(encoder_name, in_channels=in_channels, weights=None)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(self.encoder.out_channels[-1], classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)[-1])


#: The side of the square crop a glomerulus classifier sees (the AIDPATH crops' size).
CROP_SIZE = 224


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(row0, col0, row1, col1)`` of the non-zero pixels of a ``(h, w)`` mask (ends exclusive).

    Raises:
        DataError: an empty mask.
    """
    rows, cols = np.flatnonzero(np.any(mask, axis=1)), np.flatnonzero(np.any(mask, axis=0))
    if not len(rows):
        raise DataError("an empty glomerulus mask has no bounding box")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def crop_glomerulus(image: np.ndarray, mask: np.ndarray, size: int = CROP_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A glomerulus as the classifier's training crops were made: its mask's bounding box, resized
    to ``size`` x ``size`` (the aspect ratio is not kept, as in the AIDPATH crops).

    Training (`hubkit.training.crops`) and `hubkit.analysis.sclerosis` both cut through this, so a
    glomerulus found on a slide is fed exactly as the crops the model learnt from.

    Args:
        image: ``(h, w, 3)`` uint8 RGB around the glomerulus.
        mask: ``(h, w)``, non-zero = this glomerulus.
        size: output side in pixels.

    Returns:
        ``(size, size, 3)`` uint8 RGB and ``(size, size)`` uint8 0/1 mask. Shrinking uses area
        averaging, enlarging bilinear interpolation; the mask nearest neighbour.
    """
    if image.ndim != 3 or image.shape[:2] != np.shape(mask):
        raise DataError(f"image {image.shape} and mask {np.shape(mask)} must be (h, w, 3) and (h, w)")
    r0, c0, r1, c1 = mask_box(mask)
    image, mask = image[r0:r1, c0:c1], (np.asarray(mask)[r0:r1, c0:c1] != 0).astype(np.uint8)
    shrink = (r1 - r0) >= size and (c1 - c0) >= size
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    image = cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interpolation)
    mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
    return image, mask


def classifier_input(image: np.ndarray, mask: Optional[np.ndarray], mean: Sequence[float], std: Sequence[float],
                     with_mask: bool) -> np.ndarray:
    """One crop as the classifier takes it: ``(C, H, W)`` float32, RGB as ``(rgb / 255 - mean) / std``,
    then (``with_mask``) the 0/1 mask as a fourth channel."""
    x = (image.astype(np.float32) / 255 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    x = x.transpose(2, 0, 1)
    if with_mask:
        if mask is None:
            raise DataError("this classifier takes the glomerulus mask as a fourth channel; no mask was given")
        x = np.concatenate([x, (np.asarray(mask) != 0)[None].astype(np.float32)])
    return np.ascontiguousarray(x)


@torch.inference_mode()
def crop_probabilities(model: nn.Module, inputs: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """Positive-class probabilities of classifier inputs (`classifier_input`, stacked).

    Args:
        model: a `Classifier` with one logit (the caller sets eval mode and the device).
        inputs: ``(N, C, H, W)`` float32 on any device.
        batch_size: crops per forward pass.

    Returns:
        ``(N,)`` float64 probabilities in [0, 1].

    Raises:
        ModelOutputError: the model produced NaN or infinite logits.
    """
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(inputs), batch_size):
        logits = model(inputs[start : start + batch_size].to(device)).float()[:, 0]
        if not torch.isfinite(logits).all():
            raise ModelOutputError("the classifier produced NaN or infinite logits")
        out.append(torch.sigmoid(logits).cpu().numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)
