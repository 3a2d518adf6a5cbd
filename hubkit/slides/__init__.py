"""Slides: open whole-slide images, read windows of them at any scale, and write them.

`open_slide` picks a reader for a file (`hubkit.slides.reader`); every reader is a `BaseSlide`
that reads ``(row, col, height, width)`` windows in full-resolution pixels as ``(height, width, 3)``
uint8 RGB. `write_slide` writes either HuBMAP TIFF layout; `read_image` and `read_mask` read tile
images and masks.
"""

from hubkit.slides.base import BaseSlide, InMemorySlide, as_rgb, scaled_size
from hubkit.slides.images import IMAGE_SUFFIXES, find_tile_pairs, read_image, read_mask
from hubkit.slides.reader import PROBES, open_slide, probe
from hubkit.slides.write import LAYOUTS, write_slide, write_slide_streamed

__all__ = [
    "BaseSlide", "InMemorySlide", "as_rgb", "scaled_size", "open_slide", "probe", "PROBES",
    "write_slide", "write_slide_streamed", "LAYOUTS", "read_image", "read_mask", "find_tile_pairs", "IMAGE_SUFFIXES",
]
