"""Specks removed from a slide's predicted mask, on its 2021 RLE, without decoding it.

A thresholded probability map holds small false blobs (a few hundred pixels of a PAS-dark tubule,
a fold, dust) that no glomerulus is: the smallest of aaa6a05cc's 96 annotated glomeruli covers
16,757 px at full HuBMAP resolution (146 px across). Each speck is a false glomerulus for
detection (F1) and a few false pixels for Dice. `remove_specks` (on an encoding; `drop_components`
on its runs) drops the 8-connected components smaller than an area straight from the runs: the
runs are cut into column pieces (an encoding numbers pixels down the columns), pieces in
neighbouring columns whose rows touch are joined (diagonal contact included), and the pieces of
each small component are left out. Time and memory follow the number of runs (tens of thousands
on a whole slide), never the slide's pixels, and components of any size and shape are measured
whole. Given seeds (the runs of a higher probability cut), components holding none of them go too:
hysteresis thresholding, on the runs.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from hubkit.errors import ConfigError, RLEError
from hubkit.formats.rle import format_runs, parse

__all__ = ["check_min_area", "column_pieces", "drop_components", "piece_components", "remove_specks"]


def check_min_area(min_area, where: str = "min_area") -> int:
    """``min_area`` if it is a whole number of pixels >= 0.

    Raises:
        ConfigError: anything else (a bool, a fraction, a negative number), naming ``where``.
    """
    if isinstance(min_area, bool) or not isinstance(min_area, (int, np.integer)) or min_area < 0:
        raise ConfigError(f"{where} must be a whole number of pixels >= 0, got {min_area!r}")
    return int(min_area)


def column_pieces(starts: np.ndarray, ends: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs cut at column boundaries: ``(col, row0, row1)`` of each piece, rows half-open.

    Args:
        starts, ends: sorted, disjoint 0-based half-open runs of column-major flat indices
            (`hubkit.formats.rle.parse`).
        height: the image height.

    Returns:
        Three ``(n,)`` int64 arrays, sorted by column then row. A run spanning k columns gives k
        pieces, so there are at most ``runs + width`` pieces.
    """
    first, last = starts // height, (ends - 1) // height
    spans = last - first + 1
    run = np.repeat(np.arange(starts.size), spans)
    step = np.arange(run.size) - np.repeat(np.cumsum(spans) - spans, spans)
    col = first[run] + step
    row0 = np.where(step == 0, starts[run] - first[run] * height, 0)
    row1 = np.where(col == last[run], ends[run] - last[run] * height, height)
    return col, row0, row1


