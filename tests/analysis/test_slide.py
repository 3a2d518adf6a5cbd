import numpy as np
import pandas as pd
import pytest

from hubkit.analysis.glomeruli import detection_metrics, glomeruli
from hubkit.analysis.slide import analyze_slide, cortex_density
from hubkit.annotations import rasterize
from hubkit.formats import rle
from tests.helpers import blobs


@pytest.mark.parametrize("window, margin", [(128, 64), (200, 80), (1000, 100)])
def test_windowed_analysis_counts_each_glomerulus_once(window, margin):
    shape = (400, 530)
    centres = [(r, c) for r in range(30, 400, 61) for c in range(25, 530, 67)]  # many straddle window seams
    truth = blobs(shape, centres, 18)
    pred = blobs(shape, centres[1:] + [(365, 460)], 18)  # misses the first, adds a false one between others
    result = analyze_slide(shape, rle.encode(pred), rle.encode(truth), window=window, margin=margin)
    whole = detection_metrics(pred, truth)
    d = result.detection
    assert (d.tp, d.fp, d.fn) == (whole.tp, whole.fp, whole.fn) == (len(centres) - 1, 1, 1)
    assert d.dice == pytest.approx(whole.dice)
    assert len(result.predicted) == len(glomeruli(pred)) and len(result.missed) == 1
    assert sorted(result.predicted["area_px"]) == sorted(glomeruli(pred)["area_px"])
    assert result.missed.iloc[0][["centroid_row", "centroid_col"]].tolist() == pytest.approx([30, 25])
    assert result.predicted["matched"].sum() == d.tp


def test_features_outline_each_glomerulus_with_measurements():
    shape = (300, 300)
    pred = blobs(shape, [(60, 60), (200, 220)], 25)
    result = analyze_slide(shape, rle.encode(pred), window=128, margin=64)
    assert len(result.features) == 2
    assert np.array_equal(rasterize(result.features, shape), pred)
    areas = sorted(f.properties["measurements"]["area_px"] for f in result.features)
    assert areas == sorted(result.predicted["area_px"])


def test_density_counts_glomeruli_in_cortex_only():
    from hubkit.annotations import Feature

    shape = (1000, 2000)
    cortex = Feature({"type": "Polygon", "coordinates": [[[0, 0], [1000, 0], [1000, 1000], [0, 1000], [0, 0]]]}, "Cortex")
    table = pd.DataFrame({"centroid_row": [100.0, 500.0, 900.0], "centroid_col": [100.0, 900.0, 1500.0]})
    area, density = cortex_density(table, [cortex], shape, pixel_size_um=1.0)
    assert area == pytest.approx(1.0, rel=0.02)  # 1000 x 1000 px of 1 um = 1 mm^2 (on a 1/16 grid)
    assert density == pytest.approx(2 / area)  # the two centroids inside the cortex
