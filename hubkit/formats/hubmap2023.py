"""HuBMAP "Hacking the Human Vasculature" (2023): 512 x 512 tiles in, scored instance masks out.

* test folder: ``test/<id>.tif`` (512 x 512 RGB tiles), ids in ``sample_submission.csv`` order;
* submission: ``id,height,width,prediction_string``; the prediction string lists instances as
  ``class score mask`` triplets separated by spaces, ``mask`` = base64(zlib(COCO compressed RLE))
  (`hubkit.formats.coco`);
* classes numbered as the competition listed them: ``blood_vessel`` 0, ``glomerulus`` 1, ``unsure`` 2;
* metric: Open Images average precision at IoU 0.6 of the ``blood_vessel`` class over all tiles.

A model scores here only if its card's ``class_names`` include ``blood_vessel``: instances of the
other classes are written (class 1 for ``glomerulus``) but never scored. Instances are the 8-connected
components of each class's thresholded probability; an instance's score is its mean probability.
hubkit reads a solution in the submission's own layout (scores ignored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from skimage.measure import label, regionprops

from hubkit.errors import ConfigError, EncodingError, SlideError, SubmissionError
from hubkit.formats.base import CompetitionFormat, Score, Sink
from hubkit.formats.coco import decode_mask, encode_mask
from hubkit.formats.metrics import open_images_ap
from hubkit.formats.specks import check_min_area
from hubkit.formats.table import read_id_table

__all__ = ["CLASS_IDS", "TILE_SHAPE", "Instance", "extract_instances", "format_instances", "parse_instances",
           "InstanceSink", "HuBMAP2023"]

#: The competition's classes and their ids in a prediction string.
CLASS_IDS = {"blood_vessel": 0, "glomerulus": 1, "unsure": 2}
#: Every tile of the competition is this ``(height, width)``.
TILE_SHAPE = (512, 512)
#: The sink holds a whole image's probabilities: refuse images this many pixels or larger.
_MAX_PIXELS = 1 << 26


@dataclass
class Instance:
    """One predicted or true object: its class id, score in [0, 1] and ``(height, width)`` mask."""

    class_id: int
    score: float
    mask: np.ndarray


def extract_instances(probabilities: np.ndarray, class_names: Sequence[str], threshold: float = 0.5,
                      min_area: int = 16, seed_threshold: Optional[float] = None) -> list[Instance]:
    """Instances of every competition class in ``(channels, height, width)`` probabilities.

    Args:
        probabilities: one channel per name in ``class_names``.
        class_names: channel names; channels not in `CLASS_IDS` are ignored.
        threshold: probability above which a pixel belongs to an instance.
        min_area: components smaller than this many pixels are dropped (specks).
        seed_threshold: components with no pixel above this probability are dropped (None: none).

    Returns:
        Instances, highest score first.
    """
    out = []
    for channel, name in enumerate(class_names):
        if name not in CLASS_IDS:
            continue
        prob = np.asarray(probabilities[channel], np.float32)
        labels = label(prob > threshold, connectivity=2)
        for region in regionprops(labels, intensity_image=prob):
            if region.area >= min_area and (seed_threshold is None or region.intensity_max > seed_threshold):
                out.append(Instance(CLASS_IDS[name], float(region.intensity_mean), labels == region.label))
    return sorted(out, key=lambda i: -i.score)


def format_instances(instances: Sequence[Instance]) -> str:
    """The prediction string: ``class score mask`` triplets joined by spaces."""
    return " ".join(f"{i.class_id} {i.score:.6g} {encode_mask(i.mask)}" for i in instances)


def parse_instances(text: str, shape: tuple[int, int], name: str = "") -> list[Instance]:
    """Read a prediction string back into instances.

    Raises:
        EncodingError: not ``class score mask`` triplets, a class id that is not a whole number, a
            score that is not a finite number in [0, 1], or a mask that does not decode at ``shape``;
            names the id and the instance.
    """
    tokens = (text or "").split()
    where = f"prediction_string of {name!r}" if name else "prediction_string"
    if len(tokens) % 3:
        raise EncodingError(f"{where}: {len(tokens)} values; expected 'class score mask' triplets")
    out = []
    for k in range(0, len(tokens), 3):
        cls, score, mask = tokens[k : k + 3]
        n = k // 3
        if not (cls.isascii() and cls.isdigit()):
            raise EncodingError(f"{where}: instance {n} has class {cls!r}; expected a whole number (blood_vessel = 0)")
        try:
            value = float(score)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise EncodingError(f"{where}: instance {n} has score {score!r}; expected a number in [0, 1]")
        out.append(Instance(int(cls), value, decode_mask(mask, shape, f"{where}, instance {n}")))
    return out


class InstanceSink(Sink):
    """Collects one tile's probabilities, then writes its instances as the 2023 row."""

    def __init__(self, shape: tuple[int, int], class_names: Sequence[str], threshold: float, min_area: int = 16,
                 seed_threshold: Optional[float] = None):
        known = [n for n in class_names if n in CLASS_IDS]
        if not known:
            raise ConfigError(f"the hubmap2023 format needs a model whose card's class_names include one of "
                              f"{', '.join(CLASS_IDS)}; this ensemble predicts {list(class_names)}")
        h, w = int(shape[0]), int(shape[1])
        if h * w * len(class_names) >= _MAX_PIXELS:
            raise SlideError(f"an image of {h} x {w} px is too large for the hubmap2023 format, whose tiles are "
                             f"{TILE_SHAPE[0]} x {TILE_SHAPE[1]}")
        self.class_names, self.threshold, self.min_area = list(class_names), float(threshold), int(min_area)
        self.seed_threshold = seed_threshold
        self.probabilities = np.zeros((len(class_names), h, w), np.float32)

    def aggregate(self, strip: np.ndarray, first_col: int) -> None:
        self.probabilities[:, :, first_col : first_col + strip.shape[-1]] = strip

    def finalize(self) -> dict[str, str]:
        instances = extract_instances(self.probabilities, self.class_names, self.threshold, self.min_area,
                                      self.seed_threshold)
        _, h, w = self.probabilities.shape
        return {"height": str(h), "width": str(w), "prediction_string": format_instances(instances)}


