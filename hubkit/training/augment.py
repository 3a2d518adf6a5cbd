"""Training augmentations: the 4th-place HuBMAP solution's set, built with albumentations.

Geometric transforms run on a crop 1.5x larger than the training tile and are then centre-cropped,
so rotations and shifts never pull padding into the tile. Image and mask move together; colour and
blur transforms touch the image only.
"""

from __future__ import annotations

import math
import os

import numpy as np

# albumentations asks PyPI for its latest version at import; hubkit never touches the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
from skimage.color import hed2rgb, rgb2hed  # noqa: E402

__all__ = ["CONTEXT", "context_size", "train_transforms", "valid_transforms", "hed_jitter", "HEDJitter",
           "crop_transforms"]

#: How much larger than the tile the crop fed to `train_transforms` is.
CONTEXT = 1.5


def context_size(tile: int) -> int:
    """Side of the crop to cut for a ``tile``-pixel training tile (a multiple of 32)."""
    return int(math.ceil(tile * CONTEXT / 32) * 32)


def train_transforms(tile: int, strength: float = 1.0, stain: float = 0.0) -> A.Compose:
    """Augmentations for a ``(context_size(tile),) * 2`` crop, returning a ``(tile, tile)`` one.

    Args:
        tile: output side in pixels.
        strength: 0 turns every transform off (only the centre crop remains); 1 is the full set.
        stain: `HEDJitter` sigma and bias (0 = no stain jitter).
    """
    p = max(0.0, min(1.0, strength))
    stain_jitter = [HEDJitter(sigma=stain, bias=stain, p=0.7 * p)] if stain > 0 else []
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5 * p),
            A.VerticalFlip(p=0.5 * p),
            A.RandomRotate90(p=p),
            A.Affine(scale=(0.85, 1.15), translate_percent=(-0.0625, 0.0625), rotate=(-45, 45),
                     interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                     border_mode=cv2.BORDER_REFLECT_101, p=0.8 * p),
            A.CenterCrop(tile, tile),
            *stain_jitter,
            A.OneOf([A.MotionBlur(blur_limit=(3, 7)), A.GaussianBlur(blur_limit=(3, 7)),
                     A.Defocus(radius=(1, 3))], p=0.3 * p),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.6 * p),
            A.RGBShift(r_shift_limit=15, g_shift_limit=15, b_shift_limit=15, p=0.4 * p),
            A.HueSaturationValue(hue_shift_limit=15, sat_shift_limit=25, val_shift_limit=15, p=0.5 * p),
            A.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.05, p=0.3 * p),
        ]
    )


def valid_transforms(tile: int) -> A.Compose:
    """No augmentation: the centre ``tile`` of the context crop."""
    return A.Compose([A.CenterCrop(tile, tile)])


def hed_jitter(rgb: np.ndarray, alpha, beta) -> np.ndarray:
    """Stain jitter (Tellez et al. 2018): each haematoxylin / eosin / DAB optical density scaled by
    ``alpha[i]`` and shifted by ``beta[i]`` (colour deconvolution, then back to RGB).

    Args:
        rgb: ``(h, w, 3)`` uint8.
        alpha, beta: 3 factors and 3 shifts (1 and 0 leave the image as it is, but for a few levels on
            near-white pixels, where the optical density saturates).
    """
    hed = rgb2hed(rgb)
    hed = hed * np.asarray(alpha, np.float64) + np.asarray(beta, np.float64)
    return (np.clip(hed2rgb(hed), 0, 1) * 255 + 0.5).astype(np.uint8)


class HEDJitter(A.ImageOnlyTransform):
    """`hed_jitter` with factors drawn from ``1 +- sigma`` and shifts from ``+- bias`` per stain."""

    def __init__(self, sigma: float = 0.05, bias: float = 0.05, p: float = 0.5):
        super().__init__(p=p)
        self.sigma, self.bias = sigma, bias

    def get_params(self) -> dict:
        return {"alpha": self.random_generator.uniform(1 - self.sigma, 1 + self.sigma, 3),
                "beta": self.random_generator.uniform(-self.bias, self.bias, 3)}

    def apply(self, img: np.ndarray, alpha=(1, 1, 1), beta=(0, 0, 0), **params) -> np.ndarray:
        return hed_jitter(img, alpha, beta)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("sigma", "bias")


def crop_transforms(strength: float = 1.0) -> A.Compose:
    """Augmentations of a glomerulus crop and its mask (same size out): any rotation or flip (a
    glomerulus has no orientation), a little zoom, stain (HED) and colour jitter, blur.

    Args:
        strength: 0 turns every transform off; 1 is the full set.
    """
    p = max(0.0, min(1.0, strength))
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5 * p),
            A.VerticalFlip(p=0.5 * p),
            A.RandomRotate90(p=p),
            A.Affine(scale=(0.9, 1.1), rotate=(-45, 45), interpolation=cv2.INTER_LINEAR,
                     mask_interpolation=cv2.INTER_NEAREST, border_mode=cv2.BORDER_REFLECT_101, p=0.7 * p),
            HEDJitter(sigma=0.05, bias=0.05, p=0.7 * p),
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5 * p),
            A.HueSaturationValue(hue_shift_limit=10, sat_shift_limit=20, val_shift_limit=10, p=0.5 * p),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.Defocus(radius=(1, 2))], p=0.2 * p),
        ]
    )
