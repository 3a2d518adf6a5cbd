"""One instance mask as text, the way the 2023 competition (and Open Images) wrote it.

``base64(zlib(COCO compressed RLE counts))``: the mask is run-length encoded by pycocotools
(column-major, its own compressed string form), the counts are zlib-compressed at the best level,
and the bytes are base64-encoded into ASCII. The mask's size is not part of the text; the
submission's ``height`` and ``width`` columns carry it.
"""

from __future__ import annotations

import base64
import binascii
import zlib

import numpy as np
from pycocotools import mask as coco_mask

from hubkit.errors import EncodingError

__all__ = ["encode_mask", "decode_mask"]


def encode_mask(mask: np.ndarray) -> str:
    """Encode a ``(height, width)`` binary mask (non-zero = inside) as base64(zlib(COCO RLE counts)).

    Raises:
        EncodingError: the mask is not 2-D.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise EncodingError(f"an instance mask is 2-D (height, width), got shape {mask.shape}")
    counts = coco_mask.encode(np.asfortranarray((mask != 0).astype(np.uint8)))["counts"]
    return base64.b64encode(zlib.compress(counts, zlib.Z_BEST_COMPRESSION)).decode("ascii")


def decode_mask(text: str, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """Decode `encode_mask`'s text into a ``(height, width)`` uint8 mask of 0 and 1.

    Args:
        text: the encoded mask.
        shape: ``(height, width)`` of the image it belongs to.
        name: what it is (an id and instance number), quoted in errors.

    Raises:
        EncodingError: not base64, not zlib data, not well-formed COCO counts, or counts that do not
            cover ``shape`` exactly.
    """
    h, w = int(shape[0]), int(shape[1])
    # Each of at most h * w + 1 runs takes at most 7 characters (5 bits each, 32-bit counts): more
    # is a decompression bomb, stopped before it is inflated.
    limit = 7 * (h * w + 1)
    inflater = zlib.decompressobj()
    try:
        counts = inflater.decompress(base64.b64decode(text, validate=True), limit)
    except (binascii.Error, ValueError, zlib.error) as err:
        raise EncodingError(f"{name}: not base64(zlib(COCO RLE)) text ({type(err).__name__}: {err})") from None
    if inflater.unconsumed_tail:
        raise EncodingError(f"{name}: decompresses past the {limit:,} bytes that the counts of a {h} x {w} mask "
                            "can take (a zlib bomb?)")
    if not inflater.eof:
        raise EncodingError(f"{name}: not base64(zlib(COCO RLE)) text (the zlib stream is cut short)")
    runs = _runs(counts, name)
    if int(runs.sum()) != h * w:
        raise EncodingError(f"{name}: COCO RLE counts cover {int(runs.sum()):,} pixels, not the {h * w:,} of a "
                            f"{h} x {w} image")
    pixels = np.repeat(np.resize(np.array([0, 1], np.uint8), len(runs)), runs)
    return np.ascontiguousarray(pixels.reshape(w, h).T)  # COCO numbers pixels down the columns


def _runs(counts: bytes, name: str) -> np.ndarray:
    """The run lengths in pycocotools' compressed counts string, checked (``rleFrString`` in maskApi.c).

    Each number is 5-bit groups, least significant first, as characters ``chr(48 + group)``; 0x20 marks
    that another group follows, and 0x10 in the last group is the sign. From the fourth number on, each
    is stored as its difference from the number two before it. pycocotools itself reads a number cut
    short, a negative run or counts short of the image without complaint (leaving its buffer unfilled),
    so they are checked here.

    Returns:
        ``(n,)`` int64 run lengths, alternating 0s and 1s, starting with 0s.

    Raises:
        EncodingError: a character outside the alphabet, a number cut short or over 7 groups, a negative run.
    """
    groups = np.frombuffer(counts, np.uint8).astype(np.int64) - 48
    if not len(groups) or groups.min() < 0 or groups.max() >= 64:  # the alphabet: chr(48..111)
        raise EncodingError(f"{name}: the decompressed bytes are not COCO compressed RLE counts")
    last = (groups & 0x20) == 0
    if not last[-1]:
        raise EncodingError(f"{name}: COCO RLE counts end in the middle of a number")
    number = np.concatenate([[0], np.cumsum(last)[:-1]])  # which number each group belongs to
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1])
    width = ends - starts + 1
    if width.max() > 7:  # 7 groups of 5 bits hold any 32-bit count
        raise EncodingError(f"{name}: a COCO RLE count runs over 7 characters")
    place = np.arange(len(groups)) - starts[number]
    values = np.zeros(len(ends), np.int64)
    np.add.at(values, number, (groups & 0x1F) << (5 * place))
    values -= np.where(groups[ends] & 0x10, np.left_shift(1, 5 * width), 0)  # sign-extend
    runs = values.copy()
    for first in (1, 2):  # the fourth number on is a difference from the number two before it
        if len(values) > first + 2:
            runs[first + 2 :: 2] = values[first] + np.cumsum(values[first + 2 :: 2])
    if runs.min() < 0:
        raise EncodingError(f"{name}: COCO RLE counts hold a negative run ({int(runs.min())})")
    return runs
