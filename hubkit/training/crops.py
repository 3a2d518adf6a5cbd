"""Crop sets: one glomerulus per image, a class per crop, for training glomerulus classifiers.

A crop set is a folder with ``labels.csv`` (columns ``crop``, ``slide``, ``label``; others are
kept), ``images/<crop>.jpg`` (or ``.png``) and ``masks/<crop>.png`` (0/255, the glomerulus), the
layout of the AIDPATH glomerulosclerosis crops. ``slide`` is the fold group: crops of one slide
never straddle folds. Every file is checked before training starts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from hubkit.errors import DataError
from hubkit.formats.table import read_table
from hubkit.models.classifier import classifier_input, crop_glomerulus
from hubkit.slides.images import IMAGE_SUFFIXES, read_image, read_mask
from hubkit.training.augment import crop_transforms

__all__ = ["LABELS_FILE", "read_crop_set", "CropSet"]

LABELS_FILE = "labels.csv"
_CROP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _image_path(root: Path, crop: str) -> Optional[Path]:
    for ext in IMAGE_SUFFIXES:
        path = root / "images" / f"{crop}{ext}"
        if path.is_file():
            return path
    return None


def read_crop_set(root, positive: str, need_masks: bool = True) -> pd.DataFrame:
    """The crops of a crop set with their files and 0/1 targets, checked whole.

    Args:
        root: the crop set folder.
        positive: the ``label`` value of the positive class; the set must hold exactly one other.
        need_masks: every crop must have its mask (the classifier crops by it or takes it as input).

    Returns:
        ``labels.csv`` plus ``image`` and ``mask`` (paths) and ``target`` (1 = positive).

    Raises:
        DataError: a missing or unreadable ``labels.csv``, a missing column, a crop name that is not
            a plain file name, repeated crops, labels other than two classes including ``positive``,
            or a missing image or mask; each names the file.
    """
    root = Path(root)
    path = root / LABELS_FILE
    table = read_table(path, ("crop", "slide", "label"), error=DataError)
    bad = [c for c in table["crop"] if not _CROP_NAME.fullmatch(c)]
    if bad:
        raise DataError(f"{path}: crop names must be plain file names; got {bad[:3]}")
    twice = table["crop"][table["crop"].duplicated()].tolist()
    if twice:
        raise DataError(f"{path}: crops listed twice: {twice[:5]}")
    labels = sorted(set(table["label"]))
    if positive not in labels or len(labels) != 2:
        raise DataError(f"{path}: labels {labels}; a classifier needs two, one of them {positive!r}")
    images, masks = [], []
    for crop in table["crop"]:
        image = _image_path(root, crop)
        if image is None:
            raise DataError(f"{path}: no image for crop {crop!r} in {root / 'images'} ({', '.join(IMAGE_SUFFIXES)})")
        mask = root / "masks" / f"{crop}.png"
        if need_masks and not mask.is_file():
            raise DataError(f"{path}: no mask {mask} for crop {crop!r}")
        images.append(image)
        masks.append(mask if mask.is_file() else None)
    return table.assign(image=images, mask=masks, target=(table["label"] == positive).astype(int))


class CropSet(Dataset):
    """Crops as classifier inputs, cut by `crop_glomerulus` exactly as `hubkit.analysis.sclerosis`
    cuts glomeruli off a slide; yields ``(input (C, size, size) float32, target (1,) float32)``.

    Args:
        table: rows of `read_crop_set`.
        size: crop side fed to the model.
        mean, std: RGB normalisation (0-1 scale).
        with_mask: add the mask as a fourth channel.
        strength: augmentation strength (`crop_transforms`; 0 = none, for validation).
        seed: with `set_epoch`, makes every augmentation reproducible.
    """

    def __init__(self, table: pd.DataFrame, size: int, mean, std, with_mask: bool, strength: float = 0.0,
                 seed: int = 0):
        self.table = table.reset_index(drop=True)
        self.size, self.mean, self.std, self.with_mask = size, tuple(mean), tuple(std), with_mask
        self.transforms = crop_transforms(strength) if strength > 0 else None
        self.seed, self.epoch = seed, 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.table)

    def crop(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Crop ``i`` at the model's size, before augmentation: ``(size, size, 3)`` and ``(size, size)``."""
        if i not in self._cache:
            row = self.table.iloc[i]
            image = read_image(row["image"])
            mask = read_mask(row["mask"]) if row["mask"] is not None else np.ones(image.shape[:2], np.uint8)
            if mask.shape != image.shape[:2]:
                raise DataError(f"{row['mask']}: mask {mask.shape} and image {image.shape[:2]} differ in size")
            if not mask.any():
                raise DataError(f"{row['mask']}: an empty glomerulus mask")
            self._cache[i] = crop_glomerulus(image, mask, self.size)
        return self._cache[i]

    def __getitem__(self, i: int):
        image, mask = self.crop(i)
        if self.transforms is not None:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            self.transforms.set_random_seed(int(rng.integers(2**31)))
            out = self.transforms(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        x = classifier_input(image, mask, self.mean, self.std, self.with_mask)
        return torch.from_numpy(x), torch.tensor([float(self.table["target"].iloc[i])])
