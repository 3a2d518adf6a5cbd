"""Tile images and masks on disk: PNG, JPEG and small TIFF files, and folders of image/mask pairs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hubkit.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "read_image", "read_mask", "read_label_mask", "label_mask_values", "find_tile_pairs"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def _imread(path, flags: int, what: str) -> np.ndarray:
    """``cv2.imread``, raising `DataError` naming the file where it returns nothing."""
    pixels = cv2.imread(str(path), flags)
    if pixels is None:
        raise DataError(f"{path}: cannot read {what} (missing, or not a PNG/JPEG/TIFF)")
    return pixels


#: A mask holds a few label values; an image with more distinct values (among up to a million
#: sampled pixels) is a photograph or a slide, not a mask.
MAX_MASK_VALUES = 64


def _mask_pixels(path) -> np.ndarray:
    """A mask file's pixels, refused when it holds more than `MAX_MASK_VALUES` distinct values."""
    raw = _imread(path, cv2.IMREAD_UNCHANGED, "mask image")
    sample = raw.reshape(-1)[:: max(1, raw.size // 1_000_000)]
    distinct = len(np.unique(sample))
    if distinct > MAX_MASK_VALUES:
        raise DataError(f"{path}: {distinct} distinct pixel values; a mask holds a few labels (0 = background), "
                        "so this looks like an image or slide, not a mask")
    return raw.max(axis=2) if raw.ndim == 3 else raw


def read_mask(path) -> np.ndarray:
    """Read a mask image as ``(height, width)`` uint8 of 0/1 (any non-zero channel = foreground).

    Raises:
        DataError: the file is missing or not an image, or it holds more than `MAX_MASK_VALUES`
            distinct values (an RGB slide or photo given where a mask belongs).
    """
    return (_mask_pixels(path) > 0).astype(np.uint8)


def label_mask_values(labels: np.ndarray) -> np.ndarray:
    """A label mask as it is written: a one-class mask as 0/255 (viewable, what `read_mask` reads),
    class numbers 0, 1, 2, ... as they are otherwise."""
    labels = np.asarray(labels, np.uint8)
    return labels * 255 if labels.max(initial=0) <= 1 else labels


def read_label_mask(path, classes: int) -> np.ndarray:
    """Read a mask of classes as ``(height, width)`` uint8: 0 = background, 1..``classes`` a class
    (for 2-class glomeruli: 1 healthy, 2 sclerotic). A 0/255 mask reads as class 1.

    Raises:
        DataError: as `read_mask`, or a value that is neither 255 (in a 0/255 mask) nor a class number.
    """
    raw = _mask_pixels(path)
    values = np.unique(raw)
    if set(values.tolist()) <= {0, 255}:
        return (raw > 0).astype(np.uint8)
    if values.max() > classes:
        raise DataError(f"{path}: label values {values.tolist()}; a mask of {classes} class(es) holds 0 "
                        f"(background) to {classes}, or 0/255")
    return raw.astype(np.uint8)


def read_image(path) -> np.ndarray:
    """Read an image file as ``(height, width, 3)`` uint8 RGB.

    Raises:
        DataError: the file is missing or not an image.
    """
    return cv2.cvtColor(_imread(path, cv2.IMREAD_COLOR, "image"), cv2.COLOR_BGR2RGB)


def find_tile_pairs(folder) -> list[tuple[Path, Path]]:
    """``(image, mask)`` paths of a folder with ``images/`` and ``masks/`` of matching file stems."""
    folder = Path(folder)
    masks = {p.stem: p for p in (folder / "masks").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES}
    pairs = []
    for img in sorted((folder / "images").glob("*")):
        if img.suffix.lower() in IMAGE_SUFFIXES and img.stem in masks:
            pairs.append((img, masks[img.stem]))
    return pairs
