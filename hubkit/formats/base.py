"""The competition-format seam: what a format is, and the sink that turns probabilities into a row.

A `CompetitionFormat` knows one competition's folder and files: where the test slides are and in
which order (``sample_submission.csv``, else the files in ``test/``), the submission's columns and
placeholder rows, the `Sink` that turns one slide's probabilities into its row, and the scorer.
Inference never knows which format it writes: it streams probability strips into the sink it is
given (MONAI's Merger shape: aggregate, then finalize), so the output is chosen at the save stage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional, Sequence

import numpy as np
import pandas as pd

from hubkit.errors import ConfigError, MissingInputError, SubmissionError
from hubkit.formats.specks import check_min_area
from hubkit.formats.table import read_id_table, write_table

__all__ = ["Sink", "Score", "CompetitionFormat", "check_id"]


class Sink(ABC):
    """Receives one slide's class probabilities as full-height column strips, left to right.

    Args (of every sink): the slide ``shape`` ``(height, width)``, the ensemble's ``class_names``
    (one per probability channel) and its ``threshold``.
    """

    @abstractmethod
    def aggregate(self, strip: np.ndarray, first_col: int) -> None:
        """Take the next strip: ``(channels, height, width)`` float32 probabilities whose first
        column is ``first_col`` of the slide."""

    @abstractmethod
    def finalize(self) -> dict[str, str]:
        """The slide's submission row, without its id: ``{column: value}``."""


@dataclass
class Score:
    """A submission's score against a solution.

    Attributes:
        metric: what ``value`` is (``"mean Dice"``, ``"mAP@0.6"``).
        value: the leaderboard number.
        per_image: one row per image (``id`` and the format's per-image columns).
        notes: lines to show before the value (what was scored).
    """

    metric: str
    value: float
    per_image: pd.DataFrame
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """The last line `hubkit score` prints: ``<metric> <value>``."""
        return f"{self.metric} {self.value:.4f}"


def check_id(slide_id: str, where) -> str:
    """An id from an untrusted table, which becomes a file name: one plain path component.

    Raises:
        SubmissionError: empty, a path (``/``, ``\\``), ``.``/``..``, or a control character.
    """
    if (not slide_id or slide_id in (".", "..") or any(c in slide_id for c in "/\\")
            or any(ord(c) < 32 for c in slide_id)):
        raise SubmissionError(f"{where}: id {slide_id!r} is not a plain file name")
    return slide_id


