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
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from hubkit.formats.base import CompetitionFormat
from hubkit.formats.registry import get_format
from hubkit.inference.config import PredictConfig
from hubkit.inference.engine import SlidePrediction, format_sink, predict_slide
from hubkit.models.ensemble import Ensemble
from hubkit.slides.reader import open_slide

__all__ = ["SlideOutcome", "FolderResult", "SubmissionWriter", "predict_one", "largest_first", "predict_folder"]


@dataclass
class SlideOutcome:
    """One slide of a folder run: its prediction, or the error that made it fail (``resumed``:
    its row came from an earlier run's part, see `hubkit.inference.parts`)."""

    slide_id: str
    prediction: Optional[SlidePrediction] = None
    error: Optional[str] = None
    resumed: bool = False


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


class SubmissionWriter:
    """The submission file during a run: made valid at once (`CompetitionFormat.begin`), then
    rewritten atomically in sample order after every slide, whatever order slides finish in.

    Args:
        fmt: the competition format.
        path: the submission CSV.
        ids: every id, in sample order.
        placeholders: each id's row until it has a prediction.
        rows: rows already known (resumed parts); written at once.
    """

    def __init__(self, fmt: CompetitionFormat, path, ids, placeholders, rows: Optional[dict] = None):
        self.fmt, self.path, self.ids, self.placeholders = fmt, Path(path), list(ids), placeholders
        self.rows: dict[str, dict[str, str]] = dict(rows or {})
        self.kept = fmt.begin(self.path, self.ids, placeholders)
        if self.rows:
            self.write()

    def add(self, outcome: SlideOutcome) -> None:
        """Record a slide's outcome and rewrite the file (an earlier run's file stays until a slide succeeds)."""
        if outcome.prediction is not None:
            self.rows[outcome.slide_id] = outcome.prediction.output
        if self.rows or not self.kept:
            self.write()

    def write(self) -> None:
        self.fmt.write(self.path, self.ids, self.rows, self.placeholders)


def predict_one(data_dir, slide_id: str, fmt: CompetitionFormat, ensemble: Ensemble, cfg: PredictConfig,
                log: Callable[[str], None] = print) -> SlideOutcome:
    """Predict one test slide of a competition folder; an error becomes the outcome's ``error``
    (logged), never an exception, so one bad slide cannot sink a run."""
    outcome = SlideOutcome(slide_id)
    try:
        with open_slide(fmt.test_slide(data_dir, slide_id)) as slide:
            sink = format_sink(fmt, slide.shape, ensemble, cfg)
            outcome.prediction = predict_slide(slide, ensemble, cfg, sink, name=slide_id)
        if outcome.prediction.tiles_run == 0:
            log(f"hubkit: slide {slide_id}: no tile passed the tissue test (min_tissue {cfg.min_tissue}); "
                "predicted empty. Is it a brightfield slide?")
    except Exception as err:  # noqa: BLE001 - one bad slide must not sink the submission
        outcome.prediction = None
        outcome.error = f"{type(err).__name__}: {err}"
        log(f"hubkit: slide {slide_id} failed, written empty: {outcome.error}")
        if os.environ.get("HUBKIT_DEBUG"):
            traceback.print_exc()
    return outcome


def largest_first(fmt: CompetitionFormat, data_dir, ids) -> list[str]:
    """``ids`` ordered by their slide files' sizes, largest first (missing files last), so the long
    slides start first and the run's tail is short."""
    def size(i: str) -> int:
        try:
            return fmt.test_slide(data_dir, i).stat().st_size
        except OSError:
            return -1
    return sorted(ids, key=size, reverse=True)


def predict_folder(data_dir, out_csv, ensemble: Ensemble, cfg: Optional[PredictConfig] = None,
                   fmt: "CompetitionFormat | str" = "hubmap2021", log: Callable[[str], None] = print,
                   after_slide: Optional[AfterSlide] = None) -> FolderResult:
    """Predict every slide of a competition folder into ``out_csv``.

    With several devices (`PredictConfig.device_list`: ``--devices``, or every visible GPU), each
    holds a replica of the ensemble and takes the next slide (largest first) when it is free; the
    file is the same as a one-device run's.

    Args:
        data_dir: the competition folder (``sample_submission.csv`` and/or ``test/``).
        out_csv: the submission to write (a valid placeholder is written first).
        ensemble: the models, on the config's (first) device.
        cfg: inference settings.
        fmt: a `CompetitionFormat` or its name.
        log: where a failed slide's line goes.
        after_slide: called after each slide; returns the ensemble and config for the rest.

    Returns:
        Every slide's outcome, in submission order.
    """
    fmt = get_format(fmt)
    cfg = cfg or PredictConfig()
    cfg.apply_threads()
    ids = fmt.read_ids(data_dir)
    writer = SubmissionWriter(fmt, out_csv, ids, fmt.placeholders(data_dir, ids))
    devices = cfg.device_list()
    if len(devices) > 1:
        outcomes = _on_devices(data_dir, ids, fmt, ensemble, cfg, devices, writer, log, after_slide)
        return FolderResult(writer.path, [outcomes[i] for i in ids])
    result = FolderResult(writer.path)
    for n, slide_id in enumerate(ids):
        outcome = predict_one(data_dir, slide_id, fmt, ensemble, cfg, log)
        writer.add(outcome)
        result.outcomes.append(outcome)
        if after_slide is not None:
            ensemble, cfg = after_slide(outcome, len(ids) - n - 1, ensemble, cfg)
    return result


def _on_devices(data_dir, ids, fmt, ensemble: Ensemble, cfg: PredictConfig, devices, writer: SubmissionWriter,
                log, after_slide: Optional[AfterSlide]) -> dict[str, SlideOutcome]:
    """One thread per device, each with its own replica, pulling slides largest first."""
    if cfg.torch_threads is None and any(d.type == "cpu" for d in devices):
        # Replicas on CPUs share one process-wide thread pool: split the cores once, and let no
        # thread governor (one per slide) fight another over torch's thread count.
        cfg = replace(cfg, torch_threads=max(1, (os.cpu_count() or 1) // len(devices)))
        cfg.apply_threads()
    replicas = [ensemble.replica(d) for d in devices]
    queue = largest_first(fmt, data_dir, ids)
    lock = threading.Lock()
    state = {"members": len(ensemble), "cfg": cfg, "ensemble": ensemble}
    outcomes: dict[str, SlideOutcome] = {}

    def work(replica: Ensemble) -> None:
        while True:
            with lock:
                if not queue:
                    return
                slide_id, members, slide_cfg = queue.pop(0), state["members"], state["cfg"]
            outcome = predict_one(data_dir, slide_id, fmt, replica.first(members), slide_cfg, log)
            with lock:
                outcomes[slide_id] = outcome
                writer.add(outcome)
                if after_slide is not None:
                    state["ensemble"], state["cfg"] = after_slide(outcome, len(queue), state["ensemble"], state["cfg"])
                    state["members"] = len(state["ensemble"])

    with ThreadPoolExecutor(len(replicas), thread_name_prefix="hubkit-device") as pool:
        for future in [pool.submit(work, r) for r in replicas]:
            future.result()
    return outcomes
