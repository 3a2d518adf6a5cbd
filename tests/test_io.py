import hashlib

import numpy as np
import pytest

from hubkit._io import atomic_write, read_json, sha256_file, write_image
from hubkit.errors import CardError, DataError, OutputError
from hubkit.slides import read_image


class Boom(Exception):
    pass


@pytest.mark.parametrize("fault", [Boom, KeyboardInterrupt, OSError])
def test_a_write_that_fails_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path, fault):
    path = tmp_path / "out.csv"
    path.write_text("old")
    raised = OutputError if fault is OSError else fault
    with pytest.raises(raised) as info:
        with atomic_write(path) as f:
            f.write("new, half")
            raise fault(28, "No space left on device") if fault is OSError else fault()
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    if fault is OSError:
        assert "out.csv: cannot write (No space left on device)" in str(info.value)


def test_a_finished_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    with atomic_write(path) as f:
        f.write("é\n")
    assert path.read_bytes() == "é\n".encode() and oct(path.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("name, ok", [("a.png", True), ("a.jpg", True), ("a.xyz", False), ("a", False)])
def test_write_image_by_suffix_or_a_named_error(tmp_path, name, ok):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255
    if ok:
        write_image(tmp_path / name, rgb)
        assert read_image(tmp_path / name)[..., 0].min() > 240  # red stays red (RGB in, RGB out)
    else:
        with pytest.raises(OutputError, match="cannot encode a picture"):
            write_image(tmp_path / name, rgb)
        assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_is_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="file/a.png: cannot write"):
        write_image(tmp_path / "file" / "a.png", np.zeros((4, 4, 3), np.uint8))


@pytest.mark.parametrize("content, kwargs, message", [
    (None, {}, r"x\.json: unreadable thing: no such file$"),
    (None, {"missing": "model card not found"}, r"x\.json: model card not found$"),
    (b"{not json", {}, r"x\.json: unreadable thing: not JSON \(Expecting property name"),
    (b"\xff\xfe{}", {}, r"x\.json: unreadable thing: not UTF-8 text$"),
    (b"[" * 100_000 + b"]" * 100_000, {}, r"x\.json: unreadable thing: JSON nested too deeply$"),
    (b"[1,", {"hint": "; rerun with --fresh"}, r"x\.json: unreadable thing: not JSON .*; rerun with --fresh$"),
])
def test_read_json_names_the_file_and_the_problem_in_the_readers_error(tmp_path, content, kwargs, message):
    path = tmp_path / "x.json"
    if content is not None:
        path.write_bytes(content)
    for error in (CardError, DataError):
        with pytest.raises(error, match=message):
            read_json(path, error, "thing", **kwargs)


def test_read_json_and_sha256_of_a_good_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": [1, 2]}')
    assert read_json(path, DataError, "thing") == {"a": [1, 2]}
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
