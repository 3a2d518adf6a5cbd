"""Blending overlapping tile predictions without holding a whole slide (the merger half of a
MONAI-style splitter/merger split).

`importance_map` weighs each tile's pixels (``mode="gaussian"`` down-weights tile borders, where
a segmentation network sees the least context; ``"constant"`` averages). `ColumnMerger` adds tiles
that arrive grid column by grid column, left to right, and hands back finished full-height column
strips as soon as no later tile can touch them, so memory is one band of columns, never the slide.

Shapes are ``(height, width)`` and positions ``(row, col)``, all at model scale.
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from typing import Iterator

import numpy as np

from hubkit.errors import ConfigError, ModelOutputError
from hubkit.window import Window

__all__ = ["BlendMode", "importance_map", "ColumnMerger"]


class BlendMode(str, Enum):
    """How overlapping tiles are weighed (MONAI's ``BlendMode`` names)."""

    GAUSSIAN = "gaussian"
    CONSTANT = "constant"

    @classmethod
    def parse(cls, value) -> "BlendMode":
        """A mode from its name; an unknown name raises `ConfigError` listing the valid ones."""
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"unknown blend mode {value!r}; valid names: {', '.join(m.value for m in cls)}") from None


@lru_cache(maxsize=16)
def _importance_map(roi_size: tuple[int, int], mode: str, sigma_scale: float, min_weight: float) -> np.ndarray:
    if mode == "constant":
        return np.ones(roi_size, np.float32)
    axes = []
    for n in roi_size:
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2
        axes.append(np.exp(-0.5 * (x / max(sigma_scale * n, 1e-6)) ** 2))
    w = np.outer(axes[0], axes[1])
    w /= w.max()
    return np.maximum(w, min_weight).astype(np.float32)


def importance_map(roi_size, mode="gaussian", sigma_scale: float = 0.125, min_weight: float = 1e-3) -> np.ndarray:
    """Per-pixel weights of one tile's prediction.

    Args:
        roi_size: tile ``(height, width)`` (or one int).
        mode: ``"gaussian"`` (MONAI's default shape: sigma = ``sigma_scale`` x size, peak 1) or
            ``"constant"`` (all 1).
        sigma_scale: gaussian width relative to the tile size.
        min_weight: floor of the gaussian, so every covered pixel has a non-zero weight.

    Returns:
        ``(height, width)`` float32, read-only (cached).
    """
    mode = BlendMode.parse(mode).value
    size = (int(roi_size), int(roi_size)) if np.isscalar(roi_size) else (int(roi_size[0]), int(roi_size[1]))
    w = _importance_map(size, mode, float(sigma_scale), float(min_weight))
    w.flags.writeable = False
    return w


class ColumnMerger:
    """Weighted average of overlapping tiles, released as full-height column strips.

    Tiles must arrive so that no tile starts left of a column already released: iterate the grid
    column by column (all rows of grid column j, then j + 1) and call `release` with the next grid
    column's start after each one. Pixels no tile covered come out as 0.

    Args:
        shape: ``(height, width)`` of the whole image at model scale.
        channels: prediction channels.
    """

    def __init__(self, shape: tuple[int, int], channels: int = 1):
        self.height, self.width = int(shape[0]), int(shape[1])
        self.channels = int(channels)
        self.left = 0  # first column not yet released
        self._acc = np.zeros((self.channels, self.height, 0), np.float32)
        self._weight = np.zeros((self.height, 0), np.float32)

    def _grow(self, right: int) -> None:
        have = self.left + self._weight.shape[1]
        if right > have:
            extra = right - have
            self._acc = np.concatenate([self._acc, np.zeros((self.channels, self.height, extra), np.float32)], axis=2)
            self._weight = np.concatenate([self._weight, np.zeros((self.height, extra), np.float32)], axis=1)

    def add(self, window: Window, prediction: np.ndarray, weight: np.ndarray) -> None:
        """Add one tile.

        Args:
            window: where the tile sits, ``(row, col, height, width)`` at model scale; parts past
                the image are dropped.
            prediction: ``(channels, height, width)`` or ``(height, width)`` float probabilities.
            weight: ``(height, width)`` weights (from `importance_map`).

        Raises:
            ModelOutputError: shapes that do not match the window, or NaNs.
            ConfigError: a tile left of a released column.
        """
        pred = np.asarray(prediction, np.float32)
        if pred.ndim == 2:
            pred = pred[None]
        if pred.shape != (self.channels, window.height, window.width) or weight.shape != (window.height, window.width):
            raise ModelOutputError(
                f"tile {tuple(window)}: prediction {pred.shape} and weight {weight.shape} do not match "
                f"({self.channels}, {window.height}, {window.width})"
            )
        if not np.isfinite(pred).all():
            raise ModelOutputError(f"tile {tuple(window)}: prediction holds NaN or infinite values")
        inside = window.intersect((self.height, self.width))
        if inside is None:
            return
        if inside.col < self.left:
            raise ConfigError(f"tile {tuple(window)} reaches column {inside.col}, left of released column {self.left}")
        self._grow(inside.col + inside.width)
        r0, c0 = inside.row - window.row, inside.col - window.col
        tile_rows = slice(r0, r0 + inside.height)
        tile_cols = slice(c0, c0 + inside.width)
        cols = slice(inside.col - self.left, inside.col - self.left + inside.width)
        rows = slice(inside.row, inside.row + inside.height)
        w = weight[tile_rows, tile_cols]
        self._acc[:, rows, cols] += pred[:, tile_rows, tile_cols] * w
        self._weight[rows, cols] += w

    def release(self, up_to: int) -> Iterator[tuple[int, np.ndarray]]:
        """Hand back the finished columns ``[left, up_to)`` as one strip.

        Yields:
            ``(first column, strip)``, strip ``(channels, height, width)`` float32 averages.
        """
        up_to = min(int(up_to), self.width)
        if up_to <= self.left:
            return
        self._grow(up_to)
        n = up_to - self.left
        weight = self._weight[:, :n]
        strip = np.divide(self._acc[:, :, :n], weight, out=np.zeros_like(self._acc[:, :, :n]), where=weight > 0)
        first = self.left
        self._acc = self._acc[:, :, n:].copy()
        self._weight = self._weight[:, n:].copy()
        self.left = up_to
        yield first, strip

    def finish(self) -> Iterator[tuple[int, np.ndarray]]:
        """Release every remaining column."""
        yield from self.release(self.width)
