"""Competition folders in, ``submission.csv`` out, and the leaderboard metric computed locally.

The submission is always structurally valid: one ``id,predicted`` row per id in sample order,
rewritten atomically after every slide (so an interrupted run leaves a valid file), and a slide
that fails is logged and written with an empty prediction.
"""

from __future__ import annotations

import csv
import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

from hubkit import rle
from hubkit.errors import HubkitError

__all__ = ["read_id_table", "read_ids", "write_submission", "predict_folder", "dice_from_rle", "score", "ScoreError"]


class ScoreError(HubkitError, ValueError):
    """A submission and a solution that cannot be scored against each other."""


def read_id_table(path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A CSV keyed by ``id`` (strings, empty cells kept), checked for ``columns`` and duplicate ids."""
    csv.field_size_limit(sys.maxsize)
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"{path}: no such file")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ScoreError(f"{path}: missing columns {missing}; expected {','.join(columns)}")
    dupes = table["id"][table["id"].duplicated()].tolist()
    if dupes:
        raise ScoreError(f"{path}: duplicate ids {dupes[:5]}")
    return table


def read_ids(data_dir) -> list[str]:
    """Slide ids to predict: ``sample_submission.csv`` order, else the stems of ``test/*.tiff``."""
    data_dir = Path(data_dir)
    sample = data_dir / "sample_submission.csv"
    if sample.is_file():
        return read_id_table(sample, ("id",))["id"].tolist()
    ids = sorted(p.stem for p in (data_dir / "test").glob("*.tif*"))
    if not ids:
        raise HubkitError(f"{data_dir}: neither sample_submission.csv nor test/*.tiff found")
    return ids


def write_submission(path, ids: list[str], predictions: dict[str, str]) -> Path:
    """Write ``id,predicted`` for every id (empty where missing), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "predicted"])
        for i in ids:
            w.writerow([i, predictions.get(i, "")])
    os.replace(tmp, path)
    return path


def _slide_path(data_dir: Path, slide_id: str) -> Path:
    for ext in (".tiff", ".tif"):
        p = data_dir / "test" / f"{slide_id}{ext}"
        if p.is_file():
            return p
    return data_dir / "test" / f"{slide_id}.tiff"


def predict_folder(
    data_dir,
    out_csv,
    predict: Callable[[Path, str], str],
    log: Callable[[str], None] = print,
) -> dict[str, Optional[str]]:
    """Predict every slide of a competition folder into ``out_csv``.

    Args:
        data_dir: holds ``sample_submission.csv`` and/or ``test/<id>.tiff``.
        out_csv: the submission to write (a valid placeholder is written first).
        predict: ``predict(slide_path, slide_id) -> encoding``.
        log: where error lines go.

    Returns:
        ``{id: error message or None}``.
    """
    data_dir = Path(data_dir)
    ids = read_ids(data_dir)
    predictions: dict[str, str] = {}
    errors: dict[str, Optional[str]] = {}
    write_submission(out_csv, ids, predictions)
    for slide_id in ids:
        try:
            predictions[slide_id] = predict(_slide_path(data_dir, slide_id), slide_id)
            errors[slide_id] = None
        except Exception as err:  # noqa: BLE001 - one bad slide must not sink the submission
            errors[slide_id] = f"{type(err).__name__}: {err}"
            log(f"hubkit: slide {slide_id} failed, written empty: {errors[slide_id]}")
            if os.environ.get("HUBKIT_DEBUG"):
                traceback.print_exc()
        write_submission(out_csv, ids, predictions)
    return errors


def dice_from_rle(a, b, name: str = "") -> float:
    """Dice of two encodings, computed on their runs (no mask is built). Both empty gives 1."""
    sa, ea = rle.parse(a, name=f"{name} (submission)" if name else None)
    sb, eb = rle.parse(b, name=f"{name} (solution)" if name else None)
    size = float((ea - sa).sum() + (eb - sb).sum())
    if size == 0:
        return 1.0
    pos = np.concatenate([sa, ea, sb, eb])
    delta = np.concatenate([np.ones_like(sa), -np.ones_like(ea), np.ones_like(sb), -np.ones_like(eb)])
    order = np.argsort(pos, kind="stable")
    pos, depth = pos[order], np.cumsum(delta[order])
    inter = float(np.diff(pos)[depth[:-1] == 2].sum())
    return 2.0 * inter / size


def score(submission_csv, solution_csv) -> pd.DataFrame:
    """Per-image Dice of a submission against a solution (``id,encoding``), as Kaggle scores it.

    Returns:
        A table ``id, dice`` in solution order; its mean is the leaderboard score.

    Raises:
        ScoreError: missing or extra ids, or missing columns.
        RLEError: a malformed encoding, naming the id.
    """
    sub = read_id_table(submission_csv, ("id", "predicted"))
    sol = read_id_table(solution_csv, ("id", "encoding"))
    missing = sorted(set(sol["id"]) - set(sub["id"]))
    extra = sorted(set(sub["id"]) - set(sol["id"]))
    if missing or extra:
        raise ScoreError(f"{submission_csv}: ids missing {missing[:10]}, unexpected {extra[:10]} (against {solution_csv})")
    pred = dict(zip(sub["id"], sub["predicted"]))
    rows = [(i, dice_from_rle(pred[i], enc, name=i)) for i, enc in zip(sol["id"], sol["encoding"])]
    return pd.DataFrame(rows, columns=["id", "dice"])
