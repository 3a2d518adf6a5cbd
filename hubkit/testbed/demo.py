"""The main job end to end on a local competition: build it, predict it, score it, draw it.

`run_demo` is what ``hubkit demo`` runs: a small local competition from real tiles the starter
model never trained on (the shared Vanderbilt tiles), predicted with an ensemble into
``submission.csv``, scored, and drawn as overlays (truth red, prediction green).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import cv2
import pandas as pd

from hubkit.analysis.pictures import overlay
from hubkit.formats.base import Score
from hubkit.formats.hubmap2021 import HuBMAP2021, read_encodings
from hubkit.inference.config import PredictConfig
from hubkit.inference.runner import FolderResult, predict_folder
from hubkit.models.ensemble import Ensemble
from hubkit.slides.reader import open_slide
from hubkit.testbed.data import STARTER_HELD_OUT_FIRST, default_tiles_dir
from hubkit.testbed.local import SMALL, make_competition

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    """What `run_demo` made: the slides, the run, the score and the overlay pictures."""

    label: str
    slides: pd.DataFrame
    run: FolderResult
    score: Score
    overlays: dict[str, Path] = field(default_factory=dict)


def run_demo(out, ensemble: Ensemble, cfg: Optional[PredictConfig] = None, tiles=None, synthetic: bool = False,
             log: Callable[[str], None] = print) -> DemoResult:
    """Build a local competition in ``out/competition``, predict, score and draw it.

    Args:
        out: output folder (``submission.csv``, ``overlay-<id>.png``).
        ensemble: the models, on the config's device.
        cfg: inference settings.
        tiles: a folder of ``images/`` + ``masks/``; default: the shared Vanderbilt tiles from the
            first one the starter model never trained on.
        synthetic: labelled synthetic drawings instead of real tiles (for tests without data).
        log: where progress lines go.
    """
    out = Path(out)
    fmt = HuBMAP2021()
    held_out = tiles is None and not synthetic
    tiles = None if synthetic else (Path(tiles) if tiles else default_tiles_dir())
    data = out / "competition"
    table = make_competition(data, tiles, SMALL, first_tile=STARTER_HELD_OUT_FIRST if held_out and tiles else None)
    label = f"REAL tissue from {tiles}" if tiles else "SYNTHETIC drawings (no real tiles found; pass --tiles DIR)"
    if held_out and tiles:
        label += f" (tiles from {STARTER_HELD_OUT_FIRST} on, which the starter model never trained on)"
    log(f"local competition: {len(table)} slides, {label}")
    submission = out / "submission.csv"
    run = predict_folder(data, submission, ensemble, cfg, fmt, log=log)
    score = fmt.score(submission, data / "solution.csv")
    predicted = read_encodings(submission)
    result = DemoResult(label, table, run, score)
    for row in table.itertuples():
        with open_slide(fmt.test_slide(data, row.id)) as slide:
            picture = overlay(slide, row.encoding, predicted[row.id], scale=8)
        png = out / f"overlay-{row.id}.png"
        cv2.imwrite(str(png), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        result.overlays[row.id] = png
    return result
