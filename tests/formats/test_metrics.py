import numpy as np
import pytest

from hubkit.formats import rle
from hubkit.formats.metrics import open_images_ap, rle_dice


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("1 4", "1 4", 1.0),
        ("1 4", "3 4", 0.5),  # overlap 2 of 4 + 4
        ("1 2", "5 2", 0.0),
        ("", "", 1.0),
        ("", "1 3", 0.0),
        ("1 2 5 2", "2 4", 2 * 2 / 8),  # pixels {1,2,5,6} and {2,3,4,5} share 2 and 5
    ],
)
def test_dice_from_rle_matches_masks(a, b, expected):
    assert rle_dice(a, b) == pytest.approx(expected)
    shape = (4, 3)
    ma, mb = rle.decode(a, shape), rle.decode(b, shape)
    total = ma.sum() + mb.sum()
    assert expected == pytest.approx(1.0 if total == 0 else 2 * (ma & mb).sum() / total)


def _square(shape, r, c, side):
    m = np.zeros(shape, np.uint8)
    m[r : r + side, c : c + side] = 1
    return m


SHAPE = (64, 64)
A, B, C = _square(SHAPE, 0, 0, 10), _square(SHAPE, 30, 30, 10), _square(SHAPE, 50, 0, 10)


@pytest.mark.parametrize(
    "predictions, truths, expected",
    [
        ([[(0.9, A), (0.8, B)]], [[A, B]], 1.0),  # every instance found
        ([[]], [[A, B]], 0.0),  # nothing predicted
        ([[(0.9, A), (0.8, C)]], [[A, B]], 0.5),  # one of two: precision 1 up to recall 0.5
        ([[(0.9, C), (0.8, A)]], [[A]], 0.5),  # a false positive ranked first: precision 1/2 at recall 1
        ([[(0.9, A), (0.8, A)]], [[A]], 1.0),  # a duplicate is a false positive after the hit
        ([[(0.9, _square(SHAPE, 0, 0, 8))]], [[A]], 1.0),  # IoU 0.64 >= 0.6
        ([[(0.9, _square(SHAPE, 0, 0, 7))]], [[A]], 0.0),  # IoU 0.49 < 0.6
        ([[(0.9, A)], [(0.95, C)]], [[A], [B]], 0.25),  # ranked across images: the FP of image 2 first
    ],
    ids=["all", "none", "half", "fp-first", "duplicate", "iou-0.64", "iou-0.49", "across-images"],
)
def test_open_images_ap_of_known_cases(predictions, truths, expected):
    ap, _ = open_images_ap(predictions, truths, 0.6)
    assert ap == pytest.approx(expected)


def test_ap_without_any_truth_is_undefined():
    ap, matched = open_images_ap([[(0.5, A)]], [[]])
    assert np.isnan(ap) and matched.tolist() == [0]


def _coco_ap(predictions, truths, shape, iou):
    """AP by pycocotools' own evaluation (101-point interpolation), an independent computation."""
    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def rle(m):
        r = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
        r["counts"] = r["counts"].decode("ascii")
        return r

    gt = COCO()
    anns, dets, k = [], [], 0
    for i, gts in enumerate(truths):
        for m in gts:
            k += 1
            anns.append({"id": k, "image_id": i, "category_id": 1, "segmentation": rle(m), "area": float(m.sum()),
                         "bbox": list(coco_mask.toBbox(rle(m))), "iscrowd": 0})
    gt.dataset = {"images": [{"id": i, "height": shape[0], "width": shape[1]} for i in range(len(truths))],
                  "annotations": anns, "categories": [{"id": 1, "name": "blood_vessel"}]}
    gt.createIndex()
    for i, ds in enumerate(predictions):
        dets += [{"image_id": i, "category_id": 1, "segmentation": rle(m), "score": s} for s, m in ds]
    ev = COCOeval(gt, gt.loadRes(dets) if dets else COCO(), "segm")
    ev.params.iouThrs = np.array([iou])
    ev.params.maxDets = [1000, 1000, 1000]
    ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
    ev.evaluate()
    ev.accumulate()
    return float(ev.eval["precision"][0, :, 0, 0, -1].mean())


