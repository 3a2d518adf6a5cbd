"""The competitions' metrics: Dice (2021) and Open Images average precision (2023), one of each;
and the scores of a binary classifier (ROC AUC, balanced accuracy, sensitivity at a specificity)
for glomerulosclerosis.

Every Dice in hubkit comes from `dice_from_counts`: ``2 |A n B| / (|A| + |B|)``, and 1 when both
are empty (the competition's convention: an empty prediction of an empty image is perfect).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hubkit.errors import DataError
from hubkit.formats.rle import parse

__all__ = ["dice_from_counts", "mask_dice", "rle_dice", "iou_matrix", "open_images_ap", "roc_auc", "balanced_accuracy",
           "sensitivity_at_specificity", "best_threshold"]


def dice_from_counts(intersection: float, total: float) -> float:
    """Dice from ``|A n B|`` and ``|A| + |B|``; 1.0 when both sets are empty."""
    return 1.0 if total == 0 else 2.0 * float(intersection) / float(total)


def mask_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two masks of one shape (non-zero = foreground)."""
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    if a.shape != b.shape:
        raise DataError(f"masks of different shapes {a.shape} and {b.shape}")
    return dice_from_counts(int((a & b).sum()), int(a.sum()) + int(b.sum()))


def rle_dice(a, b, name: str = "") -> float:
    """Dice of two 2021 encodings, computed on their runs (no mask is built).

    Raises:
        RLEError: a malformed encoding; ``name`` (an image id) is quoted.
    """
    sa, ea = parse(a, name=f"{name} (submission)" if name else None)
    sb, eb = parse(b, name=f"{name} (solution)" if name else None)
    size = float((ea - sa).sum() + (eb - sb).sum())
    if size == 0:
        return 1.0
    pos = np.concatenate([sa, ea, sb, eb])
    delta = np.concatenate([np.ones_like(sa), -np.ones_like(ea), np.ones_like(sb), -np.ones_like(eb)])
    order = np.argsort(pos, kind="stable")
    pos, depth = pos[order], np.cumsum(delta[order])
    inter = float(np.diff(pos)[depth[:-1] == 2].sum())
    return dice_from_counts(inter, size)


def iou_matrix(predicted: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> np.ndarray:
    """IoU of every predicted mask with every true mask of one image: ``(len(predicted), len(truth))``."""
    if not len(predicted) or not len(truth):
        return np.zeros((len(predicted), len(truth)))
    p = np.stack([np.asarray(m, bool).ravel() for m in predicted]).astype(np.float32)
    t = np.stack([np.asarray(m, bool).ravel() for m in truth]).astype(np.float32)
    inter = p @ t.T
    union = p.sum(1)[:, None] + t.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def open_images_ap(predictions: Sequence[Sequence[tuple[float, np.ndarray]]], truths: Sequence[Sequence[np.ndarray]],
                   iou_threshold: float = 0.6) -> tuple[float, np.ndarray]:
    """Average precision of one class over many images, as the Open Images challenge computes it.

    Per image, detections are taken in descending score order; each is matched to the true
    instance it overlaps most, and is a true positive when that IoU reaches ``iou_threshold`` and
    the instance is not yet matched (otherwise a false positive). Over all images, detections are
    ranked by score; precision is made non-increasing from the right and integrated over the
    recall steps, with no interpolation to fixed recall points.

    Args:
        predictions: per image, ``(score, mask)`` of each detection of the class.
        truths: per image, the true masks of the class (same image order).
        iou_threshold: IoU at which a detection finds an instance.

    Returns:
        ``(ap, matched)``: the AP (NaN when there is no true instance at all), and per image the
        number of true positives.
    """
    if len(predictions) != len(truths):
        raise DataError(f"{len(predictions)} images of predictions but {len(truths)} of truth")
    scores, hits, matched = [], [], []
    for dets, gts in zip(predictions, truths):
        order = sorted(range(len(dets)), key=lambda i: -dets[i][0])
        iou = iou_matrix([dets[i][1] for i in order], gts)
        taken = np.zeros(len(gts), bool)
        tp_here = 0
        for k, i in enumerate(order):
            scores.append(float(dets[i][0]))
            hit = False
            if len(gts):
                best = int(np.argmax(iou[k]))
                if iou[k, best] >= iou_threshold and not taken[best]:
                    taken[best] = hit = True
                    tp_here += 1
            hits.append(hit)
        matched.append(tp_here)
    n_true = sum(len(g) for g in truths)
    if n_true == 0:
        return float("nan"), np.asarray(matched)
    if not scores:
        return 0.0, np.asarray(matched)
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.cumsum(np.asarray(hits, float)[order])
    fp = np.cumsum(1.0 - np.asarray(hits, float)[order])
    precision = np.concatenate([[0.0], tp / (tp + fp), [0.0]])
    recall = np.concatenate([[0.0], tp / n_true, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps])), np.asarray(matched)


# --- binary classifiers (glomerulosclerosis): scores against 0/1 labels -----------------------------

def _binary(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise DataError(f"labels {y.shape} and scores {s.shape} must be two 1-D arrays of one length")
    if not np.isin(y, (0, 1)).all():
        raise DataError("labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise DataError("scores hold NaN or infinite values")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise DataError(f"labels need both classes; got {int(y.sum())} positive of {len(y)}")
    return y, s


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve: the chance a random positive scores above a random negative
    (ties count half; the Mann-Whitney U statistic over n+ n-).

    Raises:
        DataError: arrays of different lengths, labels other than 0/1, one class only, or NaN scores.
    """
    y, s = _binary(labels, scores)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    first = np.r_[True, sorted_s[1:] != sorted_s[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(s)]
    mean_rank = (starts + ends + 1) / 2.0  # 1-based average rank of each tie block
    ranks[order] = np.repeat(mean_rank, ends - starts)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def balanced_accuracy(labels, scores, threshold: float = 0.5) -> float:
    """Mean of sensitivity and specificity when ``score >= threshold`` is called positive."""
    y, s = _binary(labels, scores)
    called = s >= threshold
    return float((called[y].mean() + (~called[~y]).mean()) / 2)


def sensitivity_at_specificity(labels, scores, specificity: float = 0.9) -> tuple[float, float]:
    """Sensitivity at the lowest threshold that keeps at least ``specificity`` of the negatives below it.

    Returns:
        ``(sensitivity, threshold)``: positives are the scores strictly above ``threshold``.
    """
    y, s = _binary(labels, scores)
    neg = np.sort(s[~y])
    k = int(np.ceil(specificity * len(neg))) - 1  # at least this many negatives must lie at or below
    threshold = float(neg[max(k, 0)])
    return float((s[y] > threshold).mean()), threshold


def best_threshold(labels, scores) -> float:
    """The threshold that maximises `balanced_accuracy` (Youden's J), midway between two scores."""
    y, s = _binary(labels, scores)
    cuts = np.unique(s)
    candidates = np.r_[cuts[0] - 1e-6, (cuts[1:] + cuts[:-1]) / 2, cuts[-1] + 1e-6]
    sens = np.array([(s[y] >= t).mean() for t in candidates])
    spec = np.array([(s[~y] < t).mean() for t in candidates])
    return float(candidates[int(np.argmax(sens + spec))])
