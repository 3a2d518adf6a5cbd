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
        EncodingError: not base64, not zlib data, or COCO counts that do not fill ``shape``.
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
    if not counts or not all(48 <= b < 112 for b in counts):  # pycocotools' counts alphabet: chr(48..111)
        raise EncodingError(f"{name}: the decompressed bytes are not COCO compressed RLE counts")
    try:
        mask = coco_mask.decode({"size": [h, w], "counts": counts})
    except Exception as err:  # noqa: BLE001 - pycocotools raises bare errors for bad counts
        raise EncodingError(f"{name}: COCO RLE counts do not decode at {h} x {w} ({err})") from None
    if int(coco_mask.area({"size": [h, w], "counts": counts})) != int(mask.sum()):
        raise EncodingError(f"{name}: COCO RLE counts do not add up to a {h} x {w} image")
    return np.ascontiguousarray(mask)