@pytest.mark.parametrize("seed", range(6))
def test_open_images_ap_agrees_with_pycocotools(seed):
    """Random images of squares, predictions jittered, missed, duplicated and invented: Open Images AP
    (exact area) and COCO AP (101 recall points) agree to within the interpolation's step."""
    rng = np.random.default_rng(seed)
    shape = (96, 96)
    predictions, truths = [], []
    for _ in range(4):
        gts = [_square(shape, *rng.integers(0, 80, 2), int(rng.integers(6, 16))) for _ in range(rng.integers(1, 5))]
        dets = []
        for m in gts:
            if rng.random() < 0.8:  # found, with a jitter that may push IoU under 0.6
                dets.append((float(rng.random()), np.roll(m, tuple(rng.integers(-3, 4, 2)), axis=(0, 1))))
        for _ in range(rng.integers(0, 3)):  # invented
            dets.append((float(rng.random()), _square(shape, *rng.integers(0, 80, 2), 8)))
        predictions.append(dets)
        truths.append(gts)
    ours, _ = open_images_ap(predictions, truths, 0.6)
    assert ours == pytest.approx(_coco_ap(predictions, truths, shape, 0.6), abs=0.02)


@pytest.mark.parametrize("labels, scores, auc", [
    ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),
    ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),
    ([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5], 0.5),       # ties count half
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),     # the classic 4-point example
    ([0, 0, 0, 1], [0.3, 0.3, 0.1, 0.3], 2 / 3),     # one positive tied with two negatives
])
def test_roc_auc_of_known_cases(labels, scores, auc):
    from hubkit.formats.metrics import roc_auc

    assert roc_auc(labels, scores) == pytest.approx(auc)


def test_roc_auc_is_the_chance_a_positive_outranks_a_negative():
    from hubkit.formats.metrics import roc_auc

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + labels * 0.3, 2)  # rounded: many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert roc_auc(labels, scores) == pytest.approx(pairs)


@pytest.mark.parametrize("labels, scores, threshold, balanced", [
    ([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], 0.5, 0.5),
    ([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.9], 0.5, 1.0),
    ([0, 0, 0, 1], [0.1, 0.2, 0.6, 0.9], 0.5, (1 + 2 / 3) / 2),
    ([0, 1], [0.5, 0.5], 0.5, 0.5),                  # at the threshold counts as positive
])
def test_balanced_accuracy_weighs_the_classes_equally(labels, scores, threshold, balanced):
    from hubkit.formats.metrics import balanced_accuracy

    assert balanced_accuracy(labels, scores, threshold) == pytest.approx(balanced)


def test_sensitivity_at_specificity_and_the_best_threshold():
    from hubkit.formats.metrics import balanced_accuracy, best_threshold, sensitivity_at_specificity

    negatives = np.arange(10) / 10          # 0.0 .. 0.9
    positives = np.array([0.05, 0.75, 0.85, 0.95])
    labels = np.r_[np.zeros(10), np.ones(4)].astype(int)
    scores = np.r_[negatives, positives]
    sensitivity, threshold = sensitivity_at_specificity(labels, scores, 0.9)
    assert threshold == pytest.approx(0.8) and sensitivity == pytest.approx(2 / 4)  # 9 of 10 negatives <= 0.8
    best = best_threshold(labels, scores)
    top = max(balanced_accuracy(labels, scores, t) for t in np.r_[scores, scores + 1e-9])
    assert balanced_accuracy(labels, scores, best) == pytest.approx(top)


@pytest.mark.parametrize("labels, scores, message", [
    ([0, 0], [0.1, 0.2], "both classes"),
    ([0, 1], [0.1], "one length"),
    ([0, 2], [0.1, 0.2], "0 or 1"),
    ([0, 1], [0.1, float("nan")], "NaN"),
])
def test_classifier_metrics_refuse_what_they_cannot_score(labels, scores, message):
    from hubkit.errors import DataError
    from hubkit.formats.metrics import roc_auc

    with pytest.raises(DataError, match=message):
        roc_auc(labels, scores)
