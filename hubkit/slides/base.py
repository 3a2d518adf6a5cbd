"""What every slide is: windowed, optionally downscaled reads of a whole-slide image.

`BaseSlide` holds the reading logic the backends share (`hubkit.slides.reader.open_slide` picks a
backend for a file); `InMemorySlide` wraps an array with the same interface, for tests and
notebooks.

Every slide reads ``(row, col, height, width)`` windows in full-resolution pixels and returns
``(height, width, 3)`` uint8 RGB. Windows may reach past the image; those parts are filled with
``fill``. A read with ``scale=s`` returns the window shrunk ``s`` times (area averaging), reading
the closest pyramid level at or above that resolution, so the whole slide is never held at full
resolution.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Callable, Sequence

import cv2
import numpy as np

from hubkit.errors import SlideError
from hubkit.window import Window, as_window

__all__ = ["BaseSlide", "InMemorySlide", "PerThread", "as_rgb", "scaled_size"]

_LEVEL_TOLERANCE = 1.01  # a level 2.0003x smaller still serves a scale-2 read
_THUMB_BLOCK_PX = 4096  # full-resolution pixels per side of each block `thumbnail` reads (48 MB)


def scaled_size(n: int, scale: float) -> int:
    """Pixels that ``n`` full-resolution pixels become at downscale factor ``scale`` (at least 1)."""
    return max(1, int(math.floor(n / scale + 0.5)))


def as_rgb(array: np.ndarray, name: str = "<array>") -> np.ndarray:
    """Bring an image array to ``(height, width, 3)`` uint8.

    Accepts ``(H, W)`` grey, ``(H, W, 1|3|4)``, channel-first ``(1|3|4, H, W)`` and any of these
    with extra leading axes of length 1 (as tifffile returns some HuBMAP TIFFs). Alpha is dropped.

    Raises:
        SlideError: another dtype or shape; the message names ``name``.
    """
    a = _as_hwc(array, name)
    if a.shape[-1] == 1:
        return np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


def _as_hwc(array: np.ndarray, name: str) -> np.ndarray:
    """``(H, W, 1|3|4)`` uint8 from any layout `as_rgb` accepts (a view where possible)."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise SlideError(f"{name}: pixels are {a.dtype}; hubkit reads 8-bit RGB slides")
    while a.ndim > 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] not in (1, 3, 4) and a.shape[0] in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise SlideError(f"{name}: unsupported band layout {np.asarray(array).shape}; expected RGB, RGBA or grey")
    return a


