"""Analyse predicted slides: records, detection metrics, density and a report per slide, one summary.

`analyze` takes one slide file or a competition folder, a prediction (a submission CSV; for one
slide also a mask image or polygons) and optionally the truth and models for per-glomerulus
confidence, and writes one report folder per slide plus ``summary.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd

from hubkit._io import atomic_write
from hubkit.analysis.glomeruli import Detection
from hubkit.analysis.report import write_report
from hubkit.analysis.sclerosis import GlomerulusClassifier, sclerosis_counts, sclerosis_summary
from hubkit.analysis.slide import analyze_slide, cortex_density
from hubkit.annotations import features_to_rle, load_features
from hubkit.errors import ConfigError, DataError, MissingInputError, SubmissionError
from hubkit.formats import rle
from hubkit.formats.hubmap2021 import glomerulus_probability, read_encodings
from hubkit.inference.config import PredictConfig
from hubkit.inference.engine import predict_image
from hubkit.models.ensemble import Ensemble
from hubkit.slides.images import read_mask
from hubkit.slides.reader import open_slide

__all__ = ["read_slide_encodings", "find_slide", "analyze", "ENGINES"]

#: How `analyze` runs over several slides.
ENGINES = ("local", "dask")


def read_slide_encodings(path, slide_id: Optional[str] = None, shape=None) -> dict[str, str]:
    """``{id: encoding}`` from a submission or solution CSV; for one slide (``slide_id`` and its
    ``shape``) also from glomerulus polygons (JSON/GeoJSON) or a mask image.

    Raises:
        DataError: polygons or a mask without one slide, or a mask of another size.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return read_encodings(path)
    if slide_id is None:
        raise DataError(f"{path}: polygons or a mask image describe one slide; analyze one slide file")
    if path.suffix.lower() in (".json", ".geojson"):
        return {slide_id: features_to_rle(load_features(path), shape, labels=["glomerulus", "glomeruli"])}
    mask = read_mask(path)
    if mask.shape != tuple(shape):
        raise DataError(f"{path}: mask {mask.shape} does not match the slide {tuple(shape)}")
    return {slide_id: rle.encode(mask)}


def find_slide(root: Path, slide_id: str) -> Path:
    """``<id>.tiff`` (or ``.tif``) in ``test/``, ``train/`` or ``root`` itself.

    Raises:
        MissingInputError: in none of them.
    """
    for folder in (root / "test", root / "train", root):
        for ext in (".tiff", ".tif"):
            if (folder / f"{slide_id}{ext}").is_file():
                return folder / f"{slide_id}{ext}"
    raise MissingInputError(f"{root}: no slide {slide_id}.tiff in test/, train/ or the folder itself")


def _confidence(ensemble: Ensemble, slide, cfg: PredictConfig) -> Callable:
    def probability(win):
        return glomerulus_probability(predict_image(ensemble, slide.read(win, fill=255), cfg))

    return probability


@dataclass(frozen=True)
class _SlideJob:
    """One slide's analysis: everything a worker needs, small enough to send it."""

    slide_id: str
    path: Path
    prediction: str
    truth: Optional[str]
    models: Any  # an Ensemble (in this process) or a source with load() (on Dask workers), or None
    cfg: PredictConfig
    iou: float
    pixel_size_um: Optional[float]
    out: Path
    classifier: Any = None  # a GlomerulusClassifier, or (on Dask workers) the folder to load it from


def _sclerosis(classifier: GlomerulusClassifier, slide) -> Callable:
    def score(boxes):
        return classifier.score([slide.read(win, fill=255) for win, _ in boxes], [mask for _, mask in boxes])

    return score


def _analyze_one(job: _SlideJob) -> tuple[dict, str]:
    """Analyse one slide and write its report; returns its summary row and its log line."""
    models = job.models
    if models is not None and not isinstance(models, Ensemble):
        from hubkit.inference.cluster import worker_models

        models = worker_models(models, job.cfg)
    classifier = job.classifier
    if classifier is not None and not isinstance(classifier, GlomerulusClassifier):
        classifier = GlomerulusClassifier.load(classifier)
    with open_slide(job.path) as slide:
        probability = _confidence(models, slide, job.cfg) if models is not None else None
        result = analyze_slide(slide.shape, job.prediction, job.truth, probability, iou_threshold=job.iou,
                               pixel_size_um=job.pixel_size_um, name=job.slide_id,
                               sclerosis=_sclerosis(classifier, slide) if classifier is not None else None,
                               sclerosis_threshold=classifier.threshold if classifier is not None else 0.5)
        anatomy = job.path.with_name(f"{job.slide_id}-anatomical-structure.json")
        density = None
        if job.pixel_size_um and anatomy.is_file():
            density = cortex_density(result.predicted, load_features(anatomy), slide.shape, job.pixel_size_um)
        page = write_report(job.out / job.slide_id, slide, result, job.prediction, job.truth, job.slide_id, density)
    row = {"id": job.slide_id, "glomeruli": len(result.predicted)}
    if classifier is not None:
        row.update(sclerosis_summary(result.predicted))
    if result.detection is not None:
        row.update(result.detection.as_dict())
    if density is not None:
        row.update(cortex_mm2=density[0], per_mm2_cortex=density[1])
    d = result.detection
    line = (f"  {job.slide_id}: {len(result.predicted)} glomeruli"
            + (f" ({row['sclerotic']} sclerotic, {row['percent_sclerotic']:.1f}%)" if classifier is not None else "")
            + (f", TP {d.tp} FP {d.fp} FN {d.fn}, detection score {d.detection_score:.3f}, Dice {d.dice:.4f}" if d else "")
            + f"  -> {page}")
    return row, line


