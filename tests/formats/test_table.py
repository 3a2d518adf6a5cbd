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
    ],
)
def test_bad_tables_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(SubmissionError, match=message) as err:
        read_id_table(path, COLUMNS)
    assert "bad.csv" in str(err.value)