class BaseSlide:
    """What every slide offers. Subclasses fill in `level_shapes` and `_read_level`.

    Attributes:
        name: the file path, or a label for in-memory slides; quoted in every error.
        level_shapes: ``(height, width)`` of each pyramid level, full resolution first.
        colour: ``"rgb"`` (colour pixels; palette images are expanded through their colour map)
            or ``"grey"`` (one band, repeated into R, G and B): a brightfield PAS model cannot
            predict a grey slide, and inference refuses one.
    """

    name: str
    level_shapes: list[tuple[int, int]]
    colour: str = "rgb"

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in full-resolution pixels."""
        return self.level_shapes[0]

    @property
    def level_downsamples(self) -> list[float]:
        """How many times smaller each level is than full resolution (1.0 first)."""
        h0, w0 = self.shape
        return [max(h0 / h, w0 / w) for h, w in self.level_shapes]

    def _read_level(self, level: int, window: Window) -> np.ndarray:
        """Read ``window`` (inside the level's bounds, in that level's pixels) as (h, w, 3) uint8."""
        raise NotImplementedError

    def read(self, window, scale: float = 1.0, fill: int = 0) -> np.ndarray:
        """Read a window, optionally shrunk.

        Args:
            window: ``(row, col, height, width)`` in full-resolution pixels; may reach past the
                image, but must overlap it.
            scale: downscale factor >= 1; the result is ``scaled_size(height, scale)`` x
                ``scaled_size(width, scale)``.
            fill: value (0-255) for the pixels outside the image.

        Returns:
            ``(out_height, out_width, 3)`` uint8 RGB.

        Raises:
            SlideError: the window misses the image, the scale is below 1, or the file fails.
        """
        win = as_window(window)
        if not scale >= 1:
            raise SlideError(f"{self.name}: scale is a downscale factor >= 1, got {scale}")
        out_h, out_w = scaled_size(win.height, scale), scaled_size(win.width, scale)
        inside = win.intersect(self.shape)
        if inside is None:
            raise SlideError(f"{self.name}: window {tuple(win)} lies outside the image {self.shape}")
        # Where the part inside the image lands in the output.
        r0 = int(math.floor((inside.row - win.row) / scale + 0.5))
        c0 = int(math.floor((inside.col - win.col) / scale + 0.5))
        r1 = min(out_h, max(r0 + 1, int(math.floor((inside.stop[0] - win.row) / scale + 0.5))))
        c1 = min(out_w, max(c0 + 1, int(math.floor((inside.stop[1] - win.col) / scale + 0.5))))
        level = self._pick_level(scale)
        chunk = self._read_level(level, self._to_level(level, inside))
        if chunk.shape[:2] != (r1 - r0, c1 - c0):
            chunk = cv2.resize(chunk, (c1 - c0, r1 - r0), interpolation=cv2.INTER_AREA)
        if (r1 - r0, c1 - c0) == (out_h, out_w):
            return chunk  # the window lies inside the image: no padding, no second copy
        out = np.full((out_h, out_w, 3), fill, np.uint8)
        out[r0:r1, c0:c1] = chunk
        return out

    def _pick_level(self, scale: float) -> int:
        usable = [i for i, f in enumerate(self.level_downsamples) if f <= scale * _LEVEL_TOLERANCE]
        return max(usable, key=lambda i: self.level_downsamples[i])

    def _to_level(self, level: int, window: Window) -> Window:
        """The level-``level`` pixels covering a full-resolution window (inside the image)."""
        if level == 0:
            return window
        (h0, w0), (h, w) = self.shape, self.level_shapes[level]
        fy, fx = h0 / h, w0 / w
        r0, c0 = int(window.row / fy), int(window.col / fx)
        r1 = min(h, max(r0 + 1, math.ceil(window.stop[0] / fy)))
        c1 = min(w, max(c0 + 1, math.ceil(window.stop[1] / fx)))
        return Window(r0, c0, r1 - r0, c1 - c0)

    def thumbnail(self, scale: int, fill: int = 0, threads: int = 2) -> np.ndarray:
        """The whole slide shrunk ``scale`` times, read block by block in ``threads`` threads.

        Returns:
            ``(scaled_size(H, scale), scaled_size(W, scale), 3)`` uint8, equal to
            ``read((0, 0, H, W), scale)`` but holding at most one 4096 x 4096 full-resolution
            block per thread.
        """
        from concurrent.futures import ThreadPoolExecutor

        scale = int(scale)
        if scale < 1:
            raise SlideError(f"{self.name}: thumbnail scale must be a whole number >= 1, got {scale}")
        h, w = self.shape
        out = np.empty((scaled_size(h, scale), scaled_size(w, scale), 3), np.uint8)
        step = max(1, _THUMB_BLOCK_PX // scale)  # output pixels per block side

        def fill_block(r: int, c: int) -> None:
            rows = min(step * scale, h - r * scale)
            cols = min(step * scale, w - c * scale)
            block = self.read((r * scale, c * scale, rows, cols), scale, fill)
            out[r : r + block.shape[0], c : c + block.shape[1]] = block[: out.shape[0] - r, : out.shape[1] - c]

        blocks = [(r, c) for r in range(0, out.shape[0], step) for c in range(0, out.shape[1], step)]
        with ThreadPoolExecutor(max(1, threads)) as pool:
            list(pool.map(lambda rc: fill_block(*rc), blocks))
        return out

    def close(self) -> None:
        """Release file handles. Reading after closing reopens them."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, shape={self.shape}, levels={len(self.level_shapes)})"


class InMemorySlide(BaseSlide):
    """A slide held in memory: same interface as a file-backed slide, for tests and notebooks.

    Args:
        image: ``(H, W, 3)`` uint8 (or any layout `as_rgb` accepts).
        name: label used in errors.
        levels: downsample factors of extra pyramid levels to precompute (e.g. ``(4, 16)``), to
            exercise level selection without a file.
    """

    def __init__(self, image: np.ndarray, name: str = "<memory>", levels: Sequence[int] = ()):
        self.name = name
        bands = _as_hwc(image, name)
        self.colour = "grey" if bands.shape[-1] == 1 else "rgb"
        self._levels = [as_rgb(bands, name)]
        h, w = self._levels[0].shape[:2]
        for f in levels:
            size = (max(1, math.ceil(w / f)), max(1, math.ceil(h / f)))
            self._levels.append(cv2.resize(self._levels[0], size, interpolation=cv2.INTER_AREA))
        self.level_shapes = [lv.shape[:2] for lv in self._levels]

    def _read_level(self, level: int, window: Window) -> np.ndarray:
        return self._levels[level][window.slices].copy()


class PerThread:
    """One handle per thread and per process (rasterio and file handles must not be shared).

    Args:
        opener: makes a new handle (called lazily in each thread that asks).
        closer: closes one handle.
    """

    def __init__(self, opener: Callable[[], object], closer: Callable[[object], None]):
        self._opener, self._closer = opener, closer
        self._local = threading.local()
        self._all: list[object] = []
        self._lock = threading.Lock()

    def get(self):
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.handle = self._opener()
            local.pid = os.getpid()
            with self._lock:
                self._all.append(local.handle)
        return local.handle

    def close(self) -> None:
        with self._lock:
            handles, self._all = self._all, []
        for h in handles:
            try:
                self._closer(h)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self._local = threading.local()
