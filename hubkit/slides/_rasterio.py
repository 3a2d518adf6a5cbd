"""The rasterio (GDAL) slide backend: HuBMAP TIFFs in both of their real layouts.

* ``bands``: one dataset holding R, G, B (and maybe alpha) bands, pixel-interleaved or planar.
* ``pages``: one single-band page per colour, which GDAL shows as subdatasets (``count != 3``).
* ``grey``: a single band, repeated into R, G, B (``colour == "grey"``);
* ``palette``: a single band of indices into the file's colour map, expanded to RGB.

Every band of every page must be 8-bit: a 16-bit page beside 8-bit ones is refused, never cast.

Pixels are indexed in image space (an identity transform): HuBMAP TIFFs carry no georeference.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window as RioWindow

from hubkit.errors import SlideError
from hubkit.slides.base import BaseSlide, PerThread
from hubkit.window import Window

# Slides carry no georeference; GDAL's identity transform is exactly the pixel grid hubkit uses.
# (A module-level filter: warnings.catch_warnings is not thread-safe, and handles open per thread.)
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)


def _open(path: str, **kwargs):
    """A GDAL handle through the TIFF driver alone: no VRT, no network, no other format."""
    return rasterio.open(path, driver="GTiff", **kwargs)


def _explain(err: BaseException) -> str:
    """GDAL's own words: the innermost chained error's first line."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _palette_lut(ds) -> np.ndarray:
    """``(256, 3)`` uint8: the RGB of each index of a palette band (indices the map lacks are black)."""
    lut = np.zeros((256, 3), np.uint8)
    try:
        colours = ds.colormap(1)
    except ValueError:  # a palette band without a map: GDAL gives no colours to read
        raise SlideError(f"{ds.name}: a palette image without a colour map") from None
    for index, rgba in colours.items():
        if 0 <= index < 256:
            lut[index] = rgba[:3]
    return lut


class RasterioSlide(BaseSlide):
    """A slide file read through rasterio, one GDAL handle per thread and process.

    Attributes:
        layout: ``"bands"``, ``"pages"`` or ``"grey"`` (see the module docstring).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.name = str(path)
        try:
            ds = _open(self.name)
        except (RasterioError, OSError) as err:
            raise SlideError(f"{self.name}: cannot open as a TIFF ({_explain(err)}); is the file corrupt or truncated?") from None
        try:
            self._inspect(ds)
        finally:
            ds.close()
        self._handles = PerThread(self._open_level_handles, lambda hs: [h.close() for h in hs])

    def _check_dtypes(self, ds, what: str = "pixels") -> None:
        if any(dt != "uint8" for dt in ds.dtypes):
            raise SlideError(f"{self.name}: {what} are {', '.join(sorted(set(ds.dtypes)))}; "
                             "hubkit reads 8-bit RGB slides")

    def _inspect(self, ds) -> None:
        self._check_dtypes(ds)
        shape = (ds.height, ds.width)
        self._subdatasets: list[str] = []
        self._lut = None
        if ds.count in (3, 4):
            self.layout, self._bands = "bands", [1, 2, 3]
        elif ds.count in (1, 2) and len(ds.subdatasets) >= 3:
            subs = ds.subdatasets[:3]
            for page, sub in enumerate(subs, start=1):
                with _open(sub) as sd:
                    if sd.count != 1 or (sd.height, sd.width) != shape:
                        raise SlideError(
                            f"{self.name}: unsupported band layout: {ds.count} band(s) with subdatasets "
                            f"{ds.subdatasets} that are not three single-band {shape} pages"
                        )
                    self._check_dtypes(sd, f"page {page}'s pixels")
            self.layout, self._bands, self._subdatasets = "pages", [1], list(subs)
        elif ds.count in (1, 2) and ds.colorinterp[0] == ColorInterp.palette:
            self.layout, self._bands, self._lut = "palette", [1], _palette_lut(ds)
        elif ds.count in (1, 2):
            self.layout, self._bands, self.colour = "grey", [1], "grey"
        else:
            raise SlideError(f"{self.name}: unsupported band layout: {ds.count} bands; expected RGB, RGBA, grey or one band per page")
        self.level_shapes = [shape]
        self._overview_levels = [None]
        if self.layout != "pages":
            for i in range(len(ds.overviews(1))):
                # GDAL lists decimation factors, in no set order; open each level for its exact size.
                with _open(self.name, overview_level=i) as ov:
                    self.level_shapes.append((ov.height, ov.width))
                    self._overview_levels.append(i)
            order = sorted(range(len(self.level_shapes)), key=lambda k: -self.level_shapes[k][0])
            self.level_shapes = [self.level_shapes[k] for k in order]
            self._overview_levels = [self._overview_levels[k] for k in order]

    def _open_level_handles(self) -> list:
        """Handles for this thread: one per level (``bands``/``grey``) or one per page (``pages``)."""
        if self.layout == "pages":
            return [_open(sub) for sub in self._subdatasets]
        return [
            _open(self.name) if ov is None else _open(self.name, overview_level=ov) for ov in self._overview_levels
        ]

    def _read_level(self, level: int, window: Window) -> np.ndarray:
        rio_window = RioWindow(window.col, window.row, window.width, window.height)
        handles = self._handles.get()
        # GDAL writes straight into a pixel-interleaved (h, w, 3) buffer through a band-first view.
        out = np.empty((window.height, window.width, 3), np.uint8)
        try:
            if self.layout == "pages":
                for band, h in enumerate(handles):
                    h.read(1, window=rio_window, out=out[..., band])
            elif self.layout == "bands":
                handles[level].read(self._bands, window=rio_window, out=out.transpose(2, 0, 1))
            elif self._lut is not None:
                out[...] = self._lut[handles[level].read(1, window=rio_window)]
            else:
                out[...] = handles[level].read(1, window=rio_window)[..., None]
        except (RasterioError, OSError) as err:
            raise SlideError(
                f"{self.name}: failed to read window {tuple(window)} at level {level} "
                f"({_explain(err)}); the file may be truncated or corrupt"
            ) from None
        return out

    def close(self) -> None:
        self._handles.close()
