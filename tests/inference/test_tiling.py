import numpy as np
import pytest

from hubkit.inference.tiling import (
    MIN_TISSUE_FRACTION,
    grid_starts,
    iter_windows,
    tissue_fraction,
    tissue_mask,
)
from hubkit.slides import InMemorySlide, read_image, read_mask
from hubkit.testbed.mosaic import GLASS_RGB
from hubkit.window import Window


@pytest.mark.parametrize(
    "length, size, overlap, expected",
    [
        (10, 4, 0.0, [0, 4, 6]),  # last tile snapped back to the edge
        (12, 4, 0.0, [0, 4, 8]),
        (10, 4, 0.5, [0, 2, 4, 6]),
        (10, 4, 1, [0, 3, 6]),  # int overlap = pixels
        (3, 4, 0.0, [0]),  # tile larger than the image: one tile at 0, padded by readers
        (4, 4, 0.25, [0]),
        (1000, 512, 0.25, [0, 384, 488]),
    ],
)
def test_grid_starts(length, size, overlap, expected):
    assert grid_starts(length, size, overlap) == expected


@pytest.mark.parametrize("overlap", [1.0, -0.1, 4, -1, True])
def test_bad_overlap(overlap):
    with pytest.raises(ValueError, match="overlap"):
        grid_starts(10, 4, overlap)


@pytest.mark.parametrize("shape, roi, overlap", [((37, 53), 16, 0.0), ((37, 53), (8, 20), 0.3), ((5, 5), 16, 0.5)])
def test_windows_cover_every_pixel_and_stay_inside(shape, roi, overlap):
    cover = np.zeros(shape, int)
    for w in iter_windows(shape, roi, overlap):
        if w.height <= shape[0] and w.width <= shape[1]:
            assert w.row >= 0 and w.col >= 0 and w.row + w.height <= shape[0] and w.col + w.width <= shape[1]
        cover[w.slices] += 1
    assert cover.min() >= 1


def test_tissue_mask_separates_real_tissue_from_glass(data_dir):
    folder = data_dir / "aidpath-pas-glomeruli-1024"
    tiles = sorted((folder / "images").glob("*.png"))
    assert len(tiles) == 24
    lowest = 1.0
    for path in tiles:  # every tile holds a glomerulus: tiles showing one must never be skipped
        thumb = InMemorySlide(read_image(path)).thumbnail(8)
        tissue = tissue_mask(thumb)
        glomerulus = read_mask(folder / "masks" / path.name)
        for win in iter_windows(glomerulus.shape, 256):
            if glomerulus[win.slices].mean() > 0.05:
                lowest = min(lowest, tissue_fraction(tissue, win, mask_scale=8))
    assert lowest > 2 * MIN_TISSUE_FRACTION  # margin over the default skip threshold
    glass = np.empty((64, 64, 3), np.uint8)
    glass[:] = GLASS_RGB
    black = np.zeros((64, 64, 3), np.uint8)  # padding outside a slide
    assert tissue_mask(glass).sum() == 0 and tissue_mask(black).sum() == 0


@pytest.mark.parametrize(
    "window, expected",
    [
        (Window(0, 0, 8, 8), 1.0),  # all tissue
        (Window(0, 8, 8, 8), 0.0),  # all glass
        (Window(0, 4, 8, 8), 0.5),
        (Window(-8, 0, 16, 8), 0.5),  # half outside the slide counts as not tissue
    ],
)
def test_tissue_fraction(window, expected):
    mask = np.zeros((4, 8), bool)
    mask[:, :4] = True  # at scale 2: left 8 full-res columns are tissue
    assert tissue_fraction(mask, window, mask_scale=2) == pytest.approx(expected)
