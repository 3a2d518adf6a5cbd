"""HuBMAP "Hacking the Kidney" (2021): whole-slide TIFFs in, one run-length encoding per slide out.

* test folder: ``test/<id>.tiff``, ids in ``sample_submission.csv`` order (``id,predicted``);
* submission: ``id,predicted``, the glomerulus mask of the whole slide in the competition's RLE
  (`hubkit.formats.rle`: 1-indexed starts, pixels numbered down the columns);
* solution (``train.csv`` layout): ``id,encoding``;
* metric: Dice per image, averaged over images.

A glomerulus is any output class: a 2-class (healthy / sclerotic) model's glomerulus probability is
the larger of its two, as the competition's masks count both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from hubkit.errors import SubmissionError
from hubkit.formats.base import CompetitionFormat, Score, Sink
from hubkit.formats.metrics import rle_dice
from hubkit.formats.rle import StripEncoder, format_runs
from hubkit.formats.specks import check_min_area, drop_components
from hubkit.formats.table import csv_columns, read_id_table

__all__ = ["MIN_GLOMERULUS_AREA", "HuBMAP2021", "RLESink", "glomerulus_probability", "read_encodings"]


#: Predicted components of fewer full-resolution pixels are dropped as specks. Half the smallest of
#: aaa6a05cc's 96 annotated glomeruli (16,757 px); on the real-tissue local competition (43 held-out
#: tiles, `bench/bench_postprocess.py`) it took false glomeruli from 61 to 23 and lifted mean Dice.
MIN_GLOMERULUS_AREA = 8000


def glomerulus_probability(probabilities: np.ndarray) -> np.ndarray:
    """``(channels, height, width)`` class probabilities -> ``(height, width)``: any glomerulus class."""
    p = np.asarray(probabilities)
    return p[0] if p.shape[0] == 1 else p.max(axis=0)


class RLESink(Sink):
    """Thresholds the glomerulus probability and streams it into the competition's RLE, strip by strip,
    so a 50,000 x 40,000 mask never exists at once; then drops the mask's components of fewer than
    ``min_area`` pixels from its runs (`hubkit.formats.specks.drop_components`; 0 keeps all), and
    with a ``seed_threshold``, those with no pixel above it (a second encoder streams those pixels)."""

    def __init__(self, shape: tuple[int, int], class_names: Sequence[str], threshold: float, min_area: int = 0,
                 seed_threshold: Optional[float] = None):
        self.threshold, self.min_area, self.seed_threshold = float(threshold), int(min_area), seed_threshold
        self.shape = (int(shape[0]), int(shape[1]))
        self.encoder = StripEncoder(*self.shape)
        self.seeds = StripEncoder(*self.shape) if seed_threshold is not None else None

    def aggregate(self, strip: np.ndarray, first_col: int) -> None:
        if first_col != self.encoder.columns:
            raise SubmissionError(f"strips must arrive left to right: got column {first_col}, expected {self.encoder.columns}")
        prob = glomerulus_probability(strip)
        self.encoder.add(prob > self.threshold)
        if self.seeds is not None:
            self.seeds.add(prob > self.seed_threshold)

    def finalize(self) -> dict[str, str]:
        seeds = self.seeds.finish_runs()[0] if self.seeds is not None else None
        runs = drop_components(*self.encoder.finish_runs(), self.shape, self.min_area, seed_starts=seeds)
        return {"predicted": format_runs(*runs)}


def read_encodings(path) -> dict[str, str]:
    """``{id: encoding}`` of a submission (``id,predicted``) or a solution / ``train.csv`` (``id,encoding``).

    Raises:
        SubmissionError: neither column, a missing file, or duplicate ids.
    """
    columns = csv_columns(path)
    column = "predicted" if "predicted" in columns else "encoding"
    if column not in columns:
        raise SubmissionError(f"{path}: expected columns id and predicted (or encoding), got {columns}")
    table = read_id_table(path, ("id", column))
    return dict(zip(table["id"], table[column]))


class HuBMAP2021(CompetitionFormat):
    """The 2021 kidney competition (``--format hubmap2021``, the default).

    Args:
        min_area: predicted components (8-connected) of fewer full-resolution pixels are dropped as
            specks; the default is `MIN_GLOMERULUS_AREA`, 0 keeps every component.
    """

    name = "hubmap2021"
    title = 'HuBMAP "Hacking the Kidney" (2021): glomerulus masks as RLE, Dice'
    columns = ("id", "predicted")
    solution_columns = ("id", "encoding")
    suffixes = (".tiff", ".tif")
    metric = "mean Dice"

    def __init__(self, min_area: int = MIN_GLOMERULUS_AREA):
        self.min_area = check_min_area(min_area)

    def _make_sink(self, shape, class_names, threshold, min_area, seed_threshold) -> RLESink:
        return RLESink(shape, class_names, threshold, min_area, seed_threshold)

    def score(self, submission, solution) -> Score:
        """Per-image Dice and their mean, as Kaggle scored it (``per_image``: ``id, dice``, solution order)."""
        sub, sol = self._read_pair(submission, solution)
        pred = dict(zip(sub["id"], sub["predicted"]))
        rows = [(i, rle_dice(pred[i], enc, name=i)) for i, enc in zip(sol["id"], sol["encoding"])]
        table = pd.DataFrame(rows, columns=["id", "dice"])
        return Score(self.metric, float(table["dice"].mean()), table, (f"{len(table)} image(s) scored by Dice",))

    @staticmethod
    def write_solution(path, encodings: dict[str, str]) -> Path:
        """A solution CSV (``id,encoding``) from ``{id: encoding}``."""
        pd.DataFrame({"id": list(encodings), "encoding": list(encodings.values())}).to_csv(path, index=False)
        return Path(path)
