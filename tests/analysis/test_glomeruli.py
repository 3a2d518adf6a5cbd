import numpy as np
import pandas as pd
import pytest

from hubkit.analysis.glomeruli import components, detection_counts, detection_metrics, dice_breakdown, glomeruli, match
from hubkit.annotations import load_features, rasterize
from hubkit.errors import DataError
from hubkit.formats.metrics import dice_from_counts, mask_dice
from hubkit.slides import read_mask


def disc(shape, centre, radius):
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2).astype(np.uint8)


def test_records_of_hand_made_glomeruli():
    mask = np.zeros((100, 120), np.uint8)
    mask[10:30, 20:60] = 1  # a 20 x 40 rectangle
    mask |= disc(mask.shape, (70, 80), 15)
    prob = np.where(mask > 0, 0.8, 0.1).astype(np.float32)
    prob[20, 30] = 0.99
    table = glomeruli(mask, prob, pixel_size_um=0.5)
    assert len(table) == 2
    rect = table.iloc[0]
    assert rect.area_px == 800 and (rect.bbox_row0, rect.bbox_col0, rect.bbox_row1, rect.bbox_col1) == (10, 20, 30, 60)
    assert rect.centroid_row == pytest.approx(19.5) and rect.centroid_col == pytest.approx(39.5)
    assert rect.solidity == pytest.approx(1.0) and rect.confidence_max == pytest.approx(0.99)
    assert rect.equivalent_diameter_px == pytest.approx(np.sqrt(4 * 800 / np.pi))
    assert rect.area_um2 == pytest.approx(200.0)
    circle = table.iloc[1]
    assert circle.eccentricity < 0.1 and circle.confidence_mean == pytest.approx(0.8)
    assert circle.equivalent_diameter_px == pytest.approx(30, abs=1.0)


def test_offset_and_scale_put_records_in_slide_pixels():
    small = np.zeros((10, 10), np.uint8)
    small[2:4, 2:6] = 1
    table = glomeruli(small, offset=(1000, 2000), scale=4)
    row = table.iloc[0]
    assert row.area_px == 8 * 16 and (row.bbox_row0, row.bbox_col0) == (1008, 2008)
    assert np.isnan(row.confidence_max)


@pytest.mark.parametrize(
    "threshold, tp, fp, fn",
    [
        (0.5, 1, 2, 1),  # A matches; C is too small against B; D and the split pieces are false
        (0.1, 2, 1, 0),
    ],
)
def test_detection_counts(threshold, tp, fp, fn):
    truth = np.zeros((60, 100), np.uint8)
    truth[5:25, 5:25] = 1  # A
    truth[30:50, 50:90] = 1  # B
    pred = np.zeros_like(truth)
    pred[6:25, 5:25] = 1  # A, IoU 0.95
    pred[30:50, 50:62] = 1  # C: 240 of B's 800 px, IoU 0.3
    pred[40:45, 30:35] = 1  # D: nothing there
    d = detection_metrics(pred, truth, threshold)
    assert (d.tp, d.fp, d.fn) == (tp, fp, fn)
    assert detection_counts(components(pred), components(truth), threshold) == (tp, fp, fn)  # on numbered glomeruli
    assert d.detection_score == pytest.approx(tp / (tp + fp + fn))
    assert d.precision == pytest.approx(tp / (tp + fp)) and d.recall == pytest.approx(tp / (tp + fn))


def test_one_prediction_never_matches_two_glomeruli():
    truth = np.zeros((20, 40), np.uint8)
    truth[5:15, 5:15] = 1
    truth[5:15, 16:26] = 1
    pred = np.zeros_like(truth)
    pred[5:15, 5:26] = 1  # one blob over both
    pairs = match(pred, truth, iou_threshold=0.3)
    assert len(pairs) == 1 and pairs.iloc[0].iou == pytest.approx(100 / 210)


def test_real_glomeruli_polygons_against_their_masks(data_dir):
    folder = data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200"
    tiles = pd.read_csv(folder / "tiles.csv")
    for stem in tiles["stem"][:12]:
        truth = read_mask(folder / "masks" / f"{stem}.png")
        polygons = rasterize(load_features(folder / "annotations_labelme" / f"{stem}.json"), truth.shape)
        d = detection_metrics(polygons, truth)
        n = len(glomeruli(truth))
        assert d.fp == 0 and d.fn == 0 and d.tp == n, stem  # same outlines: every glomerulus matched
        # tiles.csv counts 4-connected components; two glomeruli touching at a corner are one here
        listed = int(tiles.loc[tiles["stem"] == stem, "n_mask_components"].iloc[0])
        assert listed - 1 <= n <= listed, stem


def _boxes(shape, *boxes):
    mask = np.zeros(shape, np.uint8)
    for r0, r1, c0, c1 in boxes:
        mask[r0:r1, c0:c1] = 1
    return mask


A, B = (5, 25, 5, 25), (30, 50, 50, 90)  # 400 and 800 px


@pytest.mark.parametrize(
    "pred, counts, bias",  # counts: tp, missed, extra, edge_fn, edge_fp
    [
        ((A, B), (1200, 0, 0, 0, 0), 1.0),
        ((), (0, 1200, 0, 0, 0), 1.0),
        (((6, 26, 5, 25), (40, 45, 30, 35)), (380, 800, 25, 20, 20), 1.0),  # A a row low, B missed, one extra
        (((5, 25, 5, 25), (30, 50, 50, 70), (30, 50, 72, 90)), (1160, 0, 0, 40, 0), float("inf")),  # B split
        (((5, 50, 5, 90),), (1200, 0, 0, 0, 45 * 85 - 1200), 0.0),  # one blob over both: all edge
        (((25, 30, 25, 50),), (0, 1200, 125, 0, 0), 1.0),  # touches A and B only at corners: no shared pixel
    ],
    ids=["exact", "nothing", "shifted-missed-extra", "split", "merged", "corner-touch"],
)
def test_dice_breakdown(pred, counts, bias):
    truth, pred = _boxes((60, 100), A, B), _boxes((60, 100), *pred)
    b = dice_breakdown(pred, truth)
    assert (b.tp, b.missed, b.extra, b.edge_fn, b.edge_fp) == counts and b.outline_bias == bias
    assert b.dice == pytest.approx(mask_dice(pred, truth))
    tp, missed, extra, edge_fn, edge_fp = counts
    assert b.dice_exact_edges == pytest.approx(dice_from_counts(tp + edge_fn, 2 * (tp + edge_fn) + missed + extra))
    assert b.dice_exact_detection == pytest.approx(dice_from_counts(tp + missed, 2 * (tp + missed) + edge_fn + edge_fp))
    assert (b + b).dice == pytest.approx(b.dice) and (b + b).tp == 2 * tp


def test_dice_breakdown_of_nothing_against_nothing_is_perfect():
    empty = np.zeros((8, 8), np.uint8)
    b = dice_breakdown(empty, empty)
    assert (b.dice, b.dice_exact_edges, b.dice_exact_detection) == (1.0, 1.0, 1.0)
    with pytest.raises(DataError, match="differ in shape"):
        dice_breakdown(empty, np.zeros((8, 9), np.uint8))
