"""The submission run of a Kaggle notebook with the internet off, within a time budget.

`run_submission` writes a valid placeholder ``submission.csv`` first, then predicts slide by slide;
after the first slide it projects the rest and drops TTA, then models, while the projection
exceeds the limit.
"""

from __future__ import annotations

import gc
import time
from dataclasses import replace
from typing import Optional

from hubkit.errors import MissingInputError
from hubkit.formats.registry import get_format
from hubkit.inference.config import PredictConfig
from hubkit.inference.runner import FolderResult, SlideOutcome, predict_folder
from hubkit.inference.tta import get_tta
from hubkit.kaggle.inputs import KaggleInputs
from hubkit.models.ensemble import Ensemble
from hubkit.models.zoo import load_zoo

__all__ = ["run_submission", "fit_budget"]


def run_submission(inputs: KaggleInputs, out_csv="/kaggle/working/submission.csv", time_limit_s: float = 8 * 3600,
                   cfg: Optional[PredictConfig] = None, fmt="hubmap2021", log=print) -> FolderResult:
    """Predict every test slide into ``out_csv`` within ``time_limit_s``.

    Raises:
        MissingInputError: no competition folder, or no model card (the placeholder stays).
    """
    import torch

    fmt = get_format(fmt)
    if inputs.competition is None:
        raise MissingInputError("no competition folder (sample_submission.csv + test/) under the input tree")
    ids = fmt.read_ids(inputs.competition)
    fmt.write(out_csv, ids, {}, fmt.placeholders(inputs.competition, ids))  # valid before anything can fail
    if inputs.zoo is None:
        raise MissingInputError("no model card.json under the input tree; the placeholder submission stays")
    cfg = cfg or PredictConfig()
    ensemble = load_zoo(inputs.zoo).to(cfg.torch_device())
    log(f"{len(ids)} slides, {len(ensemble)} model(s) from {inputs.zoo}, TTA {cfg.tta}, limit {time_limit_s / 3600:.1f} h")
    start = time.perf_counter()
    planned = []  # set once the first slide that succeeds has been timed

    def after_slide(outcome: SlideOutcome, left: int, ensemble: Ensemble, cfg: PredictConfig):
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if outcome.prediction is None or not left or planned:
            return ensemble, cfg
        planned.append(outcome.slide_id)
        return fit_budget(cfg, ensemble, outcome.prediction.seconds, left,
                          time_limit_s - (time.perf_counter() - start), log)

    return predict_folder(inputs.competition, out_csv, ensemble, cfg, fmt, log=log, after_slide=after_slide)


def fit_budget(cfg: PredictConfig, ensemble, first_seconds: float, slides_left: int, seconds_left: float, log):
    """Cheaper settings while ``slides_left`` slides at the first slide's pace would not fit.

    Returns:
        ``(ensemble, cfg)``: TTA dropped first, then models (never below one model without TTA).
    """
    passes = len(ensemble) * len(get_tta(cfg.tta))
    per_pass = first_seconds / passes
    ladder = [cfg.tta] + [t for t in ("flip", "none") if len(get_tta(t)) < len(get_tta(cfg.tta))]
    # Cheaper TTA with every model first, then fewer models with the cheapest TTA.
    options = [(t, len(ensemble)) for t in ladder] + [(ladder[-1], n) for n in range(len(ensemble) - 1, 0, -1)]
    for tta, n in options:
        projected = per_pass * n * len(get_tta(tta)) * slides_left * 1.15  # 15% safety margin
        if projected <= seconds_left or (tta, n) == options[-1]:
            if (tta, n) != (cfg.tta, len(ensemble)):
                log(f"time budget: projected {projected / 60:.0f} min for {slides_left} slides left; "
                    f"using TTA {tta} and {n} of {len(ensemble)} models")
            return ensemble.first(n), replace(cfg, tta=tta)
    return ensemble, cfg
