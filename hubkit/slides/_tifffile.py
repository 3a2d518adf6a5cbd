"""The tifffile slide backend: Aperio SVS pyramids and codecs GDAL lacks (Aperio JPEG 2000).

Windowed reads decode only the tiles or strips a window touches, straight from the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import tifffile

from hubkit.errors import SlideError
from hubkit.slides.base import BaseSlide, PerThread, as_rgb
from hubkit.window import Window


def _palette_lut(page) -> Optional[np.ndarray]:
    """``(256, 3)`` uint8 RGB of each index of a palette page, or None for other pages."""
    if page.photometric != tifffile.PHOTOMETRIC.PALETTE or page.colormap is None:
        return None
    cmap = np.asarray(page.colormap)
    lut = np.zeros((256, 3), np.uint8)
    n = min(256, cmap.shape[-1])
    entries = cmap[:3, :n].T
    # Some writers store 8-bit entries in the 16-bit map; libtiff and GDAL read those as they are.
    lut[:n] = entries if entries.max() < 256 else entries // 257
    return lut


class TifffileSlide(BaseSlide):
    """A slide file read through tifffile (+ imagecodecs), one file handle per thread and process.

    The pyramid is the first series' levels (SVS thumbnails, labels and macros are other series
    and are ignored). Deflate tiles are decoded with their Adler-32 checksum checked, so a corrupt
    tile is an error, never silent garbage (`hubkit.slides.reader` sends deflate TIFFs here).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.name = str(path)
        try:
            tf = tifffile.TiffFile(self.name)
        except Exception as err:  # noqa: BLE001 - tifffile raises many kinds for bad files
            raise SlideError(f"{self.name}: cannot open as a TIFF ({err}); is the file corrupt or truncated?") from None
        try:
            series = tf.series[0]
            self.level_shapes = []
            for level in series.levels:
                page = level.keyframe
                if page.dtype != np.uint8:
                    raise SlideError(f"{self.name}: pixels are {page.dtype}; hubkit reads 8-bit RGB slides")
                if page.samplesperpixel not in (1, 3, 4):
                    raise SlideError(f"{self.name}: unsupported band layout: {page.samplesperpixel} samples per pixel")
                self.level_shapes.append((page.imagelength, page.imagewidth))
            self._band_pages = self._find_band_pages(tf)
            self._lut = _palette_lut(tf.pages[0])
            if self._lut is None and not self._band_pages and tf.pages[0].samplesperpixel == 1:
                self.colour = "grey"
        except IndexError:
            raise SlideError(f"{self.name}: the TIFF holds no image") from None
        finally:
            tf.close()
        self._handles = PerThread(lambda: tifffile.TiffFile(self.name), lambda t: t.close())

    def _find_band_pages(self, tf) -> list[int]:
        """Page indices of a one-band-per-page RGB file (the layout rasterio shows as count != 3)."""
        first = tf.pages[0]
        if first.samplesperpixel != 1 or len(tf.pages) < 3:
            return []
        pages = [tf.pages[i] for i in range(3)]
        if not all(p.samplesperpixel == 1 and p.shape == first.shape for p in pages):
            return []
        for i, p in enumerate(pages):
            if p.dtype != np.uint8:
                raise SlideError(f"{self.name}: page {i + 1}'s pixels are {p.dtype}; hubkit reads 8-bit RGB slides")
        self.level_shapes = self.level_shapes[:1]  # the other pages are colours, not levels
        return [0, 1, 2]

    def _read_level(self, level: int, window: Window) -> np.ndarray:
        tf = self._handles.get()
        try:
            if self._band_pages:
                planes = [self._decode_window(tf, tf.pages[i], window)[..., 0] for i in self._band_pages]
                return np.stack(planes, axis=-1)
            return self._decode_window(tf, tf.series[0].levels[level].keyframe, window)
        except SlideError:
            raise
        except Exception as err:  # noqa: BLE001 - codec and file errors of many kinds
            raise SlideError(
                f"{self.name}: failed to read window {tuple(window)} at level {level} ({type(err).__name__}: {err}); "
                "the file may be truncated or corrupt"
            ) from None

    def _decode_window(self, tf, page, window: Window) -> np.ndarray:
        if page.is_tiled:
            seg_h, seg_w = page.tilelength, page.tilewidth
        else:
            seg_h, seg_w = page.rowsperstrip or page.imagelength, page.imagewidth
        across = math.ceil(page.imagewidth / seg_w)
        down = math.ceil(page.imagelength / seg_h)
        separate = page.planarconfig == 2
        samples = page.samplesperpixel
        planes = samples if separate else 1
        out = np.zeros((planes, window.height, window.width, 1 if separate else samples), np.uint8)
        r0, c0 = window.row, window.col
        r1, c1 = window.stop
        fh = tf.filehandle
        for p in range(planes):
            for tr in range(r0 // seg_h, (r1 - 1) // seg_h + 1):
                for tc in range(c0 // seg_w, (c1 - 1) // seg_w + 1):
                    index = p * across * down + tr * across + tc
                    offset, count = page.dataoffsets[index], page.databytecounts[index]
                    if count == 0:
                        continue
                    fh.seek(offset)
                    data = fh.read(count)
                    if len(data) != count:
                        raise SlideError(f"{self.name}: segment {index} is cut short ({len(data)} of {count} bytes); the file is truncated")
                    segment, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
                    if segment is None:
                        continue
                    seg = segment.reshape(segment.shape[-3:])  # (rows, cols, contig samples)
                    top, left = tr * seg_h, tc * seg_w
                    rs, re_ = max(r0, top), min(r1, top + seg.shape[0])
                    cs, ce = max(c0, left), min(c1, left + seg.shape[1])
                    out[p, rs - r0 : re_ - r0, cs - c0 : ce - c0] = seg[rs - top : re_ - top, cs - left : ce - left]
        image = np.moveaxis(out[..., 0], 0, -1) if separate else out[0]
        if self._lut is not None:
            return self._lut[image[..., 0]]
        return as_rgb(image, self.name)

    def close(self) -> None:
        self._handles.close()
