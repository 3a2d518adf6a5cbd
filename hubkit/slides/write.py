"""Write slides as tiled TIFFs in either HuBMAP layout, for tests, demos and local competitions."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import cv2
import numpy as np
import tifffile

from hubkit.errors import ConfigError
from hubkit.slides.base import as_rgb

__all__ = ["write_slide", "write_slide_streamed"]

LAYOUTS = ("bands", "pages")


def write_slide(
    path,
    image: np.ndarray,
    layout: str = "bands",
    tile: int = 512,
    compression: Optional[str] = "zlib",
    bigtiff: Optional[bool] = None,
    overviews: Sequence[int] = (),
) -> Path:
    """Write an RGB image as a tiled TIFF.

    Args:
        path: output file.
        image: ``(height, width, 3)`` uint8 (or any layout `hubkit.slides.as_rgb` accepts).
        layout: ``"bands"``: one RGB image (what most HuBMAP slides are); ``"pages"``: one
            single-band page per colour (the slides that rasterio shows with ``count != 3``).
        tile: tile side in pixels (a multiple of 16).
        compression: a tifffile compression name, or None.
        bigtiff: force BigTIFF on or off; by default on when the pixels pass 2 GB.
        overviews: downsample factors of reduced-resolution levels to add (``bands`` only).

    Returns:
        ``path`` as a Path.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if overviews and layout != "bands":
        raise ConfigError("overviews are written for the 'bands' layout only")
    rgb = as_rgb(image, str(path))
    path = Path(path)
    if bigtiff is None:
        bigtiff = rgb.nbytes > 2**31
    opts = dict(tile=(tile, tile), compression=compression)
    with tifffile.TiffWriter(path, bigtiff=bigtiff) as tw:
        if layout == "pages":
            for band in range(3):
                tw.write(np.ascontiguousarray(rgb[..., band]), photometric="minisblack", **opts)
            return path
        tw.write(rgb, photometric="rgb", **opts)
        h, w = rgb.shape[:2]
        for f in sorted(overviews):
            small = cv2.resize(rgb, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
            tw.write(small, photometric="rgb", subfiletype=1, **opts)
    return path


def write_slide_streamed(
    path,
    shape: tuple[int, int],
    read_tile: Callable[[int, int, int, int], np.ndarray],
    tile: int = 512,
    compression: Optional[str] = "zlib",
) -> Path:
    """Write a slide too large for memory, tile by tile (``bands`` layout, BigTIFF).

    Args:
        path: output file.
        shape: ``(height, width)`` of the slide.
        read_tile: ``read_tile(row, col, height, width) -> (height, width, 3)`` uint8, called for
            each tile in row-major order (edge tiles are asked for their inside part only).
        tile: tile side in pixels (a multiple of 16).
    """
    h, w = int(shape[0]), int(shape[1])

    def tiles() -> Iterator[np.ndarray]:
        for r in range(0, h, tile):
            for c in range(0, w, tile):
                part = read_tile(r, c, min(tile, h - r), min(tile, w - c))
                if part.shape[:2] != (tile, tile):
                    full = np.zeros((tile, tile, 3), np.uint8)
                    full[: part.shape[0], : part.shape[1]] = part
                    part = full
                yield part

    path = Path(path)
    tifffile.imwrite(path, data=tiles(), shape=(h, w, 3), dtype=np.uint8, tile=(tile, tile),
                     compression=compression, photometric="rgb", bigtiff=True)
    return path
