"""Predict every slide of a competition folder into a submission that is valid at every moment.

The format (`hubkit.formats`) says where the slides are, in which order, and what a row is; the
runner writes placeholder rows first, then rewrites the file atomically after every slide. A slide
that fails is logged and keeps its placeholder row, so an interrupted or partly failed run still
leaves a submission Kaggle accepts. A valid submission already at the output path (an earlier
run's) stays untouched until this run's first slide succeeds, so a rerun that fails throughout
never replaces a good file with placeholders.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from hubkit.formats.base import CompetitionFormat
from hubkit.formats.registry import get_format
from hubkit.inference.config import PredictConfig
from hubkit.inference.engine import SlidePrediction, predict_slide, resolve_threshold
from hubkit.models.ensemble import Ensemble
from hubkit.slides.reader import open_slide

__all__ = ["SlideOutcome", "FolderResult", "predict_folder"]


@dataclass
class SlideOutcome:
    """One slide of a folder run: its prediction, or the error that made it fail."""

    slide_id: str
    prediction: Optional[SlidePrediction] = None
    error: Optional[str] = None


@dataclass
class FolderResult:
    """What `predict_folder` did: one outcome per id, in submission order."""

    path: Path
    outcomes: list[SlideOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [o.slide_id for o in self.outcomes if o.error]

    @property
    def ok(self) -> list[str]:
        return [o.slide_id for o in self.outcomes if not o.error]


#: ``after_slide(outcome, slides_left, ensemble, cfg) -> (ensemble, cfg)`` may change what the
#: remaining slides use (a time budget, say).
AfterSlide = Callable[[SlideOutcome, int, Ensemble, PredictConfig], tuple[Ensemble, PredictConfig]]


def predict_folder(data_dir, out_csv, ensemble: Ensemble, cfg: Optional[PredictConfig] = None,
                   fmt: "CompetitionFormat | str" = "hubmap2021", log: Callable[[str], None] = print,
                   after_slide: Optional[AfterSlide] = None) -> FolderResult:
    """Predict every slide of a competition folder into ``out_csv``.

    Args:
        data_dir: the competition folder (``sample_submission.csv`` and/or ``test/``).
        out_csv: the submission to write (a valid placeholder is written first).
        ensemble: the models, on the config's device.
        cfg: inference settings.
        fmt: a `CompetitionFormat` or its name.
        log: where a failed slide's line goes.
        after_slide: called after each slide; returns the ensemble and config for the rest.

    Returns:
        Every slide's outcome.
    """
    fmt = get_format(fmt)
    cfg = cfg or PredictConfig()
    ids = fmt.read_ids(data_dir)
    empty = fmt.placeholders(data_dir, ids)
    rows: dict[str, dict[str, str]] = {}
    kept = fmt.begin(out_csv, ids, empty)
    result = FolderResult(Path(out_csv))
    for n, slide_id in enumerate(ids):
        outcome = SlideOutcome(slide_id)
        try:
            with open_slide(fmt.test_slide(data_dir, slide_id)) as slide:
                sink = fmt.sink(slide.shape, ensemble.class_names, resolve_threshold(ensemble, cfg))
                outcome.prediction = predict_slide(slide, ensemble, cfg, sink, name=slide_id)
            rows[slide_id] = outcome.prediction.output
            if outcome.prediction.tiles_run == 0:
                log(f"hubkit: slide {slide_id}: no tile passed the tissue test (min_tissue {cfg.min_tissue}); "
                    "predicted empty. Is it a brightfield slide?")
        except Exception as err:  # noqa: BLE001 - one bad slide must not sink the submission
            outcome.error = f"{type(err).__name__}: {err}"
            log(f"hubkit: slide {slide_id} failed, written empty: {outcome.error}")
            if os.environ.get("HUBKIT_DEBUG"):
                traceback.print_exc()
        if rows or not kept:
            fmt.write(out_csv, ids, rows, empty)
        result.outcomes.append(outcome)
        if after_slide is not None:
            ensemble, cfg = after_slide(outcome, len(ids) - n - 1, ensemble, cfg)
    return result
