import numpy as np
import pytest

from hubkit.inference.blend import ColumnMerger, importance_map
from hubkit.inference.tiling import grid_starts
from hubkit.window import Window


def stitch(image, roi, overlap, mode):
    """Run an identity 'predictor' over a grid, column by column, and join the released strips."""
    h, w = image.shape[1:]
    merger = ColumnMerger((h, w), channels=image.shape[0])
    weight = importance_map(roi, mode)
    col_starts = grid_starts(w, roi, overlap)
    strips = []
    for j, c in enumerate(col_starts):
        for r in grid_starts(h, roi, overlap):
            tile = np.zeros((image.shape[0], roi, roi), np.float32)  # boundless read: zero padding
            part = image[:, r : r + roi, c : c + roi]
            tile[:, : part.shape[1], : part.shape[2]] = part
            merger.add(Window(r, c, roi, roi), tile, weight)
        nxt = col_starts[j + 1] if j + 1 < len(col_starts) else w
        strips.extend(merger.release(nxt))
    strips.extend(merger.finish())
    assert [s[0] for s in strips] == sorted(s[0] for s in strips)
    return np.concatenate([s[1] for s in strips], axis=2)


@pytest.mark.parametrize("mode", ["gaussian", "constant"])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.75])
@pytest.mark.parametrize("shape, roi", [((37, 53), 16), ((64, 64), 32), ((9, 11), 32), ((101, 7), 24)])
def test_stitching_an_identity_predictor_gives_back_the_input(shape, roi, overlap, mode):
    rng = np.random.default_rng(0)
    image = rng.random((2, *shape)).astype(np.float32)
    out = stitch(image, roi, overlap, mode)
    assert out.shape == image.shape
    np.testing.assert_allclose(out, image, rtol=1e-5, atol=1e-6)


def test_gaussian_weights_peak_in_the_middle():
    w = importance_map((32, 48))
    assert w.shape == (32, 48) and w.max() == pytest.approx(1.0, abs=0.01)
    assert w[16, 24] > w[0, 24] and w[16, 24] > w[16, 0] and w.min() > 0


def test_merger_refuses_tiles_left_of_released_columns_and_nans():
    merger = ColumnMerger((8, 8))
    weight = importance_map(4, "constant")
    merger.add(Window(0, 0, 4, 4), np.ones((4, 4)), weight)
    list(merger.release(4))
    with pytest.raises(ValueError, match="left of released column 4"):
        merger.add(Window(0, 2, 4, 4), np.ones((4, 4)), weight)
    with pytest.raises(ValueError, match="NaN"):
        merger.add(Window(0, 4, 4, 4), np.full((4, 4), np.nan), weight)


def test_uncovered_pixels_are_background():
    merger = ColumnMerger((4, 8))
    merger.add(Window(0, 0, 4, 4), np.ones((4, 4)), importance_map(4))
    (_, strip), = list(merger.finish())
    assert strip[0, :, :4].min() == 1 and strip[0, :, 4:].max() == 0