class CompetitionFormat(ABC):
    """One competition's files. Subclasses set the class attributes, ``min_area`` (in their
    constructor) and implement `_make_sink` and `score`."""

    #: The name chosen on the command line (``--format``).
    name: ClassVar[str]
    #: The competition's title, for help texts.
    title: ClassVar[str]
    #: Submission columns, ``id`` first.
    columns: ClassVar[tuple[str, ...]]
    #: Solution columns the scorer reads, ``id`` first.
    solution_columns: ClassVar[tuple[str, ...]]
    #: Test-slide file endings, preferred first.
    suffixes: ClassVar[tuple[str, ...]]
    #: The metric's name, as `Score.metric`.
    metric: ClassVar[str]
    #: Predicted masks of fewer full-resolution pixels are dropped as specks unless a run says otherwise.
    min_area: int

    def read_ids(self, data_dir) -> list[str]:
        """Slide ids to predict: ``sample_submission.csv`` order, else the stems of ``test/*<suffix>``.

        Raises:
            MissingInputError: neither exists.
            SubmissionError: a malformed sample submission, or an id that is not a plain file name.
        """
        data_dir = Path(data_dir)
        sample = data_dir / "sample_submission.csv"
        if sample.is_file():
            return [check_id(i, sample) for i in read_id_table(sample, ("id",))["id"]]
        test = data_dir / "test"
        # Hidden files (macOS ``._x.tiff`` resource forks, editors' temporaries) are not slides.
        ids = sorted({p.name[: -len(s)] for s in self.suffixes for p in test.glob(f"*{s}")
                      if p.is_file() and not p.name.startswith(".")})
        if not ids:
            raise MissingInputError(f"{data_dir}: neither sample_submission.csv nor test/*{self.suffixes[0]} found")
        return ids

    def test_slide(self, data_dir, slide_id: str) -> Path:
        """The file of a test slide: ``test/<id><suffix>``, the first suffix that exists (else the
        preferred one, which then fails to open with a clear error)."""
        test = Path(data_dir) / "test"
        check_id(slide_id, test)
        for suffix in self.suffixes:
            path = test / f"{slide_id}{suffix}"
            if path.is_file():
                return path
        return test / f"{slide_id}{self.suffixes[0]}"

    def placeholders(self, data_dir, ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """The row each id gets before (or instead of) a prediction: every column empty."""
        return {i: {c: "" for c in self.columns[1:]} for i in ids}

    def begin(self, path, ids: Sequence[str], placeholders: dict[str, dict[str, str]]) -> bool:
        """Make ``path`` a valid submission before a run: keep the one there, else write placeholders.

        A file already at ``path`` that reads as this format's submission for exactly ``ids`` is
        kept (a rerun that then fails on every slide leaves the earlier result as it was; the
        first slide that succeeds replaces it); anything else there is overwritten.

        Returns:
            Whether the existing file was kept.
        """
        path = Path(path)
        if path.is_file():
            try:
                table = read_id_table(path, self.columns)
            except SubmissionError:
                table = None
            if table is not None and sorted(table["id"]) == sorted(ids):
                return True
        self.write(path, ids, {}, placeholders)
        return False

    def write(self, path, ids: Sequence[str], rows: dict[str, dict[str, str]],
              placeholders: dict[str, dict[str, str]]) -> Path:
        """Write the submission atomically: one row per id in ``ids`` order."""
        return write_table(path, self.columns, ids, rows, placeholders)

    def sink(self, shape: tuple[int, int], class_names: Sequence[str], threshold: float,
             min_area: Optional[int] = None, seed_threshold: Optional[float] = None) -> Sink:
        """A fresh sink for one slide of ``shape`` ``(height, width)``.

        Args:
            shape: the slide's ``(height, width)``.
            class_names: the ensemble's output channels.
            threshold: the probability cut.
            min_area: masks (2021: connected components; 2023: instances) of fewer pixels are
                dropped as specks; None = the format's own ``min_area``.
            seed_threshold: hysteresis: masks with no pixel above this cut are dropped, so outlines
                are drawn at ``threshold`` and glomeruli found at this one; None = no such cut.

        Raises:
            ConfigError: a ``min_area`` that is not a whole number >= 0, a ``seed_threshold`` not in
                ``[threshold, 1)``.
        """
        area = self.min_area if min_area is None else check_min_area(min_area)
        if seed_threshold is not None and not (isinstance(seed_threshold, (int, float))
                                               and threshold <= seed_threshold < 1):
            raise ConfigError(f"seed_threshold must be in [threshold, 1) = [{threshold}, 1), got {seed_threshold!r}")
        return self._make_sink(shape, class_names, threshold, area, seed_threshold)

    @abstractmethod
    def _make_sink(self, shape: tuple[int, int], class_names: Sequence[str], threshold: float, min_area: int,
                   seed_threshold: Optional[float]) -> Sink:
        """The format's sink, with ``min_area`` and ``seed_threshold`` resolved and checked by `sink`."""

    @abstractmethod
    def score(self, submission, solution) -> Score:
        """Score a submission CSV against a solution CSV.

        Raises:
            SubmissionError: missing or extra ids, missing columns; names the file.
            EncodingError: a malformed prediction, naming the id.
        """

    def _read_pair(self, submission, solution) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Both tables, checked to hold the same ids."""
        sub = read_id_table(submission, self.columns)
        sol = read_id_table(solution, self.solution_columns)
        missing = sorted(set(sol["id"]) - set(sub["id"]))
        extra = sorted(set(sub["id"]) - set(sol["id"]))
        if missing or extra:
            raise SubmissionError(f"{submission}: ids missing {missing[:10]}, unexpected {extra[:10]} (against {solution})")
        if not len(sol):
            raise SubmissionError(f"{solution}: no rows to score")
        return sub, sol
