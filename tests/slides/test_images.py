import cv2
import numpy as np
import pytest

from hubkit.errors import DataError
from hubkit.slides import read_mask
from tests.helpers import blobs, smooth_image

DISC = blobs((64, 80), [(30, 40)], 12)


@pytest.mark.parametrize("name, pixels, expected", [
    ("binary.png", DISC, DISC),
    ("0-255.png", DISC * 255, DISC),
    ("labels.png", DISC * 3, DISC),  # class 3 of a label image: foreground
    ("red-on-black.png", np.dstack([np.zeros_like(DISC), np.zeros_like(DISC), DISC * 255]), DISC),  # BGR red
    ("grey-as-rgb.png", np.dstack([DISC * 255] * 3), DISC),
    ("16-bit.png", DISC.astype(np.uint16) * 65535, DISC),
    ("photo.png", smooth_image((64, 80)), "distinct pixel values; a mask holds a few labels"),
    ("noise.png", np.random.default_rng(0).integers(0, 256, (64, 80), dtype=np.uint8), "not a mask"),
    ("missing.png", None, "cannot read mask image"),
])
def test_read_mask(tmp_path, name, pixels, expected):
    path = tmp_path / name
    if pixels is not None:
        cv2.imwrite(str(path), pixels)
    if isinstance(expected, str):
        with pytest.raises(DataError, match=expected) as info:
            read_mask(path)
        assert name in str(info.value)
    else:
        assert np.array_equal(read_mask(path), expected)
