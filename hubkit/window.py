"""Pixel windows on a slide.

Convention used everywhere in hubkit: positions are ``(row, col)`` and sizes are
``(height, width)``, in full-resolution slide pixels unless a docstring says otherwise.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from hubkit.errors import ConfigError


class Window(NamedTuple):
    """A rectangle of pixels: top-left ``(row, col)`` and size ``(height, width)``.

    Coordinates may be negative or reach past the image: readers pad such parts.
    """

    row: int
    col: int
    height: int
    width: int

    @property
    def stop(self) -> tuple[int, int]:
        """``(row, col)`` one past the bottom-right pixel."""
        return self.row + self.height, self.col + self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices for indexing an array that starts at (0, 0)."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)

    def intersect(self, shape: tuple[int, int]) -> Optional["Window"]:
        """The part of this window inside an image of ``shape`` (height, width), or None."""
        r0, c0 = max(self.row, 0), max(self.col, 0)
        r1, c1 = min(self.row + self.height, shape[0]), min(self.col + self.width, shape[1])
        if r1 <= r0 or c1 <= c0:
            return None
        return Window(r0, c0, r1 - r0, c1 - c0)


def as_window(window) -> Window:
    """Coerce a 4-sequence ``(row, col, height, width)`` into a validated `Window`.

    Raises:
        ConfigError: if it is not four integers or the size is not positive.
    """
    try:
        row, col, height, width = (int(v) for v in window)
    except (TypeError, ValueError):
        raise ConfigError(f"a window is (row, col, height, width) integers, got {window!r}") from None
    if any(int(v) != v for v in window):
        raise ConfigError(f"window coordinates must be whole pixels, got {window!r}")
    if height <= 0 or width <= 0:
        raise ConfigError(f"window size must be positive, got height={height}, width={width}")
    return Window(row, col, height, width)
