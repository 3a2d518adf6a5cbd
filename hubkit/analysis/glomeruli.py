"""Glomerulus-level analysis: one record per glomerulus, and detection metrics against the truth.

Dice alone hides missed and false glomeruli; these tables show them. Masks are ``(height, width)``
arrays (non-zero = glomerulus); a glomerulus is an 8-connected component. Positions are
``(row, col)`` in full-resolution pixels (``offset`` and ``scale`` place a window or a shrunk mask).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Optional

import numpy as np
import pandas as pd
from skimage.measure import label, regionprops

from hubkit.errors import DataError, ModelOutputError
from hubkit.formats.metrics import dice_from_counts, mask_dice

__all__ = ["components", "glomeruli", "match", "match_labels", "Detection", "detection_metrics", "detection_counts",
           "DiceBreakdown", "dice_breakdown"]


def glomeruli(
    mask: np.ndarray,
    probability: Optional[np.ndarray] = None,
    offset: tuple[int, int] = (0, 0),
    scale: float = 1.0,
    pixel_size_um: Optional[float] = None,
    labels: Optional[np.ndarray] = None,
) -> pd.DataFrame:
    """One row per glomerulus of a mask.

    Args:
        mask: ``(h, w)``, non-zero = glomerulus.
        probability: ``(h, w)`` model probabilities, for each glomerulus' confidence (its max and
            mean probability); confidence columns are NaN without it.
        offset: full-resolution ``(row, col)`` of the mask's top-left pixel.
        scale: downscale factor of the mask (lengths are multiplied by it, areas by its square).
        pixel_size_um: full-resolution pixel size; adds ``*_um`` / ``*_um2`` columns.
        labels: ``components(mask)``, when the caller already has it.

    Returns:
        Columns ``label`` (the component's number in `components`), ``centroid_row, centroid_col, bbox_row0, bbox_col0, bbox_row1, bbox_col1, area_px,
        equivalent_diameter_px, perimeter_px, eccentricity, solidity, confidence_max,
        confidence_mean`` (positions and sizes in full-resolution pixels).
    """
    mask = np.asarray(mask)
    if probability is not None and np.shape(probability) != mask.shape:
        raise DataError(f"probability {np.shape(probability)} and mask {mask.shape} differ in shape")
    if probability is not None and not np.isfinite(probability).all():
        raise ModelOutputError("probability map holds NaN or infinite values")
    labels = components(mask) if labels is None else labels
    rows = []
    for region in regionprops(labels, intensity_image=None if probability is None else np.asarray(probability, np.float32)):
        r0, c0, r1, c1 = region.bbox
        cy, cx = region.centroid
        rows.append(dict(
            label=int(region.label),
            centroid_row=offset[0] + (cy + 0.5) * scale - 0.5,
            centroid_col=offset[1] + (cx + 0.5) * scale - 0.5,
            bbox_row0=offset[0] + int(round(r0 * scale)), bbox_col0=offset[1] + int(round(c0 * scale)),
            bbox_row1=offset[0] + int(round(r1 * scale)), bbox_col1=offset[1] + int(round(c1 * scale)),
            area_px=float(region.area) * scale**2,
            equivalent_diameter_px=float(region.equivalent_diameter_area) * scale,
            perimeter_px=float(region.perimeter) * scale,
            eccentricity=float(region.eccentricity),
            solidity=float(region.solidity),
            confidence_max=float(region.intensity_max) if probability is not None else np.nan,
            confidence_mean=float(region.intensity_mean) if probability is not None else np.nan,
        ))
    table = pd.DataFrame(rows, columns=[
        "label", "centroid_row", "centroid_col", "bbox_row0", "bbox_col0", "bbox_row1", "bbox_col1", "area_px",
        "equivalent_diameter_px", "perimeter_px", "eccentricity", "solidity", "confidence_max", "confidence_mean"])
    if pixel_size_um:
        table["area_um2"] = table["area_px"] * pixel_size_um**2
        table["equivalent_diameter_um"] = table["equivalent_diameter_px"] * pixel_size_um
        table["perimeter_um"] = table["perimeter_px"] * pixel_size_um
    return table


def components(mask: np.ndarray) -> np.ndarray:
    """Glomeruli of a mask: 8-connected components numbered 1, 2, ... (0 = background)."""
    return label(np.asarray(mask) != 0, connectivity=2)


def match_labels(pred_labels: np.ndarray, true_labels: np.ndarray, iou_threshold: float = 0.5) -> pd.DataFrame:
    """`match` on already numbered components (from `components`)."""
    both = (pred_labels > 0) & (true_labels > 0)
    span = int(true_labels.max()) + 1
    keys = pred_labels[both].astype(np.int64) * span + true_labels[both]
    if (int(pred_labels.max()) + 1) * span <= 1 << 24:  # count pixel pairs without sorting them
        counts = np.bincount(keys, minlength=1)
        found = np.flatnonzero(counts)
        keys, inter = found, counts[found]
    else:
        keys, inter = np.unique(keys, return_counts=True)
    pairs = np.stack([keys // span, keys % span])
    pred_area = np.bincount(pred_labels.ravel())
    true_area = np.bincount(true_labels.ravel())
    iou = inter / (pred_area[pairs[0]] + true_area[pairs[1]] - inter)
    used_p, used_t, out = set(), set(), []
    for k in np.argsort(-iou, kind="stable"):
        p, t = int(pairs[0, k]), int(pairs[1, k])
        if iou[k] >= iou_threshold and p not in used_p and t not in used_t:
            used_p.add(p)
            used_t.add(t)
            out.append((p, t, float(iou[k])))
    return pd.DataFrame(out, columns=["pred", "truth", "iou"])


def match(prediction: np.ndarray, truth: np.ndarray, iou_threshold: float = 0.5) -> pd.DataFrame:
    """Pair predicted and true glomeruli one-to-one, greedily by IoU, keeping pairs at or above the threshold.

    Returns:
        One row per pair: ``pred`` and ``truth`` component numbers (from `components`) and their ``iou``.
    """
    if np.shape(prediction) != np.shape(truth):
        raise DataError(f"prediction {np.shape(prediction)} and truth {np.shape(truth)} differ in shape")
    return match_labels(components(prediction), components(truth), iou_threshold)


@dataclass
class Detection:
    """Object-level scores of one image (or summed over several).

    ``detection_score`` is the 4th-place team's TP / (TP + FP + FN).
    """

    tp: int
    fp: int
    fn: int
    dice: float

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def detection_score(self) -> float:
        total = self.tp + self.fp + self.fn
        return self.tp / total if total else 1.0

    def as_dict(self) -> dict:
        return dict(tp=self.tp, fp=self.fp, fn=self.fn, precision=self.precision, recall=self.recall,
                    f1=self.f1, detection_score=self.detection_score, dice=self.dice)


def detection_metrics(prediction: np.ndarray, truth: np.ndarray, iou_threshold: float = 0.5) -> Detection:
    """TP / FP / FN glomeruli at an IoU threshold, with the pixel Dice beside them."""
    tp, fp, fn = detection_counts(components(prediction), components(truth), iou_threshold)
    return Detection(tp=tp, fp=fp, fn=fn, dice=mask_dice(prediction, truth))


def detection_counts(pred_labels: np.ndarray, true_labels: np.ndarray,
                     iou_threshold: float = 0.5) -> tuple[int, int, int]:
    """`detection_metrics`' TP, FP and FN on already numbered components (from `components`), for callers
    that score many predictions against one truth and number its glomeruli once."""
    tp = len(match_labels(pred_labels, true_labels, iou_threshold))
    return tp, int(pred_labels.max()) - tp, int(true_labels.max()) - tp


@dataclass(frozen=True)
class DiceBreakdown:
    """Where a prediction's Dice goes: its wrong pixels split by cause (pixel counts; add to pool images).

    ``missed``: pixels of true glomeruli (8-connected components) that share no pixel with the
    prediction; ``extra``: pixels of predicted components that share none with the truth; the other
    wrong pixels are ``edge_fn`` / ``edge_fp``: outlines of glomeruli that were found (merged and split
    glomeruli count here too).
    """

    tp: int
    missed: int
    extra: int
    edge_fn: int
    edge_fp: int

    def __add__(self, other: "DiceBreakdown") -> "DiceBreakdown":
        return DiceBreakdown(*(a + b for a, b in zip(astuple(self), astuple(other))))

    @property
    def dice(self) -> float:
        """Pixel Dice of the prediction."""
        return dice_from_counts(self.tp, 2 * self.tp + self.missed + self.extra + self.edge_fn + self.edge_fp)

    @property
    def dice_exact_edges(self) -> float:
        """Dice if every found glomerulus had the true outline (only missed and extra ones left wrong)."""
        tp = self.tp + self.edge_fn
        return dice_from_counts(tp, 2 * tp + self.missed + self.extra)

    @property
    def dice_exact_detection(self) -> float:
        """Dice if no glomerulus were missed (found with its true outline) and no extra one predicted."""
        tp = self.tp + self.missed
        return dice_from_counts(tp, 2 * tp + self.edge_fn + self.edge_fp)

    @property
    def outline_bias(self) -> float:
        """``edge_fn / edge_fp``: above 1, found glomeruli are drawn tighter than the truth (a lower
        threshold or more context may help); below 1, looser. 1.0 when neither occurs."""
        if not self.edge_fp:
            return float("inf") if self.edge_fn else 1.0
        return self.edge_fn / self.edge_fp


def dice_breakdown(prediction: np.ndarray, truth: np.ndarray) -> DiceBreakdown:
    """Split a prediction's errors into missed glomeruli, extra glomeruli and outlines (`DiceBreakdown`).

    Args:
        prediction, truth: ``(height, width)`` masks of one shape (non-zero = glomerulus).
    """
    pred, true = np.asarray(prediction) != 0, np.asarray(truth) != 0
    if pred.shape != true.shape:
        raise DataError(f"prediction {pred.shape} and truth {true.shape} differ in shape")
    pred_labels, true_labels = components(pred), components(true)
    both = pred & true
    found = np.zeros(int(true_labels.max()) + 1, bool)
    found[true_labels[both]] = True
    real = np.zeros(int(pred_labels.max()) + 1, bool)
    real[pred_labels[both]] = True
    fn, fp = true & ~pred, pred & ~true
    missed = int((fn & ~found[true_labels]).sum())
    extra = int((fp & ~real[pred_labels]).sum())
    return DiceBreakdown(tp=int(both.sum()), missed=missed, extra=extra, edge_fn=int(fn.sum()) - missed,
                         edge_fp=int(fp.sum()) - extra)