def _shape(row, where) -> tuple[int, int]:
    try:
        h, w = int(row["height"]), int(row["width"])
    except ValueError:
        raise SubmissionError(f"{where}: id {row['id']!r} has height {row['height']!r} and width {row['width']!r}; "
                              "expected whole numbers") from None
    if h <= 0 or w <= 0:
        raise SubmissionError(f"{where}: id {row['id']!r} has a non-positive size {h} x {w}")
    return h, w


class HuBMAP2023(CompetitionFormat):
    """The 2023 vasculature competition (``--format hubmap2023``).

    Args:
        scored_class: the class whose AP is the score (the competition: ``blood_vessel``).
        iou_threshold: IoU at which a prediction finds an instance (the competition: 0.6).
        min_area: smallest instance written, in pixels.
    """

    name = "hubmap2023"
    title = 'HuBMAP "Hacking the Human Vasculature" (2023): instance masks, AP at IoU 0.6'
    columns = ("id", "height", "width", "prediction_string")
    solution_columns = columns
    suffixes = (".tif", ".tiff")
    metric = "mAP@0.6"

    def __init__(self, scored_class: str = "blood_vessel", iou_threshold: float = 0.6, min_area: int = 16):
        if scored_class not in CLASS_IDS:
            raise ConfigError(f"unknown class {scored_class!r}; valid names: {', '.join(CLASS_IDS)}")
        self.scored_class, self.iou_threshold = scored_class, float(iou_threshold)
        self.min_area = check_min_area(min_area)

    def placeholders(self, data_dir, ids) -> dict[str, dict[str, str]]:
        """Empty predictions sized as ``sample_submission.csv`` says, else as the tile file is."""
        from hubkit.slides.reader import open_slide

        sample = Path(data_dir) / "sample_submission.csv"
        sizes = {}
        if sample.is_file():
            table = read_id_table(sample, ("id",))
            if {"height", "width"} <= set(table.columns):
                sizes = {r["id"]: _shape(r, sample) for _, r in table.iterrows()}
        out = {}
        for i in ids:
            if i not in sizes:
                try:
                    with open_slide(self.test_slide(data_dir, i)) as slide:
                        sizes[i] = slide.shape
                except SlideError:
                    sizes[i] = TILE_SHAPE  # unreadable: the competition's tile size keeps the row valid
            out[i] = {"height": str(sizes[i][0]), "width": str(sizes[i][1]), "prediction_string": ""}
        return out

    def _make_sink(self, shape, class_names, threshold, min_area, seed_threshold) -> InstanceSink:
        return InstanceSink(shape, class_names, threshold, min_area, seed_threshold)

    def score(self, submission, solution) -> Score:
        """AP at ``iou_threshold`` of ``scored_class`` over all images (``per_image``: ``id, predicted,
        true, matched`` instances of that class).

        Raises:
            SubmissionError: ids or sizes that differ, or no true instance of the class at all (AP is
                undefined then).
        """
        sub, sol = self._read_pair(submission, solution)
        pred_rows = {r["id"]: r for _, r in sub.iterrows()}
        cid = CLASS_IDS[self.scored_class]
        predictions, truths, rows = [], [], []
        for _, truth_row in sol.iterrows():
            i = truth_row["id"]
            shape = _shape(truth_row, solution)
            if _shape(pred_rows[i], submission) != shape:
                raise SubmissionError(f"{submission}: id {i!r} is {pred_rows[i]['height']} x {pred_rows[i]['width']}, "
                                      f"the solution says {shape[0]} x {shape[1]}")
            dets = [(d.score, d.mask) for d in parse_instances(pred_rows[i]["prediction_string"], shape, i) if d.class_id == cid]
            gts = [t.mask for t in parse_instances(truth_row["prediction_string"], shape, f"{i} (solution)") if t.class_id == cid]
            predictions.append(dets)
            truths.append(gts)
            rows.append([i, len(dets), len(gts)])
        ap, matched = open_images_ap(predictions, truths, self.iou_threshold)
        if math.isnan(ap):
            raise SubmissionError(f"{solution}: no true {self.scored_class} instance in any image, so AP is undefined")
        table = pd.DataFrame(rows, columns=["id", "predicted", "true"])
        table["matched"] = matched
        note = f"{len(table)} image(s); AP of {self.scored_class} (class {cid}) at IoU {self.iou_threshold:g}"
        return Score(self.metric, ap, table, (note,))

    @staticmethod
    def write_solution(path, rows: dict[str, tuple[tuple[int, int], Sequence[Instance]]]) -> Path:
        """A solution CSV from ``{id: ((height, width), true instances)}`` (scores written as 1)."""
        table = [(i, s[0], s[1], format_instances([Instance(t.class_id, 1.0, t.mask) for t in inst]))
                 for i, (s, inst) in rows.items()]
        pd.DataFrame(table, columns=list(HuBMAP2023.columns)).to_csv(path, index=False)
        return Path(path)

