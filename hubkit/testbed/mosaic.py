"""Slides to test with: a labelled synthetic one built in code, or mosaics of real tiles with masks.

The synthetic slide is a drawing (pink "tissue" with darker round "glomeruli" on glass), made to
exercise the I/O path end to end when no real data is at hand; it is not microscopy and says so.
Real tiles (for example the shared HuBMAP, Vanderbilt and AIDPATH sets) make realistic slides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from hubkit.errors import DataError
from hubkit.slides.images import read_image, read_mask

__all__ = ["GLASS_RGB", "synthetic_slide", "mosaic_slide"]

#: Slide-glass background colour of the HuBMAP TIFFs (light, unsaturated).
GLASS_RGB = (236, 234, 238)


def synthetic_slide(shape: tuple[int, int] = (3072, 4096), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw a synthetic PAS-like slide and its glomerulus mask.

    Returns:
        ``(rgb, mask)``: ``(height, width, 3)`` uint8 and ``(height, width)`` uint8 of 0/1.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = GLASS_RGB
    tissue = np.zeros((h, w), np.uint8)
    for _ in range(3):
        centre = (int(rng.uniform(0.25, 0.75) * w), int(rng.uniform(0.25, 0.75) * h))
        axes = (int(rng.uniform(0.2, 0.35) * w), int(rng.uniform(0.2, 0.35) * h))
        cv2.ellipse(tissue, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (h // 8, w // 8)).astype(np.float32), (0, 0), 2)
    texture = cv2.resize(texture, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
    pink = np.clip(np.array([214, 150, 190], np.float32) + 18 * texture, 0, 255).astype(np.uint8)
    rgb[tissue > 0] = pink[tissue > 0]
    mask = np.zeros((h, w), np.uint8)
    diameter = max(16, min(h, w) // 16)
    ys, xs = np.nonzero(tissue[::diameter, ::diameter])
    for i in rng.permutation(len(ys))[: max(1, len(ys) // 12)]:
        r = int(diameter * rng.uniform(0.35, 0.6))
        centre = (int(xs[i] * diameter), int(ys[i] * diameter))
        cv2.circle(mask, centre, r, 1, -1)
    rgb[mask > 0] = (0.72 * pink[mask > 0] + [20, 0, 30]).astype(np.uint8)
    return rgb, mask


def mosaic_slide(
    pairs: Sequence[tuple[Path, Path]],
    columns: int,
    gap: int = 256,
    tile_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Lay real tiles in a grid on slide glass, like tissue pieces on a whole slide.

    Args:
        pairs: ``(image, mask)`` paths, placed left to right, then down.
        columns: tiles per row.
        gap: glass pixels around and between tiles.
        tile_scale: resize factor applied to every tile (to match magnifications).

    Returns:
        ``(rgb, mask)``: ``(H, W, 3)`` uint8 and ``(H, W)`` uint8 of 0/1.
    """
    tiles = []
    for img_path, mask_path in pairs:
        img, mask = read_image(img_path), read_mask(mask_path)
        if img.shape[:2] != mask.shape:
            raise DataError(f"{img_path}: image {img.shape[:2]} and mask {mask.shape} differ in size")
        if tile_scale != 1.0:
            size = (round(img.shape[1] * tile_scale), round(img.shape[0] * tile_scale))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        tiles.append((img, mask))
    if not tiles:
        raise DataError("no tiles to lay out")
    rows = -(-len(tiles) // columns)
    th = max(t[0].shape[0] for t in tiles)
    tw = max(t[0].shape[1] for t in tiles)
    height, width = gap + rows * (th + gap), gap + columns * (tw + gap)
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = GLASS_RGB
    out_mask = np.zeros((height, width), np.uint8)
    for i, (img, mask) in enumerate(tiles):
        r, c = gap + (i // columns) * (th + gap), gap + (i % columns) * (tw + gap)
        rgb[r : r + img.shape[0], c : c + img.shape[1]] = img
        out_mask[r : r + mask.shape[0], c : c + mask.shape[1]] = mask
    return rgb, out_mask
