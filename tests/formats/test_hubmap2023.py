import shutil

import numpy as np
import pandas as pd
import pytest

from hubkit.cli import main
from hubkit.errors import ConfigError, EncodingError, SubmissionError
from hubkit.formats import get_format
from hubkit.formats.hubmap2023 import (
    CLASS_IDS,
    HuBMAP2023,
    Instance,
    extract_instances,
    format_instances,
    parse_instances,
)
from hubkit.formats.metrics import open_images_ap
from hubkit.slides import read_image, read_mask, write_slide
from tests.helpers import csv_file, smooth_image

SHAPE = (64, 80)


def _blob(r, c, h, w, shape=SHAPE):
    m = np.zeros(shape, bool)
    m[r : r + h, c : c + w] = True
    return m


def test_instances_are_components_scored_by_their_mean_probability():
    prob = np.zeros((2, *SHAPE), np.float32)
    prob[0][_blob(2, 2, 10, 10)] = 0.9
    prob[0][_blob(30, 40, 6, 8)] = 0.6
    prob[0][_blob(50, 70, 2, 2)] = 0.99  # a speck under min_area
    prob[1][_blob(20, 5, 12, 12)] = 0.7
    found = extract_instances(prob, ["blood_vessel", "glomerulus"], threshold=0.5, min_area=16)
    assert [(i.class_id, round(i.score, 3), int(i.mask.sum())) for i in found] == [(0, 0.9, 100), (1, 0.7, 144), (0, 0.6, 48)]


def test_channels_of_no_competition_class_are_ignored():
    prob = np.full((1, *SHAPE), 0.9, np.float32)
    assert extract_instances(prob, ["healthy"], 0.5) == []


def test_prediction_strings_round_trip():
    instances = [Instance(0, 0.875, _blob(1, 1, 5, 9)), Instance(2, 0.25, _blob(40, 3, 7, 7))]
    text = format_instances(instances)
    assert text.split()[:2] == ["0", "0.875"] and len(text.split()) == 6
    back = parse_instances(text, SHAPE, "x")
    assert [(i.class_id, i.score) for i in back] == [(0, 0.875), (2, 0.25)]
    for a, b in zip(instances, back):
        np.testing.assert_array_equal(a.mask, b.mask)
    assert parse_instances("", SHAPE) == []


GOOD = format_instances([Instance(0, 0.5, _blob(0, 0, 4, 4))]).split()[2]


@pytest.mark.parametrize(
    "text, message",
    [
        (f"0 0.5 {GOOD} 1", "4 values"),
        (f"x 0.5 {GOOD}", "class 'x'"),
        (f"-1 0.5 {GOOD}", "class '-1'"),
        (f"٣ 0.5 {GOOD}", "class"),  # a non-ASCII digit
        (f"0 nan {GOOD}", "score 'nan'"),
        (f"0 1.5 {GOOD}", "score '1.5'"),
        (f"0 high {GOOD}", "score 'high'"),
        ("0 0.5 AAAA", "instance 0"),
    ],
)
def test_malformed_prediction_strings_name_the_id_and_instance(text, message):
    with pytest.raises(EncodingError, match=message) as err:
        parse_instances(text, SHAPE, "tile-7")
    assert "tile-7" in str(err.value)


def test_the_sink_refuses_models_of_no_competition_class():
    with pytest.raises(ConfigError, match="blood_vessel, glomerulus, unsure.*\\['healthy', 'unhealthy'\\]"):
        HuBMAP2023().sink((512, 512), ["healthy", "unhealthy"], 0.5)


def _tables(tmp_path, predictions, truths):
    rows = lambda d: [(i, SHAPE[0], SHAPE[1], format_instances(v)) for i, v in d.items()]  # noqa: E731
    sub = csv_file(tmp_path / "sub.csv", list(HuBMAP2023.columns), rows(predictions))
    sol = csv_file(tmp_path / "sol.csv", list(HuBMAP2023.columns), rows(truths))
    return sub, sol


def test_score_prints_the_metric_on_its_last_line(tmp_path, capsys):
    a, b, c = _blob(0, 0, 10, 10), _blob(30, 30, 10, 10), _blob(50, 60, 8, 8)
    truths = {"t1": [Instance(0, 1, a), Instance(0, 1, b), Instance(1, 1, c)], "t2": [Instance(0, 1, c)]}
    predictions = {"t1": [Instance(0, 0.9, a), Instance(0, 0.8, c), Instance(1, 0.99, c)], "t2": [Instance(0, 0.3, c)]}
    sub, sol = _tables(tmp_path, predictions, truths)
    expected, _ = open_images_ap([[(0.9, a), (0.8, c)], [(0.3, c)]], [[a, b], [c]], 0.6)
    assert main(["score", str(sub), str(sol)]) == 0  # the format is recognised from the columns
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"mAP@0.6 {expected:.4f}" and expected == pytest.approx(1 / 3 + 1 / 3 * 2 / 3)
    assert main(["score", str(sub), str(sol), "--format", "hubmap2023", "--class", "glomerulus"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "mAP@0.6 1.0000"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda sub, sol: sub.assign(height=32), "is 32 x 80, the solution says 64 x 80"),
        (lambda sub, sol: sub.assign(width="wide"), "width 'wide'"),
        (lambda sub, sol: sub.iloc[:1], r"ids missing \['t2'\]"),
        (lambda sub, sol: sub.drop(columns="prediction_string"), "missing columns"),
    ],
)
def test_score_errors_name_the_file_and_the_problem(tmp_path, change, message):
    sub, sol = _tables(tmp_path, {"t1": [], "t2": []}, {"t1": [Instance(0, 1, _blob(0, 0, 5, 5))], "t2": []})
    change(pd.read_csv(sub, dtype=str, keep_default_na=False), None).to_csv(sub, index=False)
    with pytest.raises(SubmissionError, match=message):
        HuBMAP2023().score(sub, sol)


