"""Whole-slide glomerulus analysis in bounded memory: records, detection metrics and density.

The slide is cut into overlapping windows (``window`` px, ``margin`` px of overlap). Every window
labels its glomeruli; each glomerulus belongs to the one window whose core (its share of the
overlaps split down the middle) holds its centroid, so it is counted once. Glomeruli are far
smaller than the margin (median ~240 px at full HuBMAP resolution), so each one lies whole in the
window that owns it, and its matches are computed there. Positions are ``(row, col)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd

from hubkit.analysis.glomeruli import Detection, components, glomeruli, match_labels
from hubkit.analysis.sclerosis import NON_SCLEROTIC, SCLEROTIC
from hubkit.annotations import mask_to_features, rasterize
from hubkit.formats import rle
from hubkit.formats.metrics import rle_dice
from hubkit.inference.tiling import grid_starts
from hubkit.window import Window

__all__ = ["SlideAnalysis", "analyze_slide", "cortex_density"]


@dataclass
class SlideAnalysis:
    """What `analyze_slide` found.

    Attributes:
        predicted: one row per predicted glomerulus (see `hubkit.analysis.glomeruli.glomeruli`), with
            ``iou`` of its matched true glomerulus (NaN when unmatched) and ``matched``.
        missed: the true glomeruli no prediction matched (same columns, no confidence).
        detection: TP / FP / FN and friends; ``dice`` is the slide's pixel Dice.
        features: one polygon per row of ``predicted``, its measurements as properties.
    """

    predicted: pd.DataFrame
    missed: pd.DataFrame
    detection: Optional[Detection]
    features: list


def _cores(length: int, size: int, margin: int) -> list[tuple[int, int, int]]:
    """``(window start, core start, core end)`` along one axis; cores tile [0, length)."""
    starts = grid_starts(length, size, margin)
    cuts = [0] + [(nxt + min(cur + size, length)) // 2 for cur, nxt in zip(starts[:-1], starts[1:])] + [length]
    return [(s, cuts[i], cuts[i + 1]) for i, s in enumerate(starts)]


def _concat(frames: list[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    """Concatenate the non-empty frames (``empty`` gives the columns when all are empty)."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else empty


def _outlines(labels: np.ndarray, table: pd.DataFrame, offset: tuple[int, int]) -> list:
    """One polygon per row of ``table`` (numbered components ``labels`` placed at ``offset``)."""
    out = []
    for row in table.itertuples(index=False):
        r0, c0 = row.bbox_row0 - offset[0], row.bbox_col0 - offset[1]
        crop = labels[r0 : row.bbox_row1 - offset[0], c0 : row.bbox_col1 - offset[1]] == row.label
        out.append(mask_to_features(crop, offset=(row.bbox_row0, row.bbox_col0))[0])
    return out


