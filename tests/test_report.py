import json

import numpy as np
import pandas as pd
import pytest

from hubkit import rle
from hubkit.analysis import detection_metrics, glomeruli
from hubkit.annotations import load_features, rasterize
from hubkit.cli import main
from hubkit.report import histogram_image
from hubkit.slide_analysis import analyze_slide, cortex_density


def blobs(shape, centres, radius):
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, np.uint8)
    for r, c in centres:
        mask[(yy - r) ** 2 + (xx - c) ** 2 <= radius**2] = 1
    return mask


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


def test_histogram_handles_empty_and_nan_values():
    assert histogram_image(np.array([np.nan]), "t").shape == (240, 420, 3)
    img = histogram_image(np.arange(50.0), "t")
    assert (img[40:200, 20:400] != 255).any()


def test_analyze_command_writes_tables_geojson_and_report(tmp_path, capsys):
    from hubkit.competition import SlideSpec, make_competition

    comp = tmp_path / "comp"
    solution = make_competition(comp, None, (SlideSpec(1, 1, "bands"),))
    truth = solution["encoding"].iloc[0]
    h, w = int(solution["height"].iloc[0]), int(solution["width"].iloc[0])
    mask = rle.decode(truth, (h, w))
    mask[:, : w // 2] = 0  # the "prediction" finds only the right half's glomeruli
    pd.DataFrame({"id": ["local-0"], "predicted": [rle.encode(mask)]}).to_csv(tmp_path / "sub.csv", index=False)
    out = tmp_path / "report"
    assert main(["analyze", str(comp), "--pred", str(tmp_path / "sub.csv"), "--truth", str(comp / "solution.csv"),
                 "--pixel-size", "0.5", "--out", str(out)]) == 0
    expected = detection_metrics(mask, rle.decode(truth, (h, w)))
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[0, "tp"] == expected.tp and summary.loc[0, "fn"] == expected.fn and summary.loc[0, "fp"] == expected.fp
    folder = out / "local-0"
    table = pd.read_csv(folder / "glomeruli.csv")
    assert len(table) == len(glomeruli(mask)) and "area_um2" in table
    doc = json.loads((folder / "glomeruli.geojson").read_text())
    assert doc["type"] == "FeatureCollection" and "measurements" in doc["features"][0]["properties"]
    assert np.array_equal(rasterize(load_features(folder / "glomeruli.geojson"), (h, w)), mask)  # QuPath round trip
    page = (folder / "report.html").read_text()
    for name in ("overview.png", "review.png", "histograms.png", "missed.csv"):
        assert name in page and (folder / name).stat().st_size > 100


def test_analyze_one_slide_against_polygons_and_a_mask_image(tmp_path, capsys):
    import cv2

    from hubkit.annotations import mask_to_features, save_geojson
    from hubkit.tiffwrite import write_slide

    shape = (300, 400)
    truth = blobs(shape, [(60, 60), (150, 200), (240, 330)], 25)
    pred = blobs(shape, [(62, 58), (150, 200)], 25)
    write_slide(tmp_path / "s1.tiff", np.full((*shape, 3), 200, np.uint8))
    save_geojson(tmp_path / "truth.json", mask_to_features(truth))
    cv2.imwrite(str(tmp_path / "pred.png"), pred * 255)
    assert main(["analyze", str(tmp_path / "s1.tiff"), "--pred", str(tmp_path / "pred.png"),
                 "--truth", str(tmp_path / "truth.json"), "--out", str(tmp_path / "out")]) == 0
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.loc[0, ["tp", "fp", "fn"]].tolist() == [2, 0, 1]
    cv2.imwrite(str(tmp_path / "small.png"), pred[:10] * 255)
    assert main(["analyze", str(tmp_path / "s1.tiff"), "--pred", str(tmp_path / "small.png")]) == 2
    assert "does not match the slide" in capsys.readouterr().err
