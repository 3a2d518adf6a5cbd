"""Torch datasets over a prepared tile set (see `hubkit.training.prep`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from hubkit.slides.images import read_image, read_label_mask
from hubkit.training.augment import context_size, train_transforms

__all__ = ["normalize", "one_hot", "TrainTiles", "ValidTiles"]


def normalize(rgb: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32, ``(rgb / 255 - mean) / std``."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """``(h, w)`` labels (0 = background, 1..classes) -> ``(classes, h, w)`` float32 targets; one
    class: the 0/1 glomerulus mask."""
    return np.stack([labels == k for k in range(1, classes + 1)]).astype(np.float32)


class _Tiles(Dataset):
    def __init__(self, index: pd.DataFrame, root, mean, std, classes: int = 1):
        self.index = index.reset_index(drop=True)
        self.root = Path(root)
        self.mean, self.std = tuple(mean), tuple(std)
        self.classes = classes
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Tile ``i``'s image and label mask (0 = background, 1..classes)."""
        if i not in self._cache:  # tiles are small at model scale: keep them (per worker)
            row = self.index.iloc[i]
            image, mask = self.root / row["image"], self.root / row["mask"]
            self._cache[i] = (read_image(image), read_label_mask(mask, self.classes))
        return self._cache[i]


class TrainTiles(_Tiles):
    """Random augmented ``tile`` x ``tile`` crops, centred on a glomerulus ``glomerulus_p`` of the time.

    Args:
        index: rows of the tile set to draw from.
        root: the tile set folder.
        tile: crop side (pixels at model scale).
        mean, std: normalisation (0-1 scale).
        samples: crops per epoch.
        glomerulus_p: chance a crop is centred on a random glomerulus pixel (when the tile has one).
        strength: augmentation strength (0 = none).
        stain: HED stain jitter (`train_transforms`; 0 = none).
        seed: with `set_epoch`, makes every crop reproducible.
        classes: output classes; the target is ``(classes, tile, tile)`` (`one_hot`).
    """

    def __init__(self, index, root, tile: int, mean, std, samples: int, glomerulus_p: float = 0.6,
                 strength: float = 1.0, seed: int = 0, classes: int = 1, stain: float = 0.0):
        super().__init__(index, root, mean, std, classes)
        self.tile, self.samples, self.glomerulus_p, self.seed = tile, samples, glomerulus_p, seed
        self.context = context_size(tile)
        self.transforms = train_transforms(tile, strength, stain)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples

    def crop(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A ``context`` x ``context`` crop of tile ``i`` (reflect-padded where it runs off)."""
        image, mask = self._load(i)
        h, w = mask.shape
        if rng.random() < self.glomerulus_p and mask.any():
            ys, xs = np.nonzero(mask[::4, ::4])
            k = rng.integers(len(ys))
            cy, cx = ys[k] * 4, xs[k] * 4
        else:
            cy, cx = rng.integers(h), rng.integers(w)
        c = self.context
        r0, c0 = int(cy) - c // 2, int(cx) - c // 2
        pad = ((max(0, -r0), max(0, r0 + c - h)), (max(0, -c0), max(0, c0 + c - w)))
        if any(p for pair in pad for p in pair):
            image = np.pad(image, (*pad, (0, 0)), mode="reflect")
            mask = np.pad(mask, pad, mode="reflect")
            r0, c0 = r0 + pad[0][0], c0 + pad[1][0]
        return image[r0 : r0 + c, c0 : c0 + c], mask[r0 : r0 + c, c0 : c0 + c]

    def __getitem__(self, item: int):
        rng = np.random.default_rng((self.seed, self.epoch, item))
        i = int(rng.integers(len(self.index)))
        image, mask = self.crop(i, rng)
        self.transforms.set_random_seed(int(rng.integers(2**31)))
        out = self.transforms(image=image, mask=mask)
        return normalize(out["image"], self.mean, self.std), torch.from_numpy(one_hot(out["mask"], self.classes))


class ValidTiles(_Tiles):
    """Whole tiles, reflect-padded to a multiple of 32; yields ``(image, glomerulus mask, height,
    width)``: the mask is 0/1, any class (the competition's glomerulus)."""

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        image, mask = self._load(i)
        h, w = mask.shape
        ph, pw = -h % 32, -w % 32
        padded = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect")
        return normalize(padded, self.mean, self.std), torch.from_numpy((mask > 0).astype(np.float32)), h, w
