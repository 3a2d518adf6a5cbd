"""CSV tables keyed by ``id``: read them checked, write them atomically.

Submissions, solutions, sample submissions and crop labels are untrusted files: `read_id_table` and
`read_table` name the file
and the problem (missing file or columns, duplicate ids, unreadable text). `write_table` writes
through `hubkit._io.atomic_write`, so a reader only ever sees a whole table, and two runs writing
one path never share a temporary file.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from hubkit._io import atomic_write
from hubkit.errors import SubmissionError

__all__ = ["read_id_table", "read_table", "csv_columns", "write_table"]


def read_id_table(path, columns: Sequence[str]) -> pd.DataFrame:
    """A CSV keyed by ``id`` (every cell a string, empty cells kept), checked for ``columns`` and duplicate ids.

    Read as Kaggle's scorer reads it (pandas; a short row's missing cells are empty), except that a
    row longer than the header is an error rather than silently re-aligned, and a UTF-8 byte-order
    mark (Excel's) is allowed.

    Raises:
        SubmissionError: a missing or unreadable file, missing columns or duplicate ids; names the file.
    """
    table = read_table(path, columns)
    dupes = table["id"][table["id"].duplicated()].tolist()
    if dupes:
        raise SubmissionError(f"{path}: duplicate ids {dupes[:5]}")
    return table


def read_table(path, columns: Sequence[str], error: type[Exception] = SubmissionError) -> pd.DataFrame:
    """A CSV read as `read_id_table` reads it (strings, ragged rows refused), checked for ``columns``.

    Raises:
        ``error``: a missing or unreadable file, or missing columns; names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            # A row longer than the header: pandas would shift it into an implicit index, or drop cells.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False, encoding="utf-8-sig")
    except pd.errors.ParserWarning:
        raise error(f"{path}: a row has more fields than the header; is a value unquoted?") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise error(f"{path}: not a readable CSV table ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise error(f"{path}: missing columns {missing}; expected {','.join(columns)}")
    return table


def csv_columns(path) -> list[str]:
    """The header row of a CSV file.

    Raises:
        SubmissionError: a missing, empty or unreadable file.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f))
    except FileNotFoundError:
        raise SubmissionError(f"{path}: no such file") from None
    except (StopIteration, UnicodeDecodeError, csv.Error) as err:
        raise SubmissionError(f"{path}: no readable CSV header ({type(err).__name__})") from None


def write_table(path, columns: Sequence[str], ids: Sequence[str], rows: Mapping[str, Mapping[str, str]],
                empty: Mapping[str, Mapping[str, str]]) -> Path:
    """Write one row per id, in ``ids`` order, atomically.

    Args:
        path: the CSV to (re)write.
        columns: the header, ``id`` first.
        ids: every id, in the order the table lists them.
        rows: the values of the ids that have them: ``{id: {column: value}}``.
        empty: the values of the others (placeholder rows).

    Raises:
        OutputError: the folder or file cannot be written (disk full, no permission); no temporary
            file is left behind.
    """
    path = Path(path)
    with atomic_write(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for i in ids:
            values = rows.get(i) or empty[i]
            writer.writerow([i, *(values.get(c, "") for c in columns[1:])])
    return path
