import numpy as np
import pandas as pd
import pytest

from hubkit.cli import main
from hubkit.errors import ScoreError
from hubkit.formats import rle
from hubkit.formats.hubmap2021 import HuBMAP2021
from hubkit.testbed import STARTER_HELD_OUT, SlideSpec, make_competition
from tests.helpers import csv_file


@pytest.mark.parametrize(
    "sub_rows, message",
    [
        ([("a", "1 2")], r"ids missing \['b'\]"),
        ([("a", "1 2"), ("b", ""), ("c", "")], r"unexpected \['c'\]"),
        ([("a", "1 2"), ("b", "3 1 1 1")], r"'b \(submission\)'.*unsorted"),
        ([("a", "1 2"), ("a", ""), ("b", "")], "duplicate ids"),
        ([("a", "1_0 2"), ("b", "")], "'a \\(submission\\)'.*'1_0' .* is not an integer"),
        ([("a", "\u0661 2"), ("b", "")], "is not an integer"),
        ([("a", "9223372036854775807 9223372036854775807"), ("b", "")], "more than 18 digits"),
    ],
)
def test_score_errors(tmp_path, sub_rows, message):
    sol = csv_file(tmp_path / "sol.csv", ["id", "encoding"], [("a", "1 2"), ("b", "4 2")])
    sub = csv_file(tmp_path / "sub.csv", ["id", "predicted"], sub_rows)
    with pytest.raises((ScoreError, ValueError), match=message):
        HuBMAP2021().score(sub, sol)


def test_an_empty_solution_is_an_error_not_nan(tmp_path):
    sol = csv_file(tmp_path / "sol.csv", ["id", "encoding"], [])
    sub = csv_file(tmp_path / "sub.csv", ["id", "predicted"], [])
    with pytest.raises(ScoreError, match="sol.csv: no rows to score"):
        HuBMAP2021().score(sub, sol)


@pytest.mark.parametrize("names, ids", [
    (["a.tiff", "b.tif"], ["a", "b"]),
    (["a.tiff", "x.tiff.part", "readme.tif.txt", "notes.txt"], ["a"]),  # partial downloads, stray files
    (["a.tiff", "._a.tiff", ".b.tiff"], ["a"]),  # macOS resource forks, hidden files
    (["a.tiff", "a.tif"], ["a"]),
])
def test_without_a_sample_submission_only_slide_files_become_ids(tmp_path, names, ids):
    (tmp_path / "test").mkdir()
    for name in names:
        (tmp_path / "test" / name).write_bytes(b"")
    assert HuBMAP2021().read_ids(tmp_path) == ids


def test_predict_then_score_on_real_tissue_equals_in_memory_dice(data_dir, tmp_path, capsys):
    tiles = data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200"
    comp = tmp_path / "comp"
    solution = make_competition(comp, tiles, (SlideSpec(2, 2, "bands"), SlideSpec(1, 1, "pages")),
                                tile_range=STARTER_HELD_OUT)
    assert main(["predict", str(comp), "--out", str(tmp_path / "sub.csv"), "--quiet", "--tta", "none"]) == 0
    assert main(["score", str(tmp_path / "sub.csv"), str(comp / "solution.csv")]) == 0
    printed = float(capsys.readouterr().out.strip().splitlines()[-1].split()[2])
    sub = pd.read_csv(tmp_path / "sub.csv", dtype=str, keep_default_na=False)
    dices = []
    for row in solution.itertuples():
        truth = rle.decode(row.encoding, (row.height, row.width)).astype(bool)
        pred = rle.decode(sub.loc[sub["id"] == row.id, "predicted"].iloc[0], (row.height, row.width)).astype(bool)
        dices.append(2 * (truth & pred).sum() / (truth.sum() + pred.sum()))
    assert printed == pytest.approx(np.mean(dices), abs=1e-4)
    assert np.mean(dices) > 0.8  # the starter model on tissue it never trained on


@pytest.mark.parametrize("channels, expected", [
    ([[[0.9, 0.1]]], [[0.9, 0.1]]),                             # one class: itself
    ([[[0.9, 0.1]], [[0.1, 0.8]]], [[0.9, 0.8]]),               # healthy or sclerotic: either makes a glomerulus
])
def test_a_glomerulus_is_any_class_of_a_two_class_model(channels, expected):
    from hubkit.formats.hubmap2021 import glomerulus_probability

    assert np.allclose(glomerulus_probability(np.array(channels)), expected)