def piece_components(col: np.ndarray, row0: np.ndarray, row1: np.ndarray, height: int) -> np.ndarray:
    """The 8-connected component of each column piece (`column_pieces`), numbered from 0.

    Two pieces touch when they lie in neighbouring columns and their rows overlap or meet
    diagonally (``b0 <= a1`` and ``a0 <= b1``), or lie end to end in one column (adjacent runs).
    """
    n = col.size
    stride = height + 1
    first_keys, last_keys = col * stride + row0, col * stride + row1
    # Pieces of the next column touching piece a: b1 >= a0 (from lo) and b0 <= a1 (before hi).
    lo = np.searchsorted(last_keys, (col + 1) * stride + row0, side="left")
    hi = np.maximum(np.searchsorted(first_keys, (col + 1) * stride + row1, side="right"), lo)
    count = hi - lo
    a = np.repeat(np.arange(n), count)
    b = np.repeat(lo, count) + np.arange(a.size) - np.repeat(np.cumsum(count) - count, count)
    same = np.flatnonzero((col[1:] == col[:-1]) & (row0[1:] <= row1[:-1]))
    a, b = np.concatenate((a, same)), np.concatenate((b, same + 1))
    graph = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def drop_components(starts: np.ndarray, ends: np.ndarray, shape: tuple[int, int], min_area: int, *,
                    seed_starts: Optional[np.ndarray] = None,
                    name: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """`remove_specks` on runs: the runs without the 8-connected components of fewer than
    ``min_area`` pixels, nor (given ``seed_starts``) those that hold no seed run's first pixel.

    Args:
        starts, ends: sorted, disjoint 0-based half-open runs of column-major flat indices of a
            ``(height, width)`` mask (`hubkit.formats.rle.parse`, `StripEncoder.finish_runs`).
        shape: ``(height, width)``.
        min_area: in pixels; 0 keeps components of any size.
        seed_starts: the first pixels of the runs of a mask inside this one (a higher cut); a
            component is kept only where one lies in it. None keeps every component.
        name: the slide id, quoted in errors.

    Returns:
        ``(starts, ends)`` of the kept pixels, adjacent runs joined (the input arrays themselves
        when nothing was dropped).

    Raises:
        RLEError: a seed outside the mask (names the slide).
        ConfigError: a ``min_area`` that is not a whole number >= 0.
    """
    min_area = check_min_area(min_area)
    if not starts.size or (not min_area and seed_starts is None):
        return starts, ends
    height = int(shape[0])
    col, row0, row1 = column_pieces(starts, ends, height)
    labels = piece_components(col, row0, row1, height)
    area = np.bincount(labels, weights=row1 - row0)
    keep = area[labels] >= min_area
    flat0, flat1 = col * height + row0, col * height + row1
    if seed_starts is not None:
        piece = np.searchsorted(flat0, seed_starts, side="right") - 1  # the piece each seed run starts in
        if seed_starts.size and ((piece < 0) | (seed_starts >= flat1[np.maximum(piece, 0)])).any():
            raise RLEError(f"{name or 'mask'}: seed pixels outside the mask (seeds must come from a higher cut)")
        seeded = np.zeros(area.size, bool)
        seeded[labels[piece]] = True
        keep &= seeded[labels]
    if keep.all():
        return starts, ends
    flat0, flat1 = flat0[keep], flat1[keep]
    if not flat0.size:
        return flat0, flat1
    cut = np.flatnonzero(flat0[1:] != flat1[:-1]) + 1  # pieces that continue a run join it again
    return flat0[np.concatenate(([0], cut))], flat1[np.concatenate((cut - 1, [flat1.size - 1]))]


def remove_specks(encoding: str, shape: tuple[int, int], min_area: int, *, seeds: Optional[str] = None,
                  name: Optional[str] = None) -> str:
    """An encoding without its 8-connected components of fewer than ``min_area`` pixels, nor (given
    ``seeds``) those that hold no seed pixel (`drop_components` on the parsed runs).

    Args:
        encoding: the 2021 competition's RLE of a ``(height, width)`` mask.
        shape: ``(height, width)``.
        min_area: in pixels of the encoding (full resolution); 0 keeps components of any size.
        seeds: the RLE of a mask inside ``encoding``'s (the pixels above a higher probability cut):
            a component is kept only where it holds one of them (hysteresis thresholding: outlines
            drawn at the low cut, glomeruli found at the high one). None keeps every component.
        name: the slide id, quoted in errors.

    Returns:
        The encoding with those components' pixels removed (``encoding`` itself when none were).

    Raises:
        RLEError: a malformed encoding or seeds, or a seed pixel outside ``encoding``'s mask (names
            the slide); with ``min_area`` 0 and no seeds the encoding is not read.
        ConfigError: a ``min_area`` that is not a whole number >= 0.
    """
    if not check_min_area(min_area) and seeds is None:
        return encoding  # nothing to remove: no need to parse (the sink's default when turned off)
    starts, ends = parse(encoding, shape, name=name)
    seed_starts = None if seeds is None else parse(seeds, shape, name=name)[0]
    kept = drop_components(starts, ends, shape, min_area, seed_starts=seed_starts, name=name)
    return encoding if kept[0] is starts else format_runs(*kept)
