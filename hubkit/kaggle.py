"""Running hubkit inside a Kaggle notebook with the internet off.

`find_inputs` walks ``/kaggle/input`` (or ``$KAGGLE_INPUT``): mount paths have changed over the
years, so the competition folder, the wheel folder and the model zoo are found by what they hold,
not by where they are. `run_submission` writes a valid placeholder ``submission.csv`` first, then
predicts slide by slide within a time budget: after the first slide it projects the total and drops
TTA, then models, while the projection exceeds the limit.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

__all__ = ["KaggleInputs", "find_inputs", "run_submission"]


@dataclass
class KaggleInputs:
    """What `find_inputs` found (None where nothing was)."""

    competition: Optional[Path]
    wheels: Optional[Path]
    zoo: Optional[Path]


def find_inputs(root=None) -> KaggleInputs:
    """Walk the input tree for the competition folder (``sample_submission.csv`` + ``test/``), a
    folder of ``hubkit-*.whl`` and the folder holding model ``card.json`` files."""
    root = Path(root or os.environ.get("KAGGLE_INPUT", "/kaggle/input"))
    competition = wheels = None
    cards = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        if competition is None and "sample_submission.csv" in files and "test" in dirs:
            competition = here
        if wheels is None and any(f.startswith("hubkit-") and f.endswith(".whl") for f in files):
            wheels = here
        if "card.json" in files:
            cards.append(here)
    zoo = Path(os.path.commonpath(cards)) if cards else None
    return KaggleInputs(competition, wheels, zoo)


def run_submission(inputs: KaggleInputs, out_csv="/kaggle/working/submission.csv", time_limit_s: float = 8 * 3600,
                   cfg=None, log=print) -> dict:
    """Predict every test slide into ``out_csv`` within ``time_limit_s``.

    Returns:
        ``{id: error or None}`` as `hubkit.submit.predict_folder` does, plus ``"_plan"``: the TTA
        and model count used after the first slide's projection.
    """
    import torch

    from hubkit.predict import PredictConfig, place_models, predict_slide
    from hubkit.slide import open_slide
    from hubkit.submit import predict_folder, read_ids, write_submission
    from hubkit.zoo import load_zoo

    if inputs.competition is None:
        raise FileNotFoundError("no competition folder (sample_submission.csv + test/) under the input tree")
    ids = read_ids(inputs.competition)
    write_submission(out_csv, ids, {})  # valid before anything can fail
    if inputs.zoo is None:
        raise FileNotFoundError("no model card.json under the input tree; the placeholder submission stays")
    cfg = cfg or PredictConfig()
    models = place_models(load_zoo(inputs.zoo), cfg.torch_device())
    log(f"{len(ids)} slides, {len(models)} model(s) from {inputs.zoo}, TTA {cfg.tta}, limit {time_limit_s / 3600:.1f} h")
    start = time.perf_counter()
    state = {"cfg": cfg, "models": models, "done": 0}

    def predict(path, slide_id):
        with open_slide(path) as slide:
            t = time.perf_counter()
            encoding = predict_slide(slide, state["models"], state["cfg"], name=slide_id)
            seconds = time.perf_counter() - t
        state["done"] += 1
        left = len(ids) - state["done"]
        if state["done"] == 1 and left:
            state["cfg"], state["models"] = _fit_budget(state["cfg"], state["models"], seconds, left,
                                                        time_limit_s - (time.perf_counter() - start), log)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return encoding

    errors = predict_folder(inputs.competition, out_csv, predict, log=log)
    errors["_plan"] = f"tta={state['cfg'].tta}, models={len(state['models'])}"
    return errors


def _fit_budget(cfg, models, first_seconds: float, slides_left: int, seconds_left: float, log):
    """Cheaper settings while ``slides_left`` slides at the first slide's pace would not fit."""
    from hubkit.tta import get_tta

    passes = len(models) * len(get_tta(cfg.tta))
    per_pass = first_seconds / passes
    ladder = [cfg.tta] + [t for t in ("flip", "none") if len(get_tta(t)) < len(get_tta(cfg.tta))]
    # Cheaper TTA with every model first, then fewer models with the cheapest TTA.
    options = [(t, len(models)) for t in ladder] + [(ladder[-1], n) for n in range(len(models) - 1, 0, -1)]
    for tta, n in options:
        projected = per_pass * n * len(get_tta(tta)) * slides_left * 1.15  # 15% safety margin
        if projected <= seconds_left or (tta, n) == options[-1]:
            if (tta, n) != (cfg.tta, len(models)):
                log(f"time budget: projected {projected / 60:.0f} min for {slides_left} slides left; "
                    f"using TTA {tta} and {n} of {len(models)} models")
            return replace(cfg, tta=tta), models[:n]
    return cfg, models