def test_a_solution_without_the_scored_class_is_refused(tmp_path):
    sub, sol = _tables(tmp_path, {"t1": []}, {"t1": [Instance(1, 1, _blob(0, 0, 5, 5))]})
    with pytest.raises(SubmissionError, match="no true blood_vessel instance"):
        get_format("hubmap2023").score(sub, sol)


def test_placeholders_take_sizes_from_the_sample_else_from_the_tile(tmp_path):
    (tmp_path / "test").mkdir()
    write_slide(tmp_path / "test" / "b.tif", smooth_image((40, 24)), tile=16)
    csv_file(tmp_path / "sample_submission.csv", ["id", "height", "width", "prediction_string"], [("a", 512, 512, "")])
    fmt = HuBMAP2023()
    assert fmt.placeholders(tmp_path, ["a", "b"]) == {
        "a": {"height": "512", "width": "512", "prediction_string": ""},
        "b": {"height": "40", "width": "24", "prediction_string": ""},
    }


def _vasculature_competition(data_dir, root):
    """A 2023-format folder from the real tiles: 8 original LZW TIFFs and the labelled PNG tile."""
    samples = data_dir / "hubmap-2023-vasculature-samples"
    (root / "test").mkdir(parents=True)
    for tif in sorted((samples / "unlabelled").glob("*.tif")):
        shutil.copy(tif, root / "test" / tif.name)
    write_slide(root / "test" / "0006ff2aa7cd.tif", read_image(samples / "labelled" / "images" / "0006ff2aa7cd.png"))
    ids = sorted(p.stem for p in (root / "test").glob("*.tif"))
    csv_file(root / "sample_submission.csv", list(HuBMAP2023.columns), [(i, 512, 512, "") for i in ids])
    truth = read_mask(samples / "labelled" / "masks" / "0006ff2aa7cd.png")
    return ids, truth


def test_predict_writes_the_2023_format_on_the_real_tiles(data_dir, tmp_path):
    ids, truth = _vasculature_competition(data_dir, tmp_path / "comp")
    out = tmp_path / "sub.csv"
    assert main(["predict", str(tmp_path / "comp"), "--format", "hubmap2023", "--out", str(out), "--quiet",
                 "--tta", "none"]) == 0
    sub = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert sub.columns.tolist() == list(HuBMAP2023.columns) and sub["id"].tolist() == ids
    assert (sub["height"] == "512").all() and (sub["width"] == "512").all()
    for row in sub.itertuples():
        for inst in parse_instances(row.prediction_string, (512, 512), row.id):
            assert inst.class_id == CLASS_IDS["glomerulus"] and 0.5 < inst.score <= 1  # the starter predicts glomeruli
    # The labelled tile's glomerulus (cut by the tile's top and left edges) is found as one instance.
    found = parse_instances(sub.set_index("id").loc["0006ff2aa7cd", "prediction_string"], (512, 512))
    best = max(((i.mask & (truth > 0)).sum() / (i.mask | (truth > 0)).sum() for i in found), default=0.0)
    assert best > 0.6


def test_a_vessel_model_predicts_and_scores_through_the_seam(tmp_path, capsys):
    """An echo 'model' whose class is blood_vessel: its instances are the tile's bright-red blobs, so
    a solution drawn from those blobs scores AP 1 end to end (predict -> submission -> score)."""
    from hubkit.formats.hubmap2023 import HuBMAP2023, Instance
    from hubkit.inference import PredictConfig, predict_folder
    from tests.helpers import EXACT, echo

    (tmp_path / "test").mkdir()
    truths = {}
    for k, centre in enumerate([(60, 60), (200, 300)]):
        rgb = np.full((512, 512, 3), 40, np.uint8)
        rgb[..., 1:] = 200  # saturated: tissue everywhere
        blob = _blob(centre[0], centre[1], 50, 70, (512, 512))
        rgb[blob, 0] = 230
        write_slide(tmp_path / "test" / f"t{k}.tif", rgb, tile=256)
        truths[f"t{k}"] = ((512, 512), [Instance(0, 1.0, blob)])
    HuBMAP2023.write_solution(tmp_path / "solution.csv", truths)
    result = predict_folder(tmp_path, tmp_path / "sub.csv", echo(tile=256, class_names=("blood_vessel",)),
                            PredictConfig(**EXACT), "hubmap2023")
    assert result.failed == []
    assert main(["score", str(tmp_path / "sub.csv"), str(tmp_path / "solution.csv")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "mAP@0.6 1.0000"
