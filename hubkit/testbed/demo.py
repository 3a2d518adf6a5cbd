"""The main job end to end on a local competition: build it, predict it, score it, draw it, analyse it.

`run_demo` is what ``hubkit demo`` runs: a small local competition from real tissue (by default the
5 HuBMAP Vanderbilt PAS tiles that ship with hubkit, which the starter model never trained on),
predicted with an ensemble into ``submission.csv``, scored, drawn as overlays (truth red,
prediction green) and analysed (`hubkit.analysis.analyze`: per-glomerulus records, TP/FP/FN,
QuPath GeoJSON and an HTML report per slide).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from hubkit._io import write_image
from hubkit.analysis.pictures import overlay
from hubkit.analysis.run import analyze
from hubkit.formats.base import Score
from hubkit.formats.hubmap2021 import HuBMAP2021, read_encodings
from hubkit.inference.config import PredictConfig
from hubkit.inference.runner import FolderResult, predict_folder
from hubkit.models.ensemble import Ensemble
from hubkit.slides.reader import open_slide
from hubkit.testbed.data import sample_tiles_dir
from hubkit.testbed.local import SMALL, make_competition

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    """What `run_demo` made: the slides, the run, the score, the overlays and the analysis.

    Attributes:
        label: where the tissue came from, in words.
        slides: the local competition's solution table (`hubkit.testbed.make_competition`).
        run: the prediction run (per-slide times, failures).
        score: the 2021 metric (Dice per slide and its mean).
        overlays: slide id -> overlay PNG (1/8 scale; truth red, prediction green).
        analysis: `hubkit.analysis.analyze`'s summary (one row per slide plus ``overall``).
        reports: slide id -> its ``report.html`` (GeoJSON and the glomerulus CSV beside it).
    """

    label: str
    slides: pd.DataFrame
    run: FolderResult
    score: Score
    overlays: dict[str, Path] = field(default_factory=dict)
    analysis: Optional[pd.DataFrame] = None
    reports: dict[str, Path] = field(default_factory=dict)


def run_demo(out, ensemble: Ensemble, cfg: Optional[PredictConfig] = None, tiles=None, classifier=None,
             log: Callable[[str], None] = print) -> DemoResult:
    """Build a local competition in ``out/competition``; predict, score, draw and analyse it.

    Args:
        out: output folder (``submission.csv``, ``overlay-<id>.png``, ``analysis/<id>/report.html``).
        ensemble: the models, on the config's device.
        cfg: inference settings.
        tiles: a folder of real tiles (``images/`` + ``masks/``); default: the tiles that ship with
            hubkit (`hubkit.testbed.sample_tiles_dir`).
        classifier: a glomerulosclerosis classifier (or its folder) for the analysis, or None.
        log: where progress lines go.

    Raises:
        MissingInputError: the shipped tiles are damaged or missing (a broken install).
        DataError: ``tiles`` holds fewer tile pairs than the slides need.
    """
    out = Path(out)
    fmt = HuBMAP2021()
    if tiles is None:
        tiles = sample_tiles_dir()
        label = "REAL tissue: the 5 HuBMAP Vanderbilt PAS tiles that ship with hubkit, held out from the starter model"
    else:
        tiles = Path(tiles)
        label = f"REAL tissue from {tiles}"
    data = out / "competition"
    table = make_competition(data, tiles, SMALL)
    log(f"local competition: {len(table)} slides, {label}")
    submission = out / "submission.csv"
    run = predict_folder(data, submission, ensemble, cfg, fmt, log=log)
    score = fmt.score(submission, data / "solution.csv")
    predicted = read_encodings(submission)
    result = DemoResult(label, table, run, score)
    for row in table.itertuples():
        with open_slide(fmt.test_slide(data, row.id)) as slide:
            picture = overlay(slide, row.encoding, predicted[row.id], scale=8)
        result.overlays[row.id] = write_image(out / f"overlay-{row.id}.png", picture)
    result.analysis = analyze(data, submission, data / "solution.csv", ensemble, cfg, out=out / "analysis", log=log,
                              classifier=classifier)
    result.reports = {i: out / "analysis" / i / "report.html" for i in table["id"]}
    return result
