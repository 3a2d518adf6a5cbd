"""Open a slide file with the backend that reads it: a factory with named probes.

Like TIAToolbox's ``WSIReader.open``, `open_slide` asks each probe in `PROBES` in turn whether it
recognises the file (by its name and first bytes) and opens it with that probe's backend:

* ``aperio-svs``: ``.svs`` files, read by tifffile (JPEG and JPEG 2000 tiles, pyramids);
* ``tiff-deflate``: TIFFs whose first page is deflate-compressed, read by tifffile, which checks
  each tile's Adler-32 checksum (libtiff stops inflating once a tile is full and never reads it,
  so GDAL turns a corrupt deflate tile into silent garbage);
* ``tiff``: files that start with a TIFF or BigTIFF signature, read by rasterio (GDAL, TIFF driver
  only), falling back to tifffile when GDAL lacks the file's codec or rasterio is absent.

A file no probe recognises (a PNG, GDAL VRT XML renamed ``.tiff``, an empty file) is refused with
its first bytes quoted, so nothing but TIFF-family slides is ever handed to GDAL. A recognised file
is then held to `hubkit.slides.limits` before a pixel is read.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from hubkit.errors import SlideError
from hubkit.slides.base import BaseSlide
from hubkit.slides.limits import SlideLimits, check_declared

__all__ = ["Probe", "PROBES", "BACKENDS", "probe", "open_slide"]

#: Little- and big-endian TIFF, then BigTIFF.
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

#: Backend name -> ``module:class``, imported only when used (either library may be absent).
BACKENDS = {
    "rasterio": "hubkit.slides._rasterio:RasterioSlide",
    "tifffile": "hubkit.slides._tifffile:TifffileSlide",
}


@dataclass(frozen=True)
class Probe:
    """One kind of slide file hubkit recognises.

    Attributes:
        name: shown in errors and by `probe`.
        backend: a key of `BACKENDS`.
        matches: ``matches(path, first_bytes) -> bool``.
        description: what files it takes.
    """

    name: str
    backend: str
    matches: Callable[[Path, bytes], bool]
    description: str


def _is_tiff(head: bytes) -> bool:
    return head[:4] in TIFF_SIGNATURES


#: TIFF compression codes of deflate (8, and Adobe's older 32946).
_DEFLATE = (8, 32946)


def _is_deflate_tiff(path: Path, head: bytes) -> bool:
    """A TIFF whose first page is deflate-compressed (unreadable headers are left to the next probe)."""
    if not _is_tiff(head):
        return False
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            return int(tf.pages.first.compression) in _DEFLATE
    except Exception:  # noqa: BLE001 - a broken header is reported by the backend that opens it
        return False


#: Asked in order; the first that matches opens the file.
PROBES: tuple[Probe, ...] = (
    Probe("aperio-svs", "tifffile", lambda path, head: _is_tiff(head) and path.suffix.lower() == ".svs",
          "Aperio SVS pyramids (JPEG, JPEG 2000)"),
    Probe("tiff-deflate", "tifffile", _is_deflate_tiff,
          "deflate-compressed TIFF and BigTIFF, every tile's checksum checked"),
    Probe("tiff", "rasterio", lambda path, head: _is_tiff(head),
          "TIFF, BigTIFF and pyramidal TIFF in either HuBMAP band layout"),
)


def _backend(name: str) -> type[BaseSlide]:
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def probe(path) -> Probe:
    """The probe that recognises ``path``.

    Raises:
        SlideError: no such file, or no probe recognises it (the message lists the probes).
    """
    path = Path(path)
    if not path.is_file():
        raise SlideError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as err:
        raise SlideError(f"{path}: cannot read ({err.strerror or err})") from None
    for p in PROBES:
        if p.matches(path, head):
            return p
    kinds = "; ".join(f"{p.name}: {p.description}" for p in PROBES)
    raise SlideError(f"{path}: not a slide hubkit reads (it starts with {head[:8]!r}); readable kinds: {kinds}")


def open_slide(path, backend: str = "auto", limits: Optional[SlideLimits] = None) -> BaseSlide:
    """Open a slide file for windowed reading.

    Args:
        path: a TIFF, BigTIFF, pyramidal TIFF or SVS file.
        backend: ``"auto"`` (the matching probe's backend) or a key of `BACKENDS` to force one.
        limits: how large the file may claim to be (default: `SlideLimits.from_env`).

    Raises:
        SlideError: missing, unrecognised, corrupt or truncated file, an unsupported band layout,
            or a declared size over the limits.
    """
    path = Path(path)
    if backend != "auto" and backend not in BACKENDS:
        raise SlideError(f"{path}: unknown backend {backend!r}; valid names: auto, {', '.join(BACKENDS)}")
    found = probe(path)
    slide = _open_with(path, backend if backend != "auto" else found.backend, forced=backend != "auto")
    try:
        check_declared(slide.name, slide.shape, path.stat().st_size, limits)
    except BaseException:
        slide.close()
        raise
    return slide


def _open_with(path: Path, backend: str, forced: bool) -> BaseSlide:
    try:
        reader = _backend(backend)
    except ImportError:
        if forced:
            raise SlideError(f"{path}: the {backend} backend is not installed") from None
        return _backend("tifffile")(path)  # rasterio absent: tifffile reads TIFFs too
    try:
        return reader(path)
    except SlideError as err:
        if not forced and backend == "rasterio" and "codec" in str(err).lower():
            return _backend("tifffile")(path)
        raise
