import base64
import zlib

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from hubkit.errors import EncodingError
from hubkit.formats.coco import decode_mask, encode_mask


def _random_blobs(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.random((shape[0] // 4 + 1, shape[1] // 4 + 1)) > 0.7).repeat(4, 0).repeat(4, 1)[: shape[0], : shape[1]]


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((512, 512), bool),
        np.ones((512, 512), bool),
        _random_blobs((512, 512), 0),
        _random_blobs((7, 13), 1),
        _random_blobs((1, 1), 2),
        np.pad(np.ones((3, 5), bool), ((1, 2), (0, 4))),
    ],
    ids=["empty", "full", "blobs-512", "blobs-odd", "one-pixel", "box"],
)
def test_round_trip_and_the_competition_encoding(mask):
    text = encode_mask(mask)
    assert text.isascii() and " " not in text
    np.testing.assert_array_equal(decode_mask(text, mask.shape), mask.astype(np.uint8))
    # The competition's own recipe: base64(zlib(COCO counts of a Fortran-ordered (H, W, 1) uint8 mask)).
    counts = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)[..., None]))[0]["counts"]
    assert zlib.decompress(base64.b64decode(text)) == counts


def _text(counts: bytes) -> str:
    return base64.b64encode(zlib.compress(counts)).decode()


@pytest.mark.parametrize(
    "text, shape, message",
    [
        ("not base64!", (4, 4), "not base64"),
        (base64.b64encode(b"plain bytes").decode(), (4, 4), "not base64\\(zlib"),
        (base64.b64encode(zlib.compress(b"\x01\x02")).decode(), (4, 4), "not COCO compressed RLE"),
        (encode_mask(np.ones((10, 10))), (20, 20), "cover 100 pixels, not the 400 of a 20 x 20 image"),
        (encode_mask(np.ones((10, 10))), (4, 4), "cover 100 pixels, not the 16 of a 4 x 4 image"),
        (_text(b"5O"), (2, 2), "a negative run \\(-1\\)"),  # runs 5, -1: they add up to 4, pycocotools takes it
        (_text(b"00P"), (2, 2), "end in the middle of a number"),
        (_text(b"P" * 7 + b"0"), (2, 2), "runs over 7 characters"),
        (base64.b64encode(zlib.compress(b"0" * 10_000_000)).decode(), (512, 512),  # 10 KB that inflate to 10 MB
         "decompresses past the 1,835,015 bytes .* 512 x 512 mask"),
        (encode_mask(np.ones((10, 10)))[:-8], (10, 10), "not base64|cut short"),
    ],
)
def test_bad_masks_are_refused_with_the_reason(text, shape, message):
    with pytest.raises(EncodingError, match=message):
        decode_mask(text, shape, "tile-1, instance 0")


def test_masks_must_be_two_dimensional():
    with pytest.raises(EncodingError, match="2-D"):
        encode_mask(np.zeros((2, 2, 2)))
