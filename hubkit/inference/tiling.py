"""Tile grids over a slide, and the tissue test that says which tiles can be skipped.

Positions are ``(row, col)`` and sizes ``(height, width)``. Grids can be laid at any scale: pass
the image shape at that scale and multiply the windows back up when reading full-resolution pixels.
"""

from __future__ import annotations

import math
from typing import Iterator, Union

import cv2
import numpy as np

from hubkit.errors import ConfigError
from hubkit.window import Window

#: Default share of a tile that must be tissue for the tile to be predicted (the winners' test:
#: 1,000 saturated pixels per 256 x 256). On the shared AIDPATH tiles, every 256-px window with a
#: glomerulus in it is at least 5.8% tissue.
MIN_TISSUE_FRACTION = 0.015

__all__ = ["MIN_TISSUE_FRACTION", "grid_starts", "iter_windows", "tissue_mask", "tissue_fraction"]


def _overlap_pixels(size: int, overlap: Union[float, int]) -> int:
    """Overlap as pixels: a float in [0, 1) is a fraction of ``size``; an int is pixels."""
    if isinstance(overlap, (bool, np.bool_)):
        raise ConfigError(f"overlap must be a fraction in [0, 1) or whole pixels, got {overlap!r}")
    if isinstance(overlap, (int, np.integer)):
        if not 0 <= overlap < size:
            raise ConfigError(f"overlap of {overlap} px must be >= 0 and below the tile size {size}")
        return int(overlap)
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap as a fraction must be in [0, 1), got {overlap}")
    return min(size - 1, int(round(size * overlap)))


def grid_starts(length: int, size: int, overlap: Union[float, int] = 0.0) -> list[int]:
    """Start offsets of tiles of ``size`` covering ``length`` pixels.

    Tiles step by ``size - overlap``; the last one is moved back to end exactly at ``length``
    (so it overlaps its neighbour more), never past it. When ``size >= length`` there is one tile at
    0, which reaches past the end (readers pad it).

    Args:
        length: pixels to cover (> 0).
        size: tile size in pixels (> 0).
        overlap: a fraction of ``size`` in [0, 1) (float), or pixels (int).

    Example:
        >>> grid_starts(10, 4)
        [0, 4, 6]
        >>> grid_starts(10, 4, overlap=0.5)
        [0, 2, 4, 6]
    """
    if length <= 0 or size <= 0:
        raise ConfigError(f"length and size must be positive, got length={length}, size={size}")
    if size >= length:
        return [0]
    step = size - _overlap_pixels(size, overlap)
    n = math.ceil((length - size) / step) + 1
    starts = [i * step for i in range(n)]
    starts[-1] = length - size
    return starts


def iter_windows(shape: tuple[int, int], roi_size, overlap: Union[float, int] = 0.0) -> Iterator[Window]:
    """Windows of ``roi_size`` (int or ``(height, width)``) covering an image of ``shape``.

    Row-major order (left to right, then down), with `grid_starts` along each axis.
    """
    th, tw = (roi_size, roi_size) if np.isscalar(roi_size) else roi_size
    for r in grid_starts(shape[0], int(th), overlap):
        for c in grid_starts(shape[1], int(tw), overlap):
            yield Window(r, c, int(th), int(tw))


def tissue_mask(thumbnail: np.ndarray, saturation: int = 40, min_value: int = 20) -> np.ndarray:
    """Which pixels of an RGB thumbnail show stained tissue.

    PAS-stained tissue is coloured; glass, padding and dust are grey, white or black. A pixel is
    tissue when its HSV saturation (0-255) exceeds ``saturation`` and it is not near black (value
    >= ``min_value``), the test the HuBMAP winners used to skip empty tiles.

    Args:
        thumbnail: ``(h, w, 3)`` uint8 RGB.

    Returns:
        ``(h, w)`` bool.
    """
    hsv = cv2.cvtColor(np.ascontiguousarray(thumbnail), cv2.COLOR_RGB2HSV)
    return (hsv[..., 1] > saturation) & (hsv[..., 2] >= min_value)


def tissue_fraction(mask: np.ndarray, window: Window, mask_scale: float) -> float:
    """Fraction of a window that is tissue, looked up in a thumbnail's tissue mask.

    Args:
        mask: ``(h, w)`` bool tissue mask of the slide at ``1 / mask_scale`` resolution.
        window: ``(row, col, height, width)`` in full-resolution pixels (may reach past the slide:
            the outside counts as not tissue).
        mask_scale: downscale factor of ``mask`` relative to full resolution.
    """
    r0 = math.floor(window.row / mask_scale)
    c0 = math.floor(window.col / mask_scale)
    r1 = max(r0 + 1, math.ceil((window.row + window.height) / mask_scale))
    c1 = max(c0 + 1, math.ceil((window.col + window.width) / mask_scale))
    part = mask[max(r0, 0) : max(r1, 0), max(c0, 0) : max(c1, 0)]
    return float(part.sum()) / float((r1 - r0) * (c1 - c0))
