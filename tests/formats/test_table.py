import threading

import pandas as pd
import pytest

from hubkit.errors import OutputError, SubmissionError
from hubkit.formats.table import read_id_table, write_table

COLUMNS = ("id", "predicted")


def _write(path, n):
    ids = [f"s{i}" for i in range(50)]
    return write_table(path, COLUMNS, ids, {i: {"predicted": f"{n} 1"} for i in ids}, {i: {"predicted": ""} for i in ids})


def test_concurrent_writers_never_share_a_temporary_file_and_readers_see_whole_tables(tmp_path):
    path = tmp_path / "submission.csv"
    errors = []

    def writer(n):
        try:
            for _ in range(20):
                _write(path, n)
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for _ in range(50):
        if path.exists():
            table = pd.read_csv(path, dtype=str)
            assert len(table) == 50 and table["predicted"].nunique() == 1  # never torn
    for t in threads:
        t.join()
    assert not errors and not list(tmp_path.glob("*.tmp"))


def test_placeholders_fill_the_ids_without_a_row(tmp_path):
    write_table(tmp_path / "s.csv", COLUMNS, ["b", "a"], {"a": {"predicted": "1 2"}}, {"a": {"predicted": ""}, "b": {"predicted": ""}})
    assert (tmp_path / "s.csv").read_text().splitlines() == ["id,predicted", "b,", "a,1 2"]


def test_an_unwritable_target_names_the_path_and_leaves_no_temporary_file(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError, match="file/s.csv: cannot write"):
        _write(tmp_path / "file" / "s.csv", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a readable CSV"),
        (b"id,predicted\n\xff\xfe,1\n", "not a readable CSV"),
        (b"name,predicted\na,\n", "missing columns \\['id'\\]"),
        (b"id,predicted\na,\na,\n", "duplicate ids \\['a'\\]"),
        (b"id,predicted\na,1 2,3,4\n", "a row has more fields than the header"),  # pandas would make 'a' an index
        (b"id,predicted\na,1 2\nb,1 2,3\n", "not a readable CSV .*Expected 2 fields in line 3"),
        (b"id,predicted\n\"a,1 2\n", "not a readable CSV"),  # an unclosed quote
        (b"\x00\x01\x02", "missing columns"),
    ],
)
def test_bad_tables_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(SubmissionError, match=message) as err:
        read_id_table(path, COLUMNS)
    assert "bad.csv" in str(err.value)


@pytest.mark.parametrize("content, rows", [
    (b"\xef\xbb\xbfid,predicted\na,1 2\n", [("a", "1 2")]),  # Excel's byte-order mark
    (b"id,predicted\na\n", [("a", "")]),  # a short row reads as Kaggle's pandas reads it
    (b"id,predicted\r\na,1 2\r\n\r\n", [("a", "1 2")]),
    (b"id,predicted\nNA,\nnan,\n", [("NA", ""), ("nan", "")]),  # ids that pandas would call missing
])
def test_tables_read_as_the_scorer_reads_them(tmp_path, content, rows):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    table = read_id_table(path, COLUMNS)
    assert list(zip(table["id"], table["predicted"])) == rows


def test_a_full_disk_names_the_path_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    import errno
    import os

    real_fdopen = os.fdopen

    class FullDisk:
        """A file on a full disk: the first write fails as write(2) does."""

        def __init__(self, fd, *args, **kwargs):
            self.file = real_fdopen(fd, *args, **kwargs)

        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(os, "fdopen", FullDisk)
    with pytest.raises(OutputError, match="s.csv: cannot write .*No space left on device"):
        _write(tmp_path / "s.csv", 1)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
