import os
import shutil

import pandas as pd
import pytest

from hubkit.cli import main
from hubkit.inference import PredictConfig
from hubkit.kaggle import fit_budget
from hubkit.models import Ensemble
from hubkit.models.zoo import default_zoo_dir
from tests.helpers import echo, kernel_code


@pytest.mark.parametrize(
    "first, left, budget, expected",
    [
        (100, 4, 10_000, ("flip", 4)),  # fits: unchanged
        (100, 4, 300, ("none", 4)),  # 4 slides x 50 s without TTA (x1.15) fits in 300 s
        (100, 4, 130, ("none", 2)),
        (100, 4, 1, ("none", 1)),  # never below one model without TTA
    ],
)
def test_time_budget_drops_tta_then_models(first, left, budget, expected):
    four = Ensemble(list(echo().members) * 4)
    ensemble, cfg = fit_budget(PredictConfig(tta="flip"), four, first, left, budget, log=lambda m: None)
    assert (cfg.tta, len(ensemble)) == expected


def test_submission_notebook_reproduces_hubkit_predict(tmp_path, data_dir, capsys):
    from hubkit.testbed import SlideSpec, make_competition

    root = tmp_path / "input"
    comp = root / "hubmap-kidney-segmentation"
    make_competition(comp, data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200", (SlideSpec(2, 2, "pages"),),
                     first_tile="train_080")
    shutil.copytree(default_zoo_dir(), root / "hubkit-zoo" / "1")
    working = tmp_path / "working"
    working.mkdir()
    env = {"KAGGLE_INPUT": str(root), "KAGGLE_WORKING": str(working), "HUBKIT_TIME_LIMIT": "3600"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        exec(compile(kernel_code("hubmap-submit"), "submission.ipynb", "exec"), {"__name__": "__main__"})
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert main(["predict", str(comp), "--out", str(tmp_path / "cli.csv"), "--quiet", "--tta", "flip"]) == 0
    notebook = pd.read_csv(working / "submission.csv", dtype=str, keep_default_na=False)
    cli = pd.read_csv(tmp_path / "cli.csv", dtype=str, keep_default_na=False)
    assert notebook.equals(cli)
    assert main(["score", str(working / "submission.csv"), str(comp / "solution.csv")]) == 0
    assert float(capsys.readouterr().out.strip().splitlines()[-1].split()[2]) > 0.8
