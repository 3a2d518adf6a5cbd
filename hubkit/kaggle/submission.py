"""The submission run of a Kaggle notebook with the internet off, within a time budget.

`run_submission` makes ``submission.csv`` valid first (placeholders, or an earlier run's file), then
predicts slide by slide. After every slide that succeeds it projects the rest from the pace so far
in seconds per tile prediction (`Pace`) and the remaining slides' tile counts (from their sizes:
hidden test slides differ 3-4x in area), and drops TTA, then models, while the projection exceeds
the time left. If no slide succeeds it raises after the file is written: Kaggle does not score a
notebook that raises, which beats a silent score of zero.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, replace
from typing import Optional, Sequence

from hubkit.errors import HubkitError, MissingInputError, SubmissionError
from hubkit.formats.registry import get_format
from hubkit.inference.config import PredictConfig
from hubkit.inference.engine import SlidePrediction, count_tiles
from hubkit.inference.memory import keep_freed_memory
from hubkit.inference.runner import FolderResult, SlideOutcome, predict_folder
from hubkit.inference.tta import get_tta
from hubkit.kaggle.inputs import KaggleInputs
from hubkit.models.ensemble import Ensemble
from hubkit.models.zoo import load_zoo
from hubkit.slides.reader import open_slide

__all__ = ["run_submission", "fit_budget", "Pace", "SAFETY"]

#: Projections are multiplied by this before they are compared with the time left.
SAFETY = 1.15


@dataclass
class Pace:
    """Seconds per tile prediction pass, from the slides done so far.

    A pass is one tile through one model for one TTA view; tiles are counted on the whole grid
    (`SlidePrediction.tiles_total`), so the tissue share of the slides done is part of the pace.
    """

    seconds: float = 0.0
    passes: float = 0.0

    def add(self, prediction: SlidePrediction, tta: str) -> None:
        """Count a slide predicted with TTA ``tta``."""
        self.seconds += prediction.seconds
        self.passes += prediction.tiles_total * len(get_tta(tta))

    @property
    def per_pass(self) -> float:
        return self.seconds / self.passes if self.passes else 0.0


def fit_budget(cfg: PredictConfig, ensemble: Ensemble, pace: Pace, shapes: Sequence[tuple[int, int]],
               seconds_left: float, log=print) -> tuple[Ensemble, PredictConfig]:
    """The richest settings, no richer than now, whose projection for ``shapes`` fits ``seconds_left``.

    Args:
        cfg: the settings now.
        ensemble: the models now (dropped from the end).
        pace: the pace so far.
        shapes: the ``(height, width)`` of every slide left.
        seconds_left: the time left.

    Returns:
        ``(ensemble, cfg)``: cheaper TTA with every model first, then fewer models with the cheapest
        TTA; never below one model without TTA.
    """
    ladder = [cfg.tta] + [t for t in ("flip", "none") if len(get_tta(t)) < len(get_tta(cfg.tta))]
    options = [(t, len(ensemble)) for t in ladder] + [(ladder[-1], n) for n in range(len(ensemble) - 1, 0, -1)]
    for tta, n in options:
        subset = ensemble.first(n)
        tiles = sum(count_tiles(shape, subset, cfg.overlap) for shape in shapes)
        projected = pace.per_pass * tiles * len(get_tta(tta)) * SAFETY
        if projected <= seconds_left or (tta, n) == options[-1]:
            if (tta, n) != (cfg.tta, len(ensemble)):
                log(f"time budget: projected {projected / 60:.0f} min for {len(shapes)} slide(s) left "
                    f"({seconds_left / 60:.0f} min left); using TTA {tta} and {n} of {len(ensemble)} models")
            return subset, replace(cfg, tta=tta)
    return ensemble, cfg


def _shape(fmt, folder, slide_id: str) -> Optional[tuple[int, int]]:
    try:
        with open_slide(fmt.test_slide(folder, slide_id)) as slide:
            return slide.shape
    except (HubkitError, OSError):
        return None  # the slide will fail and be logged when its turn comes


def run_submission(inputs: KaggleInputs, out_csv="/kaggle/working/submission.csv", time_limit_s: float = 8 * 3600,
                   cfg: Optional[PredictConfig] = None, fmt="hubmap2021", log=print) -> FolderResult:
    """Predict every test slide into ``out_csv`` within ``time_limit_s``.

    Raises:
        MissingInputError: no competition folder, or no model card (the placeholder stays).
        SubmissionError: every slide failed (after the file, all placeholders, is written).
    """
    import torch

    fmt = get_format(fmt)
    if inputs.competition is None:
        raise MissingInputError("no competition folder (sample_submission.csv + test/) under the input tree")
    ids = fmt.read_ids(inputs.competition)
    fmt.begin(out_csv, ids, fmt.placeholders(inputs.competition, ids))  # valid before anything can fail
    if inputs.zoo is None:
        raise MissingInputError("no model card under the input tree; the placeholder submission stays")
    cfg = cfg or PredictConfig()
    keep_freed_memory()  # the kernel's process is the submission's: freed buffers reused, not mapped afresh
    ensemble = load_zoo(inputs.zoo).to(cfg.torch_device())
    devices = cfg.device_list()  # both T4s of a NvidiaTeslaT4 notebook, each with a replica
    log(f"{len(ids)} slides, {len(ensemble)} model(s) from {inputs.zoo}, TTA {cfg.tta}, "
        f"{len(devices)} device(s) ({', '.join(map(str, devices))}), limit {time_limit_s / 3600:.1f} h")
    start = time.perf_counter()
    shapes = dict(zip(ids, (_shape(fmt, inputs.competition, i) for i in ids)))
    pace = Pace()

    def after_slide(outcome: SlideOutcome, left: int, ensemble: Ensemble, cfg: PredictConfig):
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        shapes.pop(outcome.slide_id, None)
        if outcome.prediction is None:
            return ensemble, cfg
        pace.add(outcome.prediction, cfg.tta)
        if not left:
            return ensemble, cfg
        known = [s for s in shapes.values() if s is not None]  # the slides not finished (some may be running)
        device_seconds = (time_limit_s - (time.perf_counter() - start)) * len(devices)
        return fit_budget(cfg, ensemble, pace, known, device_seconds, log)

    result = predict_folder(inputs.competition, out_csv, ensemble, cfg, fmt, log=log, after_slide=after_slide)
    if ids and not result.ok:
        raise SubmissionError(f"{out_csv}: every one of {len(ids)} slides failed (first: {result.outcomes[0].error}); "
                              "the file holds placeholders (or an earlier run's rows) only")
    return result