def _sclerosis(score: Callable, table: pd.DataFrame, labels: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """``score`` of each glomerulus of ``table`` (numbered components ``labels`` placed at ``offset``)."""
    boxes = []
    for row in table.itertuples(index=False):
        r0, c0 = row.bbox_row0 - offset[0], row.bbox_col0 - offset[1]
        mask = labels[r0 : row.bbox_row1 - offset[0], c0 : row.bbox_col1 - offset[1]] == row.label
        boxes.append((Window(row.bbox_row0, row.bbox_col0, mask.shape[0], mask.shape[1]), mask))
    return np.asarray(score(boxes), np.float64) if boxes else np.zeros(0)


def _owned(table: pd.DataFrame, rows: tuple[int, int], cols: tuple[int, int]) -> pd.Series:
    r, c = np.floor(table["centroid_row"] + 0.5), np.floor(table["centroid_col"] + 0.5)
    return (r >= rows[0]) & (r < rows[1]) & (c >= cols[0]) & (c < cols[1])


def analyze_slide(
    shape: tuple[int, int],
    prediction: str,
    truth: Optional[str] = None,
    probability: Optional[Callable[[Window], np.ndarray]] = None,
    iou_threshold: float = 0.5,
    pixel_size_um: Optional[float] = None,
    window: int = 4096,
    margin: int = 1024,
    name: str = "",
    sclerosis: Optional[Callable[[list[tuple[Window, np.ndarray]]], np.ndarray]] = None,
    sclerosis_threshold: float = 0.5,
) -> SlideAnalysis:
    """Records of every predicted glomerulus and, with the truth, which ones match.

    Args:
        shape: slide ``(height, width)``.
        prediction: the predicted RLE (a submission row).
        truth: the true RLE, or None.
        probability: ``probability(window) -> (h, w)`` model probabilities for a window, for the
            confidence columns (e.g. `hubkit.inference.predict_image` on the window's pixels).
        iou_threshold: IoU at which a prediction counts as finding a glomerulus.
        pixel_size_um: adds physical-unit columns.
        window, margin: analysis window and overlap (margin must exceed any glomerulus).
        name: slide id for errors.
        sclerosis: ``sclerosis(boxes) -> (n,) p_sclerotic`` for a window's glomeruli, each box a
            full-resolution bounding `Window` and the glomerulus's ``(h, w)`` bool mask in it (see
            `hubkit.analysis.sclerosis.GlomerulusClassifier.score`); adds ``p_sclerotic`` and
            ``sclerotic`` (``p >= sclerosis_threshold``) columns and classifies the polygons.
    """
    h, w = int(shape[0]), int(shape[1])
    pred_runs = rle.parse(prediction, (h, w), name=f"{name} prediction" if name else None)
    true_runs = None if truth is None else rle.parse(truth, (h, w), name=f"{name} truth" if name else None)
    predicted, missed, features = [], [], []
    for r0, core_r0, core_r1 in _cores(h, window, margin):
        for c0, core_c0, core_c1 in _cores(w, window, margin):
            win = Window(r0, c0, min(window, h - r0), min(window, w - c0))
            pred_mask = rle.decode_window(pred_runs, (h, w), win)
            pred_labels = components(pred_mask)
            prob = probability(win) if probability is not None and pred_mask.any() else None
            pred = glomeruli(pred_mask, prob, offset=(r0, c0), pixel_size_um=pixel_size_um, labels=pred_labels)
            pred = pred[_owned(pred, (core_r0, core_r1), (core_c0, core_c1))]
            if sclerosis is not None:
                pred = pred.assign(p_sclerotic=_sclerosis(sclerosis, pred, pred_labels, (r0, c0)))
            if true_runs is not None:
                true_mask = rle.decode_window(true_runs, (h, w), win)
                true_labels = components(true_mask)
                true = glomeruli(true_mask, offset=(r0, c0), pixel_size_um=pixel_size_um, labels=true_labels)
                true = true[_owned(true, (core_r0, core_r1), (core_c0, core_c1))]
                pairs = match_labels(pred_labels, true_labels, iou_threshold)
                pred = pred.merge(pairs[["pred", "iou"]].rename(columns={"pred": "label"}), on="label", how="left")
                missed.append(true[~true["label"].isin(pairs["truth"])])
            features += _outlines(pred_labels, pred, (r0, c0))
            predicted.append(pred)
    empty = glomeruli(np.zeros((1, 1), np.uint8))
    table = _concat(predicted, empty.assign(p_sclerotic=np.zeros(0)) if sclerosis is not None else empty)
    table["iou"] = table["iou"].astype(float) if "iou" in table else np.nan
    table["matched"] = table["iou"].notna()
    if sclerosis is not None:
        table["sclerotic"] = table["p_sclerotic"] >= sclerosis_threshold
        for feature, sclerotic in zip(features, table["sclerotic"]):
            feature.label = SCLEROTIC if sclerotic else NON_SCLEROTIC
    table = table.drop(columns="label")
    lost = _concat(missed, glomeruli(np.zeros((1, 1), np.uint8))).drop(columns="label")
    detection = None
    if true_runs is not None:
        tp = int(table["matched"].sum())
        detection = Detection(tp=tp, fp=len(table) - tp, fn=len(lost), dice=rle_dice(prediction, truth))
    for feature, row in zip(features, table.itertuples(index=False)):
        feature.properties["measurements"] = {k: (None if pd.isna(v) else float(v)) for k, v in row._asdict().items()}
    return SlideAnalysis(table, lost, detection, features)


def cortex_density(predicted: pd.DataFrame, features, shape: tuple[int, int], pixel_size_um: float,
                   scale: int = 16) -> tuple[float, float]:
    """Glomeruli per mm^2 of cortex.

    Args:
        predicted: glomerulus records (centroids in full-resolution pixels).
        features: the slide's anatomical-structure polygons (`hubkit.annotations.load_features`).
        shape: slide ``(height, width)``.
        pixel_size_um: full-resolution pixel size.
        scale: downscale of the cortex raster the centroids are looked up in.

    Returns:
        ``(cortex area in mm^2, glomeruli per mm^2 of cortex)``; the density is NaN without cortex.
    """
    cortex = rasterize(features, shape, scale=scale, labels=["cortex"])
    area_mm2 = float(cortex.sum()) * (shape[0] / cortex.shape[0]) * (shape[1] / cortex.shape[1]) * (pixel_size_um / 1000) ** 2
    r = np.clip((predicted["centroid_row"].to_numpy() / shape[0] * cortex.shape[0]).astype(int), 0, cortex.shape[0] - 1)
    c = np.clip((predicted["centroid_col"].to_numpy() / shape[1] * cortex.shape[1]).astype(int), 0, cortex.shape[1] - 1)
    inside = int(cortex[r, c].sum()) if len(predicted) else 0
    return area_mm2, (inside / area_mm2 if area_mm2 > 0 else float("nan"))