def analyze(target, pred, truth=None, ensemble=None, cfg: Optional[PredictConfig] = None,
            iou: float = 0.5, pixel_size_um: Optional[float] = None, out="out/analysis",
            log: Callable[[str], None] = print, engine: str = "local", workers: Optional[int] = None,
            scheduler: Optional[str] = None, classifier=None) -> pd.DataFrame:
    """Analyse one slide or every predicted slide of a folder, writing a report per slide.

    Args:
        target: a slide file, or a folder with ``test/`` or ``train/`` slides.
        pred: the prediction: a submission CSV; for one slide also a mask image or polygons.
        truth: the truth, in any form ``pred`` takes (or a solution / ``train.csv``), or None.
        ensemble: models for each glomerulus' confidence (a second inference pass), or None: an
            `Ensemble`, or (for ``engine="dask"``) a source such as `hubkit.models.ZooSource`.
        cfg: inference settings for the confidence pass.
        iou: IoU at which a prediction finds a glomerulus.
        pixel_size_um: full-resolution pixel size: physical units and cortex density.
        out: output folder (``<out>/<id>/report.html``, ``<out>/summary.csv``).
        log: where each slide's line goes.
        engine: ``"local"`` (one slide after another) or ``"dask"`` (one task per slide,
            `hubkit.inference.cluster.map_tasks`; ``workers``/``scheduler`` as there).
        classifier: a `GlomerulusClassifier` (or its folder, loaded where each slide runs) that
            scores every glomerulus ``p_sclerotic``: adds the columns, the polygons' classes and
            the slide's count and percent sclerotic; or None.

    Returns:
        The summary table (one row per slide, plus ``overall`` when there is truth and several slides).

    Raises:
        ConfigError: an unknown engine, or an in-memory ensemble sent to Dask workers.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "dask" and isinstance(ensemble, Ensemble):
        raise ConfigError("engine 'dask' loads the models on each worker: pass a source (hubkit.models.ZooSource), "
                          "not loaded models")
    target, out = Path(target), Path(out)
    one = (None, None)
    if target.is_file():
        with open_slide(target) as slide:
            one = (target.stem, slide.shape)
    predictions = read_slide_encodings(pred, *one)
    truths = read_slide_encodings(truth, *one) if truth else {}
    if target.is_file():
        if target.stem not in predictions:
            raise SubmissionError(f"{pred}: no row for slide {target.stem}")
        slides = {target.stem: target}
    else:
        slides = {i: find_slide(target, i) for i in predictions}
    cfg = cfg or PredictConfig()
    if engine == "local" and classifier is not None and not isinstance(classifier, GlomerulusClassifier):
        classifier = GlomerulusClassifier.load(classifier)
    if engine == "dask" and isinstance(classifier, GlomerulusClassifier):
        raise ConfigError("engine 'dask' loads the classifier on each worker: pass its folder, not a loaded one")
    jobs = [_SlideJob(i, Path(p), predictions[i], truths.get(i), ensemble, cfg, iou, pixel_size_um, out, classifier)
            for i, p in slides.items()]
    rows: dict[str, dict] = {}
    if engine == "local":
        for job in jobs:
            rows[job.slide_id], line = _analyze_one(job)
            log(line)
    else:
        from hubkit.inference.cluster import map_tasks

        for k, result, error in map_tasks(_analyze_one, jobs, [j.slide_id for j in jobs], workers=workers,
                                          scheduler=scheduler):
            if error is not None:
                raise DataError(f"{jobs[k].path}: analysis failed on a worker ({error})")
            rows[jobs[k].slide_id], line = result
            log(line)
    summary = [rows[j.slide_id] for j in jobs]
    table = pd.DataFrame(summary)
    if "tp" in table and len(table) > 1:
        total = Detection(int(table["tp"].sum()), int(table["fp"].sum()), int(table["fn"].sum()), float(table["dice"].mean()))
        overall = {"id": "overall", "glomeruli": int(table["glomeruli"].sum()), **total.as_dict()}
        if "sclerotic" in table:
            overall.update(sclerosis_counts(overall["glomeruli"], int(table["sclerotic"].sum())))
        table = pd.concat([table, pd.DataFrame([overall])])
        log(f"  overall: detection score {total.detection_score:.3f}, F1 {total.f1:.3f}, mean Dice {total.dice:.4f}")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "summary.csv", newline="") as f:
        table.to_csv(f, index=False)
    return table
