import json

import numpy as np
import pandas as pd
import pytest

from hubkit.analysis.glomeruli import detection_metrics, glomeruli
from hubkit.annotations import load_features, rasterize
from hubkit.cli import main
from hubkit.formats import rle
from tests.helpers import blobs


def test_analyze_command_writes_tables_geojson_and_report(tmp_path, capsys):
    from hubkit.testbed import SlideSpec, make_competition

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
    from hubkit.slides import write_slide

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


def test_a_slide_given_as_its_own_prediction_mask_is_refused(tmp_path, capsys):
    from hubkit.slides import write_slide
    from tests.helpers import smooth_image

    write_slide(tmp_path / "s1.tiff", smooth_image((200, 300)), compression=None)
    assert main(["analyze", str(tmp_path / "s1.tiff"), "--pred", str(tmp_path / "s1.tiff"),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "s1.tiff" in err and "not a mask" in err


@pytest.mark.slow
def test_analysing_a_folder_on_dask_gives_the_local_summary(tmp_path):
    pytest.importorskip("distributed", reason="needs the dask extra")
    from hubkit.analysis.run import analyze
    from hubkit.slides import write_slide
    from tests.helpers import csv_file

    (tmp_path / "test").mkdir()
    rows, truth = [], []
    for k in range(3):
        shape = (300, 400 + 40 * k)
        write_slide(tmp_path / "test" / f"s{k}.tiff", np.full((*shape, 3), 200, np.uint8))
        rows.append((f"s{k}", rle.encode(blobs(shape, [(60, 60), (150, 200 + k)], 25))))
        truth.append((f"s{k}", rle.encode(blobs(shape, [(62, 58), (240, 330)], 25))))
    pred = csv_file(tmp_path / "pred.csv", ["id", "predicted"], rows)
    sol = csv_file(tmp_path / "sol.csv", ["id", "encoding"], truth)
    classifier = _tiny_classifier(tmp_path / "zoo")
    local = analyze(tmp_path, pred, sol, out=tmp_path / "local", log=lambda _: None, classifier=classifier)
    spread = analyze(tmp_path, pred, sol, out=tmp_path / "dask", log=lambda _: None, engine="dask", workers=2,
                     classifier=str(classifier))
    pd.testing.assert_frame_equal(spread, local)
    assert {"sclerotic", "percent_sclerotic"} <= set(local.columns)
    assert (tmp_path / "dask" / "s2" / "glomeruli.geojson").read_bytes() == (tmp_path / "local" / "s2" / "glomeruli.geojson").read_bytes()


def _tiny_classifier(folder):
    """A random resnet18 glomerulus classifier saved in ``folder``."""
    import torch

    from hubkit.models import create_model, zoo
    from tests.models.test_classifier import classifier_card

    torch.manual_seed(0)
    zoo.save(create_model("Classifier", "resnet18").eval(), classifier_card(), folder)
    return folder


@pytest.mark.parametrize("engine, models, message", [
    ("ray", None, "engine 'ray' is not one of local, dask"),
    ("dask", "ensemble", "pass a source"),
    ("dask", "classifier", "loads the classifier on each worker"),
])
def test_engine_errors(tmp_path, engine, models, message):
    from hubkit.analysis.run import analyze
    from hubkit.analysis.sclerosis import GlomerulusClassifier
    from hubkit.errors import ConfigError
    from tests.helpers import echo

    (tmp_path / "test").mkdir()
    pd.DataFrame({"id": [], "predicted": []}).to_csv(tmp_path / "pred.csv", index=False)
    classifier = GlomerulusClassifier.load(_tiny_classifier(tmp_path / "gs")) if models == "classifier" else None
    with pytest.raises(ConfigError, match=message):
        analyze(tmp_path, tmp_path / "pred.csv", ensemble=echo() if models == "ensemble" else None, engine=engine,
                classifier=classifier)
